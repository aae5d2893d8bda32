package io.github.vduse4j.blockdev.bridge;

import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.control.StatsLayout;
import io.github.vduse4j.engine.frontend.FrontendQueue;
import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.driver.DriverRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.locks.LockSupport;

/**
 * The heart of the vhost-user bridge: relays one device-side virtqueue (a VDUSE queue, served to the kernel's
 * virtio-blk driver) to one queue of a vhost-user-blk target, forwarding descriptors unchanged. Every buffer of a
 * chain must lie in the bounce region (the memory both sides share: the kernel bounces each streaming DMA map into
 * it, and it is the target's memory region 0 at guest physical address {@code bounceGpa}); its address for the
 * target is its device address (the IOVA the descriptor gave, {@link DescriptorChain#address}) moved from
 * {@code bounceDeviceAddress} to {@code bounceGpa} (the bridge: both 0, GPA = IOVA). The relay never reads the
 * translated mapping of a buffer, so it works the same whether this process sees the bounce region as a hugepage
 * buffer or as the VDUSE domain file (the kernel bounce). The chain goes onto the target ring as one indirect table (so the target
 * ring never runs short), and the device-side chain completes with the target's used length when the target's used
 * element arrives. No payload byte is copied.
 *
 * <p>A chain with a buffer outside the bounce region fails alone (status VIRTIO_BLK_S_IOERR in its last writable
 * byte if it has one, §5.2.6.1) and the queue goes on; a chain the ring cannot walk returns with length 0, as in
 * {@code VirtioBlkQueueHandler}. Completions are taken from the target's used ring: while the poller spins on it
 * ({@link #quietCompletions()}, PollMode INFLIGHT or BUSY) the target is asked not to call; before the poller sleeps on
 * the VDUSE kick and the target's call eventfd ({@link #completionFd()}) together, {@link #armCompletions()} turns
 * calls on and re-checks. After the target restarted, {@link #resubmitAll()} puts every
 * outstanding request on the emptied target ring again; a target that breaks its ring fails what is outstanding. Runs on its queue's poller thread; no allocation, no
 * exceptions, no locks on the hot path.
 */
public final class RelayQueueHandler implements QueueHandler {
    private final FrontendQueue target;
    private final DriverRing ring;
    private final MemorySegment bounce;
    private final long bounceDeviceAddress;
    private final long bounceSize;
    private final long bounceGpa;
    private final DescriptorChain chain;
    private final int maxElements;
    /** Per device-side chain id: its elements as posted to the target, kept for a resubmission. */
    private final long[] savedAddr;
    private final int[] savedLen;
    private final boolean[] savedWritable;
    private final int[] savedCount;
    /** When each outstanding request was posted to the target (System.nanoTime), for the latency histogram. */
    private final long[] postNanos;
    /** Per device-side chain id: true while it is outstanding at the target. */
    private final boolean[] outstanding;
    private final long[] addr;
    private final int[] len;
    private final boolean[] writable;
    private final QueueStats stats;
    private int inflight;
    /**
     * The target signals its call eventfd for used buffers (the ring's used-buffer notifications are on); off while
     * the poller spins on the target's used ring ({@link #quietCompletions()}). Poller thread only.
     */
    private boolean callsArmed = true;
    /** The poller is inside {@link #process} (Dekker with {@link #pauseRequested}: see {@link #pause()}). */
    private volatile boolean busy;
    private volatile boolean pauseRequested;
    /** Chains failed because a buffer lay outside the bounce region. */
    private long outsideBounce;
    /** Buffer bytes of the requests posted to the target (payload, headers and status bytes, never copied). */
    private long relayedBytes;

    /**
     * @param target        the target queue; its ring must have been created with indirect tables of at least
     *                      {@code maxElements} entries, and used-buffer notifications on
     * @param deviceQueueSize size of the device-side queue (chain ids are below it)
     * @param maxElements   most buffers in one device-side chain (the device's seg_max + 2)
     * @param bounce        this process's mapping of the bounce region (only status bytes of failed requests are
     *                      written through it)
     * @param bounceDeviceAddress the device address (IOVA) of the bounce region's byte 0 on the device side
     * @param bounceGpa     the guest physical address the target knows the bounce region's byte 0 by
     */
    public RelayQueueHandler(FrontendQueue target, int deviceQueueSize, int maxElements, MemorySegment bounce,
            long bounceDeviceAddress, long bounceGpa) {
        this(target, deviceQueueSize, maxElements, bounce, bounceDeviceAddress, bounceGpa, new QueueStats());
    }

