package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.engine.inflight.InflightTracker;
import io.github.vduse4j.engine.inflight.PackedInflightTracker;
import io.github.vduse4j.engine.inflight.Resubmission;
import io.github.vduse4j.engine.inflight.SplitInflightTracker;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.bit;

import io.github.vduse4j.engine.EventFdKick;
import io.github.vduse4j.engine.KickSource;
import io.github.vduse4j.engine.PollerSettings;
import io.github.vduse4j.engine.QueuePoller;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.VirtioDevice;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.PackedVirtqueue;
import io.github.vduse4j.ring.SplitVirtqueue;
import io.github.vduse4j.ring.VirtioRing;
import io.github.vduse4j.ring.Virtqueue;
import java.lang.foreign.MemorySegment;

/**
 * What the frontend told the back-end about one vring (SET_VRING_NUM/ADDR/BASE/KICK/CALL/ERR/ENABLE) and the
 * queue poller serving it while it runs. Control thread only (the poller has its own thread).
 *
 * <p>Spec "Ring states": a ring starts when it gets a kick fd (or the NOFD flag), is enabled by
 * SET_VRING_ENABLE when protocol features were negotiated (otherwise it starts enabled), and stops on
 * GET_VRING_BASE, which returns where it stopped.
 */
final class Vring {
    final int index;
    int num;
    boolean addrSet;
    long descAddr;
    long availAddr;   // split: available ring; packed: driver event suppression area
    long usedAddr;    // split: used ring; packed: device event suppression area
    int baseAvail;
    boolean baseAvailWrap = true;
    int baseUsed = -1; // packed only; split reads the used index from the ring
    boolean baseUsedWrap = true;
    KickSource kick;
    int kickFd = -1;
    final VringCall call = new VringCall();
    int errFd = -1;
    boolean enabled;

    private QueuePoller poller;
    private VringQueue queue;
    private QueueQuiescence quiescence;
    private QueueStats lastStats = new QueueStats();

    private final PollerSettings pollerSettings;

    Vring(int index, PollerSettings pollerSettings) {
        this.index = index;
        this.pollerSettings = pollerSettings;
    }

    boolean running() {
        return poller != null;
    }

    boolean hasKick() {
        return kick != null;
    }

    QueueQuiescence quiescence() {
        return poller == null ? null : quiescence;
    }

    QueueStats stats() {
        return poller == null ? lastStats : poller.handler().stats();
    }

    QueuePoller poller() {
        return poller;
    }

