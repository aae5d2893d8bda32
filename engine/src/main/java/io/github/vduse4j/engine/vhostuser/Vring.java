package io.github.vduse4j.engine.vhostuser;

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
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

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
        InflightRegion.Tracker tracker = inflight != null && !packed ? inflight.tracker(index, num) : null;
        QueueQuiescence q;
        VhostUserIotlb.View view = null;
        VringQueue.Factory factory;
        Virtqueue ready = null;
        // Spec "Memory access": descriptors hold guest addresses (IOVAs with IOMMU_PLATFORM); SET_VRING_ADDR
        // holds user addresses, or IOVAs with IOMMU_PLATFORM.
        if (!iommu) { // resolvable right here: refuse a ring outside the memory table at once
            factory = factory(memory.userAddresses(), memory.guestPhysical(), packed, eventIdx, indirect, tracker);
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
            factory = factory(view, view, packed, eventIdx, indirect, tracker);
        }
        quiescence = q;
        queue = new VringQueue(index, num, ready, factory, tracker, quiescence, view);
        poller = new QueuePoller(index, queue, quiescence, kick, call, pollerSettings);
        poller.start();
        return null;
    }

    /** Builds (and restores) the ring from what the frontend set, with these address translations. */
    private VringQueue.Factory factory(GuestMemory rings, GuestMemory data, boolean packed, boolean eventIdx,
                                       boolean indirect, InflightRegion.Tracker tracker) {
        int size = num;
        long desc = descAddr, avail = availAddr, used = usedAddr;
        int bAvail = baseAvail, bUsed = baseUsed;
        boolean bAvailWrap = baseAvailWrap, bUsedWrap = baseUsedWrap;
        return () -> packed
                ? packedRing(size, rings, data, desc, avail, used, eventIdx, indirect, bAvail, bAvailWrap, bUsed, bUsedWrap)
                : splitRing(size, rings, data, desc, avail, used, eventIdx, indirect, bAvail, tracker);
    }

    private static Virtqueue packedRing(int num, GuestMemory rings, GuestMemory data, long desc, long driver, long device,
                                        boolean eventIdx, boolean indirect, int availIdx, boolean availWrap,
                                        int usedIdx, boolean usedWrap) {
        MemorySegment d = VhostUserMemory.ringSlice(rings, desc, VirtioRing.descTableBytes(num),
                GuestMemory.READ | GuestMemory.WRITE);
        MemorySegment drv = VhostUserMemory.ringSlice(rings, driver, VirtioRing.EVENT_SUPPRESSION_BYTES, GuestMemory.READ);
        MemorySegment dev = VhostUserMemory.ringSlice(rings, device, VirtioRing.EVENT_SUPPRESSION_BYTES,
                GuestMemory.READ | GuestMemory.WRITE);
        if (d == null || drv == null || dev == null) {
            return null;
        }
        PackedVirtqueue q = new PackedVirtqueue(num, d, drv, dev, data, eventIdx, indirect);
        q.restore(availIdx, availWrap, usedIdx < 0 ? availIdx : usedIdx, usedIdx < 0 ? availWrap : usedWrap);
        return q;
    }

    private Virtqueue splitRing(int num, GuestMemory rings, GuestMemory data, long desc, long avail, long used,
                                boolean eventIdx, boolean indirect, int baseAvail, InflightRegion.Tracker tracker) {
        MemorySegment d = VhostUserMemory.ringSlice(rings, desc, VirtioRing.descTableBytes(num), GuestMemory.READ);
        MemorySegment a = VhostUserMemory.ringSlice(rings, avail, VirtioRing.availRingBytes(num), GuestMemory.READ);
        MemorySegment u = VhostUserMemory.ringSlice(rings, used, VirtioRing.usedRingBytes(num),
                GuestMemory.READ | GuestMemory.WRITE);
        if (d == null || a == null || u == null) {
            return null;
        }
        SplitVirtqueue q = new SplitVirtqueue(num, d, a, u, data, eventIdx, indirect);
        int start = baseAvail;
        if (tracker != null) {
            int ringUsed = q.usedIndexInRing();
            List<Integer> heads = tracker.recover(ringUsed);
            if (!heads.isEmpty()) {
                start = resubmitFrom(a, num, ringUsed, heads, baseAvail);
            }
        }
        q.restore(start); // spec SET_VRING_BASE: next avail index from the frontend, used index from the ring
        return q;
    }

    /**
     * Spec "Inflight I/O tracking", "When reconnecting": resubmit what was popped but never used. Requests complete
     * in order here (synchronous backends publish whole batches), so the in-flight heads are exactly the avail
     * entries from the ring's used index on: popping again from there resubmits them in their original order.
     */
    private int resubmitFrom(MemorySegment avail, int num, int ringUsed, List<Integer> heads, int baseAvail) {
        Set<Integer> expected = new HashSet<>(heads);
        Set<Integer> found = new HashSet<>();
        for (int k = 0; k < heads.size(); k++) {
            long off = VirtioRing.AVAIL_RING + 2L * ((ringUsed + k) & (num - 1));
            found.add(avail.get(ValueLayout.JAVA_SHORT_UNALIGNED, off) & 0xffff);
        }
        if (!found.equals(expected)) {
            System.err.println("vduse4j: vhost-user: queue " + index + ": " + heads.size()
                    + " inflight requests do not match the avail ring; not resubmitting");
            return baseAvail;
        }
        System.err.println("vduse4j: vhost-user: queue " + index + ": resubmitting " + heads.size()
                + " inflight requests from avail index " + ringUsed);
        return ringUsed;
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

    /** SET_VRING_BASE. */
    void setBase(int value, boolean packed) {
        if (!packed) {
            baseAvail = value & 0xffff;
            baseAvailWrap = true;
            baseUsed = -1;
        } else if (value == 0) { // a fresh packed ring: indexes 0, wrap counters 1 (virtio 1.2 §2.8.1)
            baseAvail = 0;
            baseAvailWrap = true;
            baseUsed = 0;
            baseUsedWrap = true;
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