    /** As above, counting into {@code stats} (a record of the export's stats file, which outlives this handler). */
    public RelayQueueHandler(FrontendQueue target, int deviceQueueSize, int maxElements, MemorySegment bounce,
            long bounceDeviceAddress, long bounceGpa, QueueStats stats) {
        this.stats = stats;
        this.target = target;
        this.ring = target.ring();
        if (!ring.indirect() || ring.indirectEntries() < maxElements) {
            throw new IllegalArgumentException("the target ring needs indirect tables of " + maxElements + " entries");
        }
        this.bounce = bounce;
        this.bounceDeviceAddress = bounceDeviceAddress;
        this.bounceSize = bounce.byteSize();
        this.bounceGpa = bounceGpa;
        this.maxElements = maxElements;
        this.chain = new DescriptorChain(maxElements);
        this.savedAddr = new long[deviceQueueSize * maxElements];
        this.savedLen = new int[deviceQueueSize * maxElements];
        this.savedWritable = new boolean[deviceQueueSize * maxElements];
        this.savedCount = new int[deviceQueueSize];
        this.postNanos = new long[deviceQueueSize];
        this.outstanding = new boolean[deviceQueueSize];
        this.addr = new long[maxElements];
        this.len = new int[maxElements];
        this.writable = new boolean[maxElements];
    }

    @Override
    public int process(Virtqueue queue, int budget) {
        busy = true;
        if (pauseRequested) {
            busy = false;   // the target is being reconnected: leave its ring alone
            // The poller would spin on the avail buffers this relay does not take (its enableNotifications sees them
            // and it never sleeps); back off instead: a spinning poller per queue starves the restarting target on a
            // small machine. Only while a reconnection lasts, never on the hot path.
            LockSupport.parkNanos(1_000_000L);
            return 0;
        }
        try {
            return relay(queue, budget);
        } finally {
            busy = false;
        }
    }

    /**
     * Control thread: stops the relay from touching the target ring; returns once the poller is out of
     * {@link #process} (volatile busy / pauseRequested: either the poller sees the request, or this sees it busy).
     */
    public void pause() {
        pauseRequested = true;
        while (busy) {
            Thread.onSpinWait();
        }
    }

    /** Control thread: lets the poller relay again (after {@link #resubmitAll()}). */
    public void resume() {
        pauseRequested = false;
    }

    private int relay(Virtqueue queue, int budget) {
        int work = 0;
        if (inflight > 0) {
            if (callsArmed) {
                // Consume the call before reaping: a used element the target adds after the reap signals anew.
                target.consumeCall();
            }
            work += reap(queue);
            if (ring.broken()) {
                work += failOutstanding(queue);
            }
        }
        boolean added = false;
        // One target descriptor per chain (an indirect table): pop only while one is free.
        while (work < budget && ring.freeDescriptors() > 0 && !ring.broken()) {
            int r = queue.pop(chain);
            if (r == Virtqueue.EMPTY || r == Virtqueue.NEEDS_RESET) {
                break;
            }
            work++;
            if (r == Virtqueue.CHAIN_ERROR) {
                stats.chainError();
                if (chain.id() >= 0) {
                    queue.complete(chain.id(), 0);   // §2.7.8 / §2.8.21: give the buffer back
                }
                continue;
            }
            stats.popped();
            if (post(chain)) {
                added = true;
            } else {
                fail(queue, chain);
            }
        }
        if (added) {
            target.flush();
        }
        return work;
    }

    /** Posts {@code c} on the target ring; false if a buffer lies outside the bounce region. */
    private boolean post(DescriptorChain c) {
        final int n = c.bufferCount();
        final int id = c.id();
        for (int i = 0; i < n; i++) {
            final long length = c.length(i) & 0xffff_ffffL;
            final long off = c.address(i) - bounceDeviceAddress;
            // Issue 14: every buffer the virtio-blk driver maps is bounced into [0, bounce size); anything else (a
            // ring, a stale or forged address) is not memory the target was given.
            if (off < 0 || off >= bounceSize || length > bounceSize - off) {
                outsideBounce++;
                return false;
            }
            addr[i] = bounceGpa + off;
            len[i] = c.length(i);
            writable[i] = c.isWritable(i);
        }
        if (ring.addIndirect(addr, len, writable, n, id) < 0) {
            return false;   // not reached: a descriptor was free and the ring is not broken
        }
        final int base = id * maxElements;
        System.arraycopy(addr, 0, savedAddr, base, n);
        System.arraycopy(len, 0, savedLen, base, n);
        System.arraycopy(writable, 0, savedWritable, base, n);
        savedCount[id] = n;
        relayedBytes += c.readableLength() + c.writableLength();
        postNanos[id] = System.nanoTime();
        outstanding[id] = true;
        inflight++;
        return true;
    }

    /** §5.2.6.1: the device reports an error in the status byte, the chain's last writable byte. */
    private void fail(Virtqueue queue, DescriptorChain c) {
        stats.completed(-1, StatsLayout.ERR_IO, 0, 0);
        if (c.writableCount() > 0) {
            c.writeLastByte((byte) VirtioBlk.S_IOERR);
            queue.complete(c.id(), 1);
        } else {
            queue.complete(c.id(), 0);
        }
    }

