package io.github.vduse4j.blockdev.backend;

import java.lang.foreign.MemorySegment;

/**
 * One in-flight block request as a backend sees it: an operation, a byte range of the device and the
 * guest's own data buffers (zero copy: the segments are the transport's long-lived mappings of driver
 * memory, addressed by offset). Instances are preallocated per queue slot and reused, never per request.
 *
 * <p>The virtio-blk front end has already validated direction, alignment and range against the capacity.
 *
 * <p>The buffer and range lists are valid only during {@link BackendQueue#submit}: they are shared by all
 * requests of a queue (so no request carries per-buffer arrays). A backend that completes later captures
 * what it needs at submit time (an io_uring backend writes them into its SQEs/iovecs anyway).
 *
 * <p>Threads: the request is the backend's from {@code submit} until {@link #complete(int)}, which may be called on
 * any thread, exactly once. Until then the backend may read and write the captured guest buffers from any thread;
 * after it, nothing: the slot is reused for the next request as soon as the poller has written its status. A
 * completion on a thread other than the poller's is handed over through a bounded lock-free queue (its memory
 * effects, e.g. data read into the buffers, happen-before the poller's status write), so the driver never sees a
 * status before the data.
 */
public final class BlockRequest {
    /** Read {@link #length()} bytes at {@link #offset()} into the buffers (VIRTIO_BLK_T_IN). */
    public static final int READ = 0;
    /** Write the buffers' {@link #length()} bytes at {@link #offset()} (VIRTIO_BLK_T_OUT). */
    public static final int WRITE = 1;
    /** Make every write completed before it durable (VIRTIO_BLK_T_FLUSH). */
    public static final int FLUSH = 2;
    /** The ranges' contents may be dropped; they need not read back zero (VIRTIO_BLK_T_DISCARD). */
    public static final int DISCARD = 3;
    /** The ranges must read back zero (VIRTIO_BLK_T_WRITE_ZEROES). */
    public static final int WRITE_ZEROES = 4;

    /** Completion status values (virtio 1.2 §5.2.6: VIRTIO_BLK_S_*). */
    /** Success (VIRTIO_BLK_S_OK). */
    public static final int STATUS_OK = 0;
    /** The storage failed the request (VIRTIO_BLK_S_IOERR). */
    public static final int STATUS_IOERR = 1;
    /** The operation is not supported (VIRTIO_BLK_S_UNSUPP). */
    public static final int STATUS_UNSUPP = 2;

    private final int slot;
    private final CompletionSink sink;

    private int op;
    private long offset;
    private long length;

    private final Scratch scratch;

    private int status;
    private boolean failTransfer;

    /** Receives finished requests; called on the queue's poller thread. */
    public interface CompletionSink {
        /**
         * Called by {@link BlockRequest#complete(int)}.
         *
         * @param request the finished request, its {@link BlockRequest#status()} set
         */
        void completed(BlockRequest request);
    }

    /** The buffer and range lists shared by the requests of one queue; filled per submission. */
    public static final class Scratch {
        final MemorySegment[] segments;
        final long[] segmentOffsets;
        final int[] lengths;
        int bufferCount;
        final long[] rangeOffsets;
        final long[] rangeLengths;
        final boolean[] rangeUnmap;
        int rangeCount;

        /**
         * Lists of fixed capacity (control path).
         *
         * @param maxBuffers data buffers one request may carry
         * @param maxRanges  DISCARD / WRITE_ZEROES ranges one request may carry
         */
        public Scratch(int maxBuffers, int maxRanges) {
            segments = new MemorySegment[maxBuffers];
            segmentOffsets = new long[maxBuffers];
            lengths = new int[maxBuffers];
            rangeOffsets = new long[maxRanges];
            rangeLengths = new long[maxRanges];
            rangeUnmap = new boolean[maxRanges];
        }
    }

    /**
     * A request slot (control path: the front end preallocates one per ring entry).
     *
     * @param slot    the slot's index in its queue
     * @param scratch the queue's shared buffer and range lists
     * @param sink    where {@link #complete(int)} hands the finished request
     */
    public BlockRequest(int slot, Scratch scratch, CompletionSink sink) {
        this.slot = slot;
        this.scratch = scratch;
        this.sink = sink;
    }

    /**
     * The slot.
     *
     * @return index of this request's slot in its queue
     */
    public int slot() {
        return slot;
    }

    /**
     * The operation.
     *
     * @return one of {@link #READ}, {@link #WRITE}, {@link #FLUSH}, {@link #DISCARD}, {@link #WRITE_ZEROES}
     */
    public int op() {
        return op;
    }

    /**
     * Where a READ or WRITE starts.
     *
     * @return device byte offset
     */
    public long offset() {
        return offset;
    }

    /**
     * How much a READ or WRITE moves.
     *
     * @return total data bytes (sum of the buffer lengths)
     */
    public long length() {
        return length;
    }

    /**
     * Data buffers of a READ or WRITE, in device order.
     *
     * @return number of buffers
     */
    public int bufferCount() {
        return scratch.bufferCount;
    }