    /**
     * Starts the poller if the ring is complete (size, addresses, kick, enabled, memory).
     *
     * @return null if it runs (or is not yet complete), otherwise why it cannot run
     */
    String startIfReady(VirtioDevice device, long features, boolean protocolFeatures, VhostUserMemory memory,
                        VhostUserIotlb iotlb, InflightRegion inflight) {
        if (running() || num == 0 || !addrSet || kick == null || (protocolFeatures && !enabled) || memory.isEmpty()) {
            return null;
        }
        boolean packed = (features & bit(VirtioRing.F_RING_PACKED)) != 0;
        boolean eventIdx = (features & bit(VirtioRing.F_EVENT_IDX)) != 0;
        boolean indirect = (features & bit(VirtioRing.F_INDIRECT_DESC)) != 0;
        boolean iommu = (features & bit(VirtioRing.F_ACCESS_PLATFORM)) != 0;
        if (!packed && Integer.bitCount(num) != 1) {
            return "split ring size " + num + " is not a power of two"; // virtio 1.2 §2.7
        }
        long virtioFeatures = features & ~bit(VhostUserProtocol.F_PROTOCOL_FEATURES);
        SplitInflightTracker splitTracker = null;
        PackedInflightTracker packedTracker = null;
        if (inflight != null) {
            if (packed) {
                packedTracker = inflight.packedTracker(index, num);
            } else {
                splitTracker = inflight.splitTracker(index, num);
            }
            if (splitTracker == null && packedTracker == null) {
                log("the inflight buffer (" + inflight.describe() + ") does not describe this " + (packed ? "packed" : "split")
                        + " ring of " + num + ": its requests are not tracked");
            }
        }
        InflightTracker tracker = packed ? packedTracker : splitTracker;
        QueueQuiescence q;
        VhostUserIotlb.View view = null;
        VringQueue.Factory factory;
        VringQueue.Built ready = null;
        // Spec "Memory access": descriptors hold guest addresses (IOVAs with IOMMU_PLATFORM); SET_VRING_ADDR
        // holds user addresses, or IOVAs with IOMMU_PLATFORM.
        if (!iommu) { // resolvable right here: refuse a ring outside the memory table at once
            factory = factory(memory.userAddresses(), memory.guestPhysical(), packed, eventIdx, indirect, splitTracker,
                    packedTracker);
            try {
                ready = factory.create();
            } catch (RuntimeException e) {
                return "queue " + index + ": " + e.getMessage();
            }
            if (ready == null) {
                return "queue " + index + ": ring addresses are outside the memory table";
            }
            q = new QueueQuiescence(device.openQueue(index, virtioFeatures, num));
        } else {
            // Each queue translates IOVAs through its own view; the ring is resolved on the poller thread, which
            // may wait for IOTLB misses (the control thread must not: it applies the UPDATEs).
            q = new QueueQuiescence(device.openQueue(index, virtioFeatures, num));
            view = iotlb.view(q);
            factory = factory(view, view, packed, eventIdx, indirect, splitTracker, packedTracker);
        }
        quiescence = q;
        queue = new VringQueue(index, num, ready, factory, tracker, quiescence, view);
        poller = new QueuePoller(index, queue, quiescence, kick, call, pollerSettings);
        poller.start();
        return null;
    }

    /**
     * Builds (and restores) the ring from what the frontend set, with these address translations, and recovers what
     * the inflight buffer says is still in flight. Runs once per start: on the control thread, or with an IOMMU on
     * the poller thread before its first pop.
     */
    VringQueue.Factory factory(GuestMemory rings, GuestMemory data, boolean packed, boolean eventIdx, boolean indirect,
                               SplitInflightTracker splitTracker, PackedInflightTracker packedTracker) {
        int size = num;
        long desc = descAddr, avail = availAddr, used = usedAddr;
        int bAvail = baseAvail, bUsed = baseUsed;
        boolean bAvailWrap = baseAvailWrap, bUsedWrap = baseUsedWrap;
        return () -> packed
                ? packedRing(size, rings, data, desc, avail, used, eventIdx, indirect, bAvail, bAvailWrap, bUsed, bUsedWrap,
                        packedTracker)
                : splitRing(size, rings, data, desc, avail, used, eventIdx, indirect, bAvail, splitTracker);
    }

