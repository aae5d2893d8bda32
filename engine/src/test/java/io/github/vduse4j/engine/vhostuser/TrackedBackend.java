package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.engine.inflight.InflightTracker;
import io.github.vduse4j.engine.inflight.PackedInflightTracker;
import io.github.vduse4j.engine.inflight.SplitInflightTracker;

import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.testkit.PackedDriver;
import io.github.vduse4j.ring.testkit.SplitDriver;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One back-end instance over a ring-test-kit driver's ring, built exactly as {@link Vring} builds it (tracker from
 * the {@link InflightRegion}, recovery, resubmission, {@link VringQueue}), serving echo requests whose completion the
 * test schedules. A "crash" is simply abandoning the instance: nothing is drained, the region keeps what it holds.
 */
final class TrackedBackend {
    final VringQueue queue;
    final InflightTracker tracker;
    private final DescriptorChain chain;
    private final Map<Integer, Integer> held = new LinkedHashMap<>();   // id -> bytes written
    private final MemorySegment scratch = Arena.ofAuto().allocate(1 << 16);
    int lastResult;
    int lastError;

    private TrackedBackend(VringQueue queue, InflightTracker tracker, int size) {
        this.queue = queue;
        this.tracker = tracker;
        this.chain = new DescriptorChain(DescriptorChain.capacityFor(size));
    }

    /** A packed back-end; {@code base} is SET_VRING_BASE's payload (avail | wrap << 15, used | wrap << 15 above). */
    static TrackedBackend packed(PackedDriver d, InflightRegion region, int base) {
        Vring v = new Vring(0, null);
        v.num = d.size();
        v.descAddr = d.descAddress();
        v.availAddr = d.driverEventAddress();
        v.usedAddr = d.deviceEventAddress();
        v.addrSet = true;
        v.setBase(base, true);
        PackedInflightTracker t = region.packedTracker(0, d.size());
        GuestMemory m = d.memory().table();
        VringQueue.Built b = v.factory(m, m, true, d.eventIdx(), d.indirect(), null, t).create();
        return new TrackedBackend(new VringQueue(0, d.size(), b, null, t, null, null), t, d.size());
    }

    /** A split back-end; {@code base} is SET_VRING_BASE's next avail index. */
    static TrackedBackend split(SplitDriver d, InflightRegion region, int base) {
        Vring v = new Vring(0, null);
        v.num = d.size();
        v.descAddr = d.descAddress();
        v.availAddr = d.availAddress();
        v.usedAddr = d.usedAddress();
        v.addrSet = true;
        v.setBase(base, false);
        SplitInflightTracker t = region.splitTracker(0, d.size());
        GuestMemory m = d.memory().table();
        VringQueue.Built b = v.factory(m, m, false, d.eventIdx(), d.indirect(), t, null).create();
        return new TrackedBackend(new VringQueue(0, d.size(), b, null, t, null, null), t, d.size());
    }

    /**
     * Pops everything there is (resubmissions first), echoing each chain's readable bytes into its writable ones
     * at once and holding its completion; returns the ids in pop order. Stops at NEEDS_RESET ({@link #lastResult}).
     */
    List<Integer> popAll() {
        List<Integer> ids = new ArrayList<>();
        for (;;) {
            int r = queue.pop(chain);
            lastResult = r;
            lastError = chain.error();
            if (r == Virtqueue.EMPTY || r == Virtqueue.NEEDS_RESET) {
                return ids;
            }
            int written = 0;
            if (r == Virtqueue.POPPED) {
                long n = Math.min(chain.readableLength(), scratch.byteSize());
                chain.readTo(0, scratch, 0, n);
                written = (int) chain.writeFrom(scratch, 0, 0, n);
            }
            if (held.putIfAbsent(chain.id(), written) != null) {
                throw new AssertionError("id " + chain.id() + " handed out twice");
            }
            ids.add(chain.id());
        }
    }

    /** Completes (stages) chain {@code id}. */
    void complete(int id) {
        Integer w = held.remove(id);
        if (w == null) {
            throw new AssertionError("id " + id + " is not held");
        }
        queue.complete(id, w);
    }

    /** Completes everything held, in pop order, and publishes. */
    void completeAll() {
        for (int id : new ArrayList<>(held.keySet())) {
            complete(id);
        }
        queue.publish();
    }

    List<Integer> held() {
        return new ArrayList<>(held.keySet());
    }

    Virtqueue ring() {
        return queue.ring();
    }
}