    /**
     * The mapping that holds buffer {@code i}; address it with {@link #bufferOffset(int)}.
     *
     * @param i buffer index, {@code 0 <= i < bufferCount()}
     * @return a long-lived segment of driver memory (not a slice per buffer)
     */
    public MemorySegment buffer(int i) {
        return scratch.segments[i];
    }

    /**
     * Where buffer {@code i} starts in {@link #buffer(int)}.
     *
     * @param i buffer index
     * @return byte offset in the mapping
     */
    public long bufferOffset(int i) {
        return scratch.segmentOffsets[i];
    }

    /**
     * Length of buffer {@code i}.
     *
     * @param i buffer index
     * @return bytes
     */
    public int bufferLength(int i) {
        return scratch.lengths[i];
    }

    /**
     * Ranges of a DISCARD or WRITE_ZEROES.
     *
     * @return number of ranges
     */
    public int rangeCount() {
        return scratch.rangeCount;
    }

    /**
     * Where range {@code i} starts.
     *
     * @param i range index, {@code 0 <= i < rangeCount()}
     * @return device byte offset
     */
    public long rangeOffset(int i) {
        return scratch.rangeOffsets[i];
    }

    /**
     * Length of range {@code i}.
     *
     * @param i range index
     * @return bytes
     */
    public long rangeLength(int i) {
        return scratch.rangeLengths[i];
    }

    /**
     * WRITE_ZEROES only: whether the driver allows deallocating the range (VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP).
     *
     * @param i range index
     * @return true when the range may be deallocated
     */
    public boolean rangeMayUnmap(int i) {
        return scratch.rangeUnmap[i];
    }

    /**
     * The completion status.
     *
     * @return the {@code STATUS_*} value given to {@link #complete(int)}, -1 before
     */
    public int status() {
        return status;
    }

    /**
     * Finishes the request. Call exactly once, from any thread (see the class comment);
     * on a thread other than the queue's poller it costs a lock-free enqueue and at most one eventfd write per poller
     * pass, and never blocks.
     *
     * @param status a {@code STATUS_*} value
     */
    public void complete(int status) {
        if (failTransfer) {   // a short transfer (FaultInjectingBackend): never reported as success
            failTransfer = false;
            if (status == STATUS_OK) status = STATUS_IOERR;
        }
        this.status = status;
        sink.completed(this);
    }

    /** Test tool ({@link FaultInjectingBackend}): keeps only the first {@code bytes} of the data buffers. */
    void truncate(long bytes) {
        Scratch s = scratch;
        long left = bytes;
        int n = 0;
        while (n < s.bufferCount && left > 0) {
            if (s.lengths[n] > left) s.lengths[n] = (int) left;
            left -= s.lengths[n];
            n++;
        }
        s.bufferCount = n;
        length = bytes - left;
    }

    /** Test tool ({@link FaultInjectingBackend}): the next {@link #complete} reports an I/O error even if it was OK. */
    void failAfterTransfer() {
        failTransfer = true;
    }

    // ---- filled by the virtio-blk front end ----

    /**
     * Starts a new request, with empty buffer and range lists.
     *
     * @param op     the operation ({@link #READ} ...)
     * @param offset device byte offset (READ, WRITE)
     */
    public void reset(int op, long offset) {
        this.op = op;
        this.offset = offset;
        this.length = 0;
        this.status = -1;
        this.failTransfer = false;
        scratch.bufferCount = 0;
        scratch.rangeCount = 0;
    }

    /**
     * Capacity of the buffer list.
     *
     * @return the most buffers one request may carry
     */
    public int maxBuffers() {
        return scratch.lengths.length;
    }

    /**
     * Appends a data buffer; the caller checks {@link #maxBuffers()}.
     *
     * @param segment       the long-lived mapping that holds it
     * @param segmentOffset where it starts in {@code segment}
     * @param len           its length in bytes
     */
    public void addBuffer(MemorySegment segment, long segmentOffset, int len) {
        Scratch s = scratch;
        int i = s.bufferCount++;
        s.segments[i] = segment;
        s.segmentOffsets[i] = segmentOffset;
        s.lengths[i] = len;
        length += len;
    }

    /**
     * Capacity of the range list.
     *
     * @return the most ranges one request may carry
     */
    public int maxRanges() {
        return scratch.rangeLengths.length;
    }

    /**
     * Appends a DISCARD / WRITE_ZEROES range; the caller checks {@link #maxRanges()}.
     *
     * @param byteOffset device byte offset
     * @param byteLength bytes
     * @param mayUnmap   WRITE_ZEROES: the driver allows deallocation
     */
    public void addRange(long byteOffset, long byteLength, boolean mayUnmap) {
        Scratch s = scratch;
        int i = s.rangeCount++;
        s.rangeOffsets[i] = byteOffset;
        s.rangeLengths[i] = byteLength;
        s.rangeUnmap[i] = mayUnmap;
    }
}
