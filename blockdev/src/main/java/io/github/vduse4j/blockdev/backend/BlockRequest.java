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
    public static final int READ = 0;
    public static final int WRITE = 1;
    public static final int FLUSH = 2;
    public static final int DISCARD = 3;
    public static final int WRITE_ZEROES = 4;

    /** Completion status values (virtio 1.2 §5.2.6: VIRTIO_BLK_S_*). */
    public static final int STATUS_OK = 0;
    public static final int STATUS_IOERR = 1;
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

        public Scratch(int maxBuffers, int maxRanges) {
            segments = new MemorySegment[maxBuffers];
            segmentOffsets = new long[maxBuffers];
            lengths = new int[maxBuffers];
            rangeOffsets = new long[maxRanges];
            rangeLengths = new long[maxRanges];
            rangeUnmap = new boolean[maxRanges];
        }
    }

    public BlockRequest(int slot, Scratch scratch, CompletionSink sink) {
        this.slot = slot;
        this.scratch = scratch;
        this.sink = sink;
    }

    /** Index of this request's slot in its queue. */
    public int slot() {
        return slot;
    }

    /** One of {@link #READ}, {@link #WRITE}, {@link #FLUSH}, {@link #DISCARD}, {@link #WRITE_ZEROES}. */
    public int op() {
        return op;
    }

    /** Device byte offset of a READ or WRITE. */
    public long offset() {
        return offset;
    }

    /** Total data bytes of a READ or WRITE (sum of the buffer lengths). */
    public long length() {
        return length;
    }

    public int bufferCount() {
        return scratch.bufferCount;
    }

    /** The mapping that holds buffer {@code i}; address it with {@link #bufferOffset(int)}. */
    public MemorySegment buffer(int i) {
        return scratch.segments[i];
    }

    public long bufferOffset(int i) {
        return scratch.segmentOffsets[i];
    }

    public int bufferLength(int i) {
        return scratch.lengths[i];
    }

    /** Number of ranges of a DISCARD or WRITE_ZEROES. */
    public int rangeCount() {
        return scratch.rangeCount;
    }

    public long rangeOffset(int i) {
        return scratch.rangeOffsets[i];
    }

    public long rangeLength(int i) {
        return scratch.rangeLengths[i];
    }

    /** WRITE_ZEROES only: the driver allows deallocating the range (VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP). */
    public boolean rangeMayUnmap(int i) {
        return scratch.rangeUnmap[i];
    }

    public int status() {
        return status;
    }

    /**
     * Finishes the request with a {@code STATUS_*} value. Call exactly once, from any thread (see the class comment);
     * on a thread other than the queue's poller it costs a lock-free enqueue and at most one eventfd write per poller
     * pass, and never blocks.
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

    /** Starts a new request of {@code op} at device byte {@code offset}. */
    public void reset(int op, long offset) {
        this.op = op;
        this.offset = offset;
        this.length = 0;
        this.status = -1;
        this.failTransfer = false;
        scratch.bufferCount = 0;
        scratch.rangeCount = 0;
    }

    /** Capacity of the buffer list. */
    public int maxBuffers() {
        return scratch.lengths.length;
    }

    /** Appends a data buffer; the caller checks {@link #maxBuffers()}. */
    public void addBuffer(MemorySegment segment, long segmentOffset, int len) {
        Scratch s = scratch;
        int i = s.bufferCount++;
        s.segments[i] = segment;
        s.segmentOffsets[i] = segmentOffset;
        s.lengths[i] = len;
        length += len;
    }

    /** Capacity of the range list. */
    public int maxRanges() {
        return scratch.rangeLengths.length;
    }

    /** Appends a DISCARD / WRITE_ZEROES range in bytes; the caller checks {@link #maxRanges()}. */
    public void addRange(long byteOffset, long byteLength, boolean mayUnmap) {
        Scratch s = scratch;
        int i = s.rangeCount++;
        s.rangeOffsets[i] = byteOffset;
        s.rangeLengths[i] = byteLength;
        s.rangeUnmap[i] = mayUnmap;
    }
}