    private int reap(Virtqueue queue) {
        int n = 0;
        while (ring.reap()) {
            final int id = (int) ring.usedToken();
            if (id >= 0 && id < outstanding.length && outstanding[id]) {
                outstanding[id] = false;
                inflight--;
                // Counted as "other": the relay forwards requests without parsing their header.
                stats.completed(-1, -1, ring.usedLength() & 0xffff_ffffL, System.nanoTime() - postNanos[id]);
                queue.complete(id, ring.usedLength());
                n++;
            }
        }
        return n;
    }

    /**
     * The target broke its ring (a used element that cannot be accounted: see DriverRing): nothing outstanding will
     * come back, so each fails with VIRTIO_BLK_S_IOERR in its status byte (the last byte of its last writable
     * buffer, in the bounce region) instead of hanging the queue (§5.2.6.1). The ring takes nothing new until the
     * target is reconnected.
     */
    private int failOutstanding(Virtqueue queue) {
        int n = 0;
        for (int id = 0; id < outstanding.length; id++) {
            if (!outstanding[id]) {
                continue;
            }
            outstanding[id] = false;
            inflight--;
            stats.completed(-1, StatsLayout.ERR_IO, 0, System.nanoTime() - postNanos[id]);
            final int last = id * maxElements + savedCount[id] - 1;
            if (savedWritable[last] && savedLen[last] != 0) {
                bounce.set(ValueLayout.JAVA_BYTE, savedAddr[last] - bounceGpa + (savedLen[last] & 0xffff_ffffL) - 1,
                        (byte) VirtioBlk.S_IOERR);
                queue.complete(id, 1);
            } else {
                queue.complete(id, 0);
            }
            n++;
        }
        return n;
    }

    /**
     * After the target restarted (its ring emptied by {@code VhostFrontend.reconnect()}): posts every outstanding
     * request again, as it was first posted. Call on the poller thread, or between {@link #pause()} and
     * {@link #resume()}.
     */
    public int resubmitAll() {
        int n = 0;
        for (int id = 0; id < outstanding.length; id++) {
            if (!outstanding[id]) {
                continue;
            }
            final int base = id * maxElements;
            final int count = savedCount[id];
            System.arraycopy(savedAddr, base, addr, 0, count);
            System.arraycopy(savedLen, base, len, 0, count);
            System.arraycopy(savedWritable, base, writable, 0, count);
            if (ring.addIndirect(addr, len, writable, count, id) >= 0) {
                n++;
            }
        }
        target.flush();
        return n;
    }

    @Override
    public int inflight() {
        return inflight;
    }

    /** The target queue's call eventfd. */
    @Override
    public int completionFd() {
        return target.callFd();
    }

    /**
     * The poller spins on the target's used ring: the target need not call (virtio 1.2 §2.7.7: VRING_AVAIL_F_NO_INTERRUPT,
     * or with EVENT_IDX a used_event it will not reach for 2^16 buffers, §2.7.10), which spares it a write per
     * completion and spares this relay the read of the call eventfd before each reap.
     */
    @Override
    public void quietCompletions() {
        busy = true;   // the target ring is touched: the same exclusion as process (see pause())
        if (!pauseRequested && callsArmed) {
            callsArmed = false;
            ring.disableCallbacks();
        }
        busy = false;
    }

    /**
     * Before the poller sleeps on the call eventfd: consumes a stale call, re-enables used-buffer notifications and
     * re-checks the used ring after a full fence (§2.7.7.2, Linux virtqueue_enable_cb): a used element the target
     * added while calls were off did not call, so true (reap it) instead of a sleep that would never end; one added
     * after the fence sees the notifications on and calls.
     */
    @Override
    public boolean armCompletions() {
        busy = true;
        try {
            if (pauseRequested) {
                return true;   // the target is being reconnected: let the poller call process (it backs off) instead
            }
            target.consumeCall();
            callsArmed = true;
            return !ring.enableCallbacks();
        } finally {
            busy = false;
        }
    }

    @Override
    public QueueStats stats() {
        return stats;
    }

    /** Chains failed because a buffer lay outside the bounce region. */
    public long outsideBounce() {
        return outsideBounce;
    }

    /** Buffer bytes of every request posted to the target (first posts; resubmissions not counted again). */
    public long relayedBytes() {
        return relayedBytes;
    }

    /** Payload bytes this relay copied in userspace ({@link DescriptorChain#copiedBytes()}): 0, by design. */
    public long copiedBytes() {
        return chain.copiedBytes();
    }

    @Override
    public void close() {
        // the target queue belongs to the bridge, which closes it
    }
}