    /**
     * Packed: avail position from SET_VRING_BASE; used position from SET_VRING_BASE too, unless the inflight buffer
     * holds lists in flight: then from the buffer ({@code old_used_idx}/{@code old_used_wrap_counter} after recovery),
     * the only record of where the crashed back-end's used elements stopped. The lists are resubmitted from the
     * buffer's copies, since the driver may have reused their ring slots.
     */
    private VringQueue.Built packedRing(int num, GuestMemory rings, GuestMemory data, long desc, long driver,
                                        long device, boolean eventIdx, boolean indirect, int availIdx,
                                        boolean availWrap, int usedIdx, boolean usedWrap,
                                        PackedInflightTracker tracker) {
        MemorySegment d = VhostUserMemory.ringSlice(rings, desc, VirtioRing.descTableBytes(num),
                GuestMemory.READ | GuestMemory.WRITE);
        MemorySegment drv = VhostUserMemory.ringSlice(rings, driver, VirtioRing.EVENT_SUPPRESSION_BYTES, GuestMemory.READ);
        MemorySegment dev = VhostUserMemory.ringSlice(rings, device, VirtioRing.EVENT_SUPPRESSION_BYTES,
                GuestMemory.READ | GuestMemory.WRITE);
        if (d == null || drv == null || dev == null) {
            return null;
        }
        PackedVirtqueue q = new PackedVirtqueue(num, d, drv, dev, data, eventIdx, indirect);
        int u = usedIdx < 0 ? availIdx : usedIdx;
        boolean uWrap = usedIdx < 0 ? availWrap : usedWrap;
        Resubmission pending = null;
        int descriptorsInFlight = 0;
        if (tracker != null) {
            PackedInflightTracker.Recovered r = tracker.recover(d, availIdx, availWrap, u, uWrap);
            if (r.problem() != null) {
                log("inflight buffer: " + r.problem() + (r.lists().isEmpty() ? "; nothing resubmitted" : ""));
            }
            if (!r.lists().isEmpty()) {
                u = r.usedIdx();
                uWrap = r.usedWrap();
                pending = new Resubmission.Packed(q, r.lists());
                descriptorsInFlight = r.descriptors();
                log("resubmitting " + r.lists().size() + " inflight requests (used position " + u + "/" + (uWrap ? 1 : 0)
                        + " from the inflight buffer, avail " + availIdx + "/" + (availWrap ? 1 : 0) + ")");
            }
        }
        q.restore(availIdx, availWrap, u, uWrap);
        if (pending != null) {
            // used elements the crashed back-end staged but never published must not show up behind ours
            q.forgetStaleUsed(descriptorsInFlight);
        }
        return new VringQueue.Built(q, pending);
    }

    /**
     * Split: the in-flight heads are resubmitted from the descriptor table (the driver cannot reuse their
     * descriptors before they are used), in counter order, and the avail ring is popped from
     * {@code used->idx + heads}: every chain popped was either used (one used element each, whatever the order) or
     * is one of those heads. That holds with nothing in flight too, so with an inflight buffer the frontend's
     * SET_VRING_BASE is not used (libvhost-user's {@code vu_check_queue_inflights} does the same): a frontend that
     * lost the back-end takes {@code used->idx} as the base when it notices (QEMU's {@code vhost_virtqueue_stop}
     * when GET_VRING_BASE fails), while this back-end is still draining, i.e. still adding used elements; popping
     * from that stale base would execute chains again that were already used.
     */
    private VringQueue.Built splitRing(int num, GuestMemory rings, GuestMemory data, long desc, long avail, long used,
                                       boolean eventIdx, boolean indirect, int baseAvail, SplitInflightTracker tracker) {
        MemorySegment d = VhostUserMemory.ringSlice(rings, desc, VirtioRing.descTableBytes(num), GuestMemory.READ);
        MemorySegment a = VhostUserMemory.ringSlice(rings, avail, VirtioRing.availRingBytes(num), GuestMemory.READ);
        MemorySegment u = VhostUserMemory.ringSlice(rings, used, VirtioRing.usedRingBytes(num),
                GuestMemory.READ | GuestMemory.WRITE);
        if (d == null || a == null || u == null) {
            return null;
        }
        SplitVirtqueue q = new SplitVirtqueue(num, d, a, u, data, eventIdx, indirect);
        int start = baseAvail;
        Resubmission pending = null;
        if (tracker != null) {
            int ringUsed = q.usedIndexInRing();
            SplitInflightTracker.Recovered r = tracker.recover(ringUsed);
            if (r.problem() != null) {
                log("inflight buffer: " + r.problem() + "; nothing resubmitted");
            }
            start = (ringUsed + r.heads().length) & 0xffff;
            if (r.heads().length > 0) {
                pending = new Resubmission.Split(q, r.heads());
                log("resubmitting " + r.heads().length + " inflight requests; popping the avail ring from index "
                        + start + " (frontend base " + baseAvail + ")");
            } else if (start != (baseAvail & 0xffff)) {
                log("popping the avail ring from the used index " + start + ", not the frontend's base " + baseAvail
                        + " (read before this back-end had drained)");
            }
        }
        q.restore(start); // spec SET_VRING_BASE: next avail index, used index from the ring
        return new VringQueue.Built(q, pending);
    }

