package io.github.vduse4j.blockdev.virtio;

import io.github.vduse4j.blockdev.backend.BackendQueue;
import io.github.vduse4j.blockdev.backend.BlockRequest;
import io.github.vduse4j.engine.CompletionHandoff;
import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.control.StatsLayout;
import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Serves one virtio-blk request queue (virtio 1.2 §5.2.6): parses each chain into a preallocated
 * {@link BlockRequest}, validates it against the device, hands it to the backend with the driver's own
 * buffers, and writes the status byte and used element when it completes. No allocation, no exceptions,
 * no locks: a fixed pool of request slots, a free stack and a done stack.
 *
 * <p>The chain is untrusted. Every length, direction and range is checked here; anything wrong becomes
 * VIRTIO_BLK_S_IOERR (or S_UNSUPP for unknown commands and flags) for that request only.
 *
 * <p>Writethrough (§5.2.6.2 with VIRTIO_BLK_F_CONFIG_WCE and {@code writeback} = 0): a WRITE, DISCARD or
 * WRITE_ZEROES that completes OK while the device is in writethrough mode (read once per completion, a volatile
 * load) waits for a backend FLUSH before its status is written. The flush is issued by the handler itself, outside
 * the backend's call (so the backend is never re-entered), with a request of its own ({@link #flushCarriers}): one
 * flush covers every write that completed before it was issued, so the writes of one batch share one
 * {@code fdatasync} (or one io_uring FSYNC). A failed flush fails all of them with IOERR.
 *
 * <p>Completion from any thread: {@link #completed} on a thread other than the poller only hands the request to
 * {@link #handoff} (bounded MPSC, no allocation); the poller takes it from there at the start of its next pass, so
 * only the poller ever writes status bytes and used elements.
 */
final class VirtioBlkQueueHandler implements QueueHandler, BlockRequest.CompletionSink {
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long SECTOR = VirtioBlk.SECTOR_SIZE;
    /**
     * Requests a pass completes before it publishes their used elements, without waiting for the end of the pass
     * (which decides the notification, once). A driver that polls the used ring (a vhost-user frontend, a guest in
     * its interrupt handler) can then take and resubmit the first ones while the rest are served, instead of the two
     * sides taking turns over whole batches: 2.5M to 3.7M IOPS at vhost-user QD32 in docs/benchmarks.md ("Where the
     * time goes at vhost-user QD32"), where 1 (one used index store per request, as QEMU and libvhost-user do) was
     * slower than 4-8.
     */
    static final int PUBLISH_EVERY = 8;

    private final VirtioBlkDevice device;
    private final BackendQueue backend;
    private final DescriptorChain chain;
    private final boolean readOnly;
    private final boolean discard;
    private final boolean writeZeroes;
    private final MemorySegment serial;
    /** 16 bytes for a header or range that the driver split over several buffers (rare; §2.6.4 allows it). */
    private final MemorySegment gather = MemorySegment.ofArray(new byte[VirtioBlk.OUTHDR_SIZE]);

    private final BlockRequest[] requests;
    private final int[] chainIds;
    private final int[] usedLengths;
    private final MemorySegment[] statusSegments;
    private final long[] statusOffsets;
    private final int[] free;
    private int freeCount;
    private final int[] done;
    private int doneCount;
    private final QueueStats stats;
    /** When each slot's chain was popped (System.nanoTime of its pass), for the latency histogram. */
    private final long[] popNanos;
    /**
     * The clock read that ended the last pass when that pass stopped at its budget (chains may be waiting), else 0:
     * the next pass, which the poller runs right away, takes it as its pop time instead of reading the clock again,
     * so a stream of one-chain passes costs one clock read per request. Only the very next call may use it.
     */
    private long carriedNanos;

    /** VIRTIO_BLK_F_CONFIG_WCE was negotiated: the driver's {@code writeback} field applies. */
    private final boolean configWce;
    /** §5.2.5: CONFIG_WCE without FLUSH means writeback = 0, whatever the field says. */
    private final boolean alwaysWriteThrough;
    /** Writes waiting for a writethrough flush to be issued: a list through {@link #groupNext}, -1 = empty. */
    private int pendingHead = -1;
    /** Next slot in the same flush group (pending list or a carrier's group), -1 at the end. */
    private final int[] groupNext;
    /** Requests that carry writethrough flushes; slot numbers from {@code requests.length} on. */
    private final BlockRequest[] flushCarriers;
    /** Per carrier: the first slot of the writes it makes durable. */
    private final int[] carrierGroup;
    private final int[] freeCarriers;
    private int freeCarrierCount;

    /** Requests completed on other threads, on their way to the poller. */
    private final CompletionHandoff<BlockRequest> handoff;
    /** The thread running {@link #process} (written there; other threads only compare against it). */
    private Thread poller;

    VirtioBlkQueueHandler(VirtioBlkDevice device, BackendQueue backend, long features, int queueSize, QueueStats stats) {
        this.device = device;
        this.stats = stats;
        this.popNanos = new long[queueSize];
        this.backend = backend;
        this.chain = new DescriptorChain(DescriptorChain.capacityFor(queueSize));
        this.readOnly = device.backend().isReadOnly();
        this.discard = (features & VirtioBlk.bit(VirtioBlk.F_DISCARD)) != 0;
        this.writeZeroes = (features & VirtioBlk.bit(VirtioBlk.F_WRITE_ZEROES)) != 0;
        byte[] id = new byte[VirtioBlk.ID_BYTES];
        byte[] s = device.settings().serial().getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(s, 0, id, 0, s.length);
        this.serial = MemorySegment.ofArray(id);

        BlockRequest.Scratch scratch = new BlockRequest.Scratch(chain.capacity(), VirtioBlkSettings.MAX_RANGES);
        this.requests = new BlockRequest[queueSize];
        this.chainIds = new int[queueSize];
        this.usedLengths = new int[queueSize];
        this.statusSegments = new MemorySegment[queueSize];
        this.statusOffsets = new long[queueSize];
        this.free = new int[queueSize];
        this.done = new int[queueSize];
        for (int i = 0; i < queueSize; i++) {
            requests[i] = new BlockRequest(i, scratch, this);
            free[i] = queueSize - 1 - i;
        }
        this.freeCount = queueSize;

        this.configWce = (features & VirtioBlk.bit(VirtioBlk.F_CONFIG_WCE)) != 0;
        this.alwaysWriteThrough = configWce && (features & VirtioBlk.bit(VirtioBlk.F_FLUSH)) == 0;
        // Every flush group holds at least one write, so queueSize carriers always suffice. Without CONFIG_WCE the
        // driver's mode is writeback for good: none are needed.
        int carriers = configWce ? queueSize : 0;
        this.groupNext = new int[carriers];
        this.flushCarriers = new BlockRequest[carriers];
        this.carrierGroup = new int[carriers];
        this.freeCarriers = new int[carriers];
        for (int i = 0; i < carriers; i++) {
            flushCarriers[i] = new BlockRequest(queueSize + i, scratch, this);
            freeCarriers[i] = carriers - 1 - i;
        }
        this.freeCarrierCount = carriers;
        this.handoff = new CompletionHandoff<>(queueSize + carriers, backend.completionFd());
    }

    @Override
    public int process(Virtqueue queue, int budget) {
        poller = Thread.currentThread();
        long carried = carriedNanos;
        carriedNanos = 0;
        int work = backend.poll() + takeHandedOver();
        issueWriteThroughFlush(); // for writes an asynchronous backend just completed
        long popTime = 0; // one clock read per pass, taken at its first chain: the pop time of all of them
        int started = 0;
        while (work < budget && freeCount > 0) {
            int r = queue.pop(chain);
            if (r == Virtqueue.EMPTY) {
                break;
            }
            work++;
            if (r == Virtqueue.POPPED) {
                if (popTime == 0) {
                    popTime = carried != 0 ? carried : System.nanoTime();
                }
                start(popTime);
                if (++started % PUBLISH_EVERY == 0 && doneCount > 0) {
                    // §2.7.8.2 / §2.8.22: the device may make used buffers visible at any time; the notification
                    // for them all is still decided once, after the pass (QueuePoller). Writes waiting for their
                    // write-through FLUSH stay out of done until the pass's one FLUSH below.
                    finishDone(queue);
                    queue.publish();
                }
            } else if (r == Virtqueue.CHAIN_ERROR) {
                // The chain cannot be walked safely, so there is no trustworthy status byte to write: return
                // the buffer with length 0 so the driver does not lose the descriptor (§2.7.8 / §2.8.21).
                stats.chainError();
                if (chain.id() >= 0) {
                    queue.complete(chain.id(), 0);
                }
            } else {
                break; // NEEDS_RESET: the queue reports isBroken(); the transport handles it
            }
        }
        issueWriteThroughFlush(); // for writes a synchronous backend completed in this batch
        long now = finishDone(queue);
        if (work >= budget && freeCount > 0) {
            carriedNanos = now;
        }
        return work;
    }

    /** Whether a write completing now must be made durable before its status (volatile read of the device mode). */
    private boolean writeThrough() {
        return alwaysWriteThrough || (configWce && device.writeThrough());
    }

    /** Submits one FLUSH for every write waiting for one; they complete when it does. */
    private void issueWriteThroughFlush() {
        if (pendingHead < 0) {
            return;
        }
        int c = freeCarriers[--freeCarrierCount];
        carrierGroup[c] = pendingHead;
        pendingHead = -1;
        BlockRequest f = flushCarriers[c];
        f.reset(BlockRequest.FLUSH, 0);
        backend.submit(f); // a synchronous backend completes it (and the group) before returning
    }

    /** A writethrough flush finished: its writes complete with its status. */
    private void finishFlushGroup(int carrier, int status) {
        if (status == VirtioBlk.S_OK) {
            stats.writeThroughFlush();
        }
        int slot = carrierGroup[carrier];
        carrierGroup[carrier] = -1;
        freeCarriers[freeCarrierCount++] = carrier;
        while (slot >= 0) {
            int next = groupNext[slot];
            if (status != VirtioBlk.S_OK) {
                requests[slot].complete(VirtioBlk.S_IOERR); // back through completed(): not OK, so done
            } else {
                done[doneCount++] = slot;
            }
            slot = next;
        }
    }

    private static boolean modifiesData(int op) {
        return op == BlockRequest.WRITE || op == BlockRequest.WRITE_ZEROES || op == BlockRequest.DISCARD;
    }

    /** Validates the chain just popped (at {@code popTime}) and starts its request. */
    private void start(long popTime) {
        int slot = free[--freeCount];
        BlockRequest req = requests[slot];
        chainIds[slot] = chain.id();
        popNanos[slot] = popTime;
        stats.popped(); // per chain: a synchronous backend that stalls shows as in flight while it does
        req.reset(-1, 0);

        // §5.2.6: the status byte is the last device-writable byte of the chain.
        int last = lastWritableBuffer();
        if (last < 0) {
            statusSegments[slot] = null;
            usedLengths[slot] = 0;
            req.complete(VirtioBlk.S_IOERR);
            return;
        }
        statusSegments[slot] = chain.segment(last);
        statusOffsets[slot] = chain.offset(last) + chain.length(last) - 1;
        long writable = chain.writableLength();
        usedLengths[slot] = (int) Math.min(writable, Integer.MAX_VALUE);

        // §5.2.6: the request starts with a 16-byte device-readable header.
        long readable = chain.readableLength();
        if (readable < VirtioBlk.OUTHDR_SIZE) {
            req.complete(VirtioBlk.S_IOERR);
            return;
        }
        MemorySegment hdr;
        long hdrOff;
        if (chain.length(0) >= VirtioBlk.OUTHDR_SIZE) {
            hdr = chain.segment(0);
            hdrOff = chain.offset(0);
        } else {
            gatherReadable(0, VirtioBlk.OUTHDR_SIZE);
            hdr = gather;
            hdrOff = 0;
        }
        int type = hdr.get(LE_INT, hdrOff);
        long sector = hdr.get(LE_LONG, hdrOff + 8);

        switch (type) {
            case VirtioBlk.T_IN -> {
                // §5.2.6.1: data is device-writable; only the header is readable.
                long len = writable - 1;
                if (readable != VirtioBlk.OUTHDR_SIZE || !inRange(sector, len)) {
                    req.complete(VirtioBlk.S_IOERR);
                } else {
                    req.reset(BlockRequest.READ, sector * SECTOR);
                    submitData(req, chain.readableCount(), len, 0);
                }
            }
            case VirtioBlk.T_OUT -> {
                // §5.2.6.1: data is device-readable; only the status byte is writable. RO: §5.2.6.2.
                long len = readable - VirtioBlk.OUTHDR_SIZE;
                if (readOnly || writable != 1 || !inRange(sector, len)) {
                    req.complete(VirtioBlk.S_IOERR);
                } else {
                    req.reset(BlockRequest.WRITE, sector * SECTOR);
                    submitData(req, 0, len, VirtioBlk.OUTHDR_SIZE);
                }
            }
            case VirtioBlk.T_FLUSH -> {
                req.reset(BlockRequest.FLUSH, 0);
                backend.submit(req);
            }
            case VirtioBlk.T_GET_ID -> {
                // §5.2.6: up to VIRTIO_BLK_ID_BYTES of serial into the writable data, NUL-padded.
                long room = writable - 1;
                int n = (int) Math.min(room, VirtioBlk.ID_BYTES);
                if (readable != VirtioBlk.OUTHDR_SIZE || n <= 0) {
                    req.complete(VirtioBlk.S_IOERR);
                } else {
                    scatterWritable(serial, n);
                    req.complete(VirtioBlk.S_OK);
                }
            }
            case VirtioBlk.T_DISCARD -> ranges(req, BlockRequest.DISCARD, discard, readable, writable);
            case VirtioBlk.T_WRITE_ZEROES -> ranges(req, BlockRequest.WRITE_ZEROES, writeZeroes, readable, writable);
            default -> req.complete(VirtioBlk.S_UNSUPP); // §5.2.6.2: unknown type
        }
    }

    /** §5.2.6.2: sector counts in 512-byte units; the whole transfer must lie inside the capacity. */
    private boolean inRange(long sector, long len) {
        long cap = device.capacityBytes();
        return len >= 0 && (len & (SECTOR - 1)) == 0 && sector >= 0
                && sector <= cap / SECTOR && len <= cap - sector * SECTOR;
    }

    /** Collects {@code len} data bytes starting {@code skip} bytes into buffer {@code first} onward. */
    private void submitData(BlockRequest req, int first, long len, long skip) {
        long remaining = len;
        int end = chain.bufferCount();
        for (int i = first; i < end && remaining > 0; i++) {
            long off = chain.offset(i);
            long n = chain.length(i);
            if (skip > 0) {
                long s = Math.min(skip, n);
                off += s;
                n -= s;
                skip -= s;
            }
            if (n == 0) {
                continue;
            }
            if (req.bufferCount() == req.maxBuffers()) {
                req.complete(VirtioBlk.S_IOERR); // more data buffers than seg_max allows
                return;
            }
            n = Math.min(n, remaining);
            req.addBuffer(chain.segment(i), off, (int) n);
            remaining -= n;
        }
        if (len == 0) {
            req.complete(VirtioBlk.S_OK);
        } else {
            backend.submit(req);
        }
    }

    /** DISCARD / WRITE_ZEROES (§5.2.6): an array of {le64 sector, le32 num_sectors, le32 flags}. */
    private void ranges(BlockRequest req, int op, boolean negotiated, long readable, long writable) {
        long bytes = readable - VirtioBlk.OUTHDR_SIZE;
        long count = bytes / VirtioBlk.RANGE_SIZE;
        if (!negotiated) {
            req.complete(VirtioBlk.S_UNSUPP);
            return;
        }
        if (readOnly || writable != 1 || bytes == 0 || bytes % VirtioBlk.RANGE_SIZE != 0
                || count > VirtioBlkSettings.MAX_RANGES) {
            req.complete(VirtioBlk.S_IOERR);
            return;
        }
        req.reset(op, 0);
        int allowedFlags = op == BlockRequest.WRITE_ZEROES ? VirtioBlk.WRITE_ZEROES_FLAG_UNMAP : 0;
        for (int i = 0; i < count; i++) {
            gatherReadable(VirtioBlk.OUTHDR_SIZE + (long) i * VirtioBlk.RANGE_SIZE, VirtioBlk.RANGE_SIZE);
            long sector = gather.get(LE_LONG, 0);
            long sectors = Integer.toUnsignedLong(gather.get(LE_INT, 8));
            int flags = gather.get(LE_INT, 12);
            if ((flags & ~allowedFlags) != 0) {
                req.complete(VirtioBlk.S_UNSUPP); // §5.2.6.2: unknown flag, or unmap on discard
                return;
            }
            if (sectors > VirtioBlkSettings.MAX_RANGE_SECTORS || !inRange(sector, sectors * SECTOR)) {
                req.complete(VirtioBlk.S_IOERR);
                return;
            }
            // An empty range asks for nothing: backends get only ranges of at least one sector (fallocate and
            // BLKDISCARD reject length 0 with EINVAL, which would fail a harmless request).
            if (sectors != 0) {
                req.addRange(sector * SECTOR, sectors * SECTOR, (flags & VirtioBlk.WRITE_ZEROES_FLAG_UNMAP) != 0);
            }
        }
        if (req.rangeCount() == 0) {
            req.complete(VirtioBlk.S_OK);
        } else {
            backend.submit(req);
        }
    }

    private int lastWritableBuffer() {
        for (int i = chain.bufferCount() - 1; i >= chain.readableCount(); i--) {
            if (chain.length(i) > 0) {
                return i;
            }
        }
        return -1;
    }

    /** Copies {@code n} bytes at {@code pos} of the readable byte stream into {@link #gather}. */
    private void gatherReadable(long pos, int n) {
        int copied = 0;
        int end = chain.readableCount();
        for (int i = 0; i < end && copied < n; i++) {
            long len = chain.length(i);
            if (pos >= len) {
                pos -= len;
                continue;
            }
            int c = (int) Math.min(len - pos, n - copied);
            MemorySegment.copy(chain.segment(i), chain.offset(i) + pos, gather, copied, c);
            copied += c;
            pos = 0;
        }
    }

    /** Copies the first {@code n} bytes of {@code src} to the start of the writable byte stream. */
    private void scatterWritable(MemorySegment src, int n) {
        int copied = 0;
        for (int i = chain.readableCount(); i < chain.bufferCount() && copied < n; i++) {
            int c = (int) Math.min(chain.length(i), n - copied);
            MemorySegment.copy(src, copied, chain.segment(i), chain.offset(i), c);
            copied += c;
        }
    }

    /** Finishes the requests other threads completed since the last pass; returns how many. */
    private int takeHandedOver() {
        if (!handoff.beginDrain()) {
            return 0;
        }
        int n = 0;
        BlockRequest r;
        while ((r = handoff.poll()) != null) {
            finished(r);
            n++;
        }
        return n;
    }

    @Override
    public void completed(BlockRequest request) {
        if (Thread.currentThread() != poller) {
            handoff.offer(request); // a backend thread: the poller finishes it
            return;
        }
        finished(request);
    }

    private void finished(BlockRequest request) {
        int slot = request.slot();
        if (slot >= requests.length) {
            finishFlushGroup(slot - requests.length, request.status());
        } else if (request.status() == VirtioBlk.S_OK && modifiesData(request.op()) && writeThrough()) {
            groupNext[slot] = pendingHead; // the status waits for a flush (issued after the backend call returns)
            pendingHead = slot;
        } else {
            done[doneCount++] = slot;
        }
    }

    /**
     * Writes status bytes and stages used elements for every finished request; one clock read for all of them.
     *
     * @return that clock read, 0 if there was nothing to finish
     */
    private long finishDone(Virtqueue queue) {
        if (doneCount == 0) {
            return 0;
        }
        QueueStats st = stats;
        long now = System.nanoTime();
        long sum = 0, max = 0;
        for (int k = 0; k < doneCount; k++) {
            int slot = done[k];
            BlockRequest r = requests[slot];
            int status = r.status();
            MemorySegment s = statusSegments[slot];
            if (s != null) {
                s.set(ValueLayout.JAVA_BYTE, statusOffsets[slot], (byte) status);
                statusSegments[slot] = null;
            } else {
                st.chainError();
            }
            queue.complete(chainIds[slot], usedLengths[slot]);
            int error = status == VirtioBlk.S_OK ? -1
                    : status == VirtioBlk.S_UNSUPP ? StatsLayout.ERR_UNSUPPORTED : StatsLayout.ERR_IO;
            long latency = now - popNanos[slot];
            st.completedRequest(r.op(), error, r.length(), latency);
            sum += latency;
            max = Math.max(max, latency);
            free[freeCount++] = slot;
        }
        st.completedPass(doneCount, sum, max);
        doneCount = 0;
        return now;
    }

    @Override
    public int inflight() {
        return requests.length - freeCount;
    }

    @Override
    public int completionFd() {
        int fd = backend.completionFd();
        // A backend without an fd of its own that has completed on other threads: sleep on the handoff's eventfd.
        return fd >= 0 ? fd : handoff.used() ? handoff.fd() : -1;
    }

    @Override
    public QueueStats stats() {
        return stats;
    }

    @Override
    public void close() {
        backend.close();
        handoff.close();
    }
}