    private void log(String s) {
        System.err.println("vduse4j: vhost-user: queue " + index + ": " + s);
    }

    /** Stops the poller (draining in-flight requests) and remembers where the ring stopped. */
    void stop() {
        if (poller == null) {
            return;
        }
        poller.stop();
        Virtqueue r = queue.ring();
        if (r != null) {
            baseAvail = r.lastAvailIndex();
            baseAvailWrap = r.lastAvailWrapCounter();
            baseUsed = r.lastUsedIndex();
            baseUsedWrap = r.lastUsedWrapCounter();
        }
        lastStats = poller.handler().stats();
        try {
            poller.handler().close();
        } catch (RuntimeException e) {
            System.err.println("vduse4j: vhost-user: queue " + index + ": closing its handler failed: " + e);
        }
        poller = null;
        queue = null;
        quiescence = null;
    }

    /** GET_VRING_BASE payload: split: next avail index; packed: avail idx|wrap<<15 in the low half, used in the high. */
    int base(boolean packed) {
        if (!packed) {
            return baseAvail & 0xffff;
        }
        int a = (baseAvail & 0x7fff) | (baseAvailWrap ? 0x8000 : 0);
        int u = baseUsed < 0 ? a : (baseUsed & 0x7fff) | (baseUsedWrap ? 0x8000 : 0);
        return a | (u << 16);
    }

    /**
     * SET_VRING_BASE. Packed: taken literally (bit 15 of each half is the wrap counter), as Linux vhost and DPDK do;
     * a fresh ring is 0x80008000 (indexes 0, wrap counters 1, virtio 1.2 §2.8.1), which QEMU sends. A plain 0 is
     * the legitimate state "index 0 in a lap with wrap counter 0", not "fresh".
     */
    void setBase(int value, boolean packed) {
        if (!packed) {
            baseAvail = value & 0xffff;
            baseAvailWrap = true;
            baseUsed = -1;
        } else {
            baseAvail = value & 0x7fff;
            baseAvailWrap = (value & 0x8000) != 0;
            int u = value >>> 16;
            baseUsed = u & 0x7fff;
            baseUsedWrap = (u & 0x8000) != 0;
        }
    }

    /** Replaces the kick fd (-1 with {@code polling}: NOFD); the ring must be stopped. */
    void setKick(int fd, boolean polling) {
        closeKick();
        if (fd >= 0) {
            kick = new EventFdKick(fd);
            kickFd = fd;
        } else if (polling) {
            kick = new PollingKick();
        }
    }

    void closeKick() {
        if (kick instanceof EventFdKick k) {
            try {
                k.close();
            } catch (RuntimeException ignored) {
                // already closed
            }
        }
        kick = null;
        kickFd = -1;
    }

    /** Replaces the call fd; a running poller is paused around the swap so it never writes a closed fd. */
    void setCall(int fd) {
        QueuePoller p = poller;
        if (p != null) {
            p.pause();
        }
        int old = call.replace(fd);
        if (p != null) {
            p.resume();
        }
        VhostUserMessage.closeQuietly(old);
    }

    void setErr(int fd) {
        VhostUserMessage.closeQuietly(errFd);
        errFd = fd;
    }

    /** Forgets everything (disconnect, RESET_DEVICE): stops and closes every fd. */
    void reset() {
        stop();
        closeKick();
        VhostUserMessage.closeQuietly(call.replace(-1));
        setErr(-1);
        num = 0;
        addrSet = false;
        descAddr = availAddr = usedAddr = 0;
        baseAvail = 0;
        baseAvailWrap = true;
        baseUsed = -1;
        baseUsedWrap = true;
        enabled = false;
    }
}
