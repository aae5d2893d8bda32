package io.github.vduse4j.engine.vduse;

import io.github.vduse4j.engine.inflight.PackedInflightTracker;
import io.github.vduse4j.engine.inflight.Resubmission;
import io.github.vduse4j.engine.inflight.SplitInflightTracker;
import io.github.vduse4j.engine.inflight.TrackedVirtqueue;
import io.github.vduse4j.ring.ChainError;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.PackedVirtqueue;
import io.github.vduse4j.ring.SplitVirtqueue;
import java.lang.foreign.MemorySegment;

/**
 * Rebuilds one queue of a VDUSE device a new process takes over, from its rings and its {@link ReconnectLog} region.
 * The kernel's VDUSE_VQ_GET_INFO gives the ring addresses and size, but its positions are only what virtio-vdpa set
 * at queue setup (0), so:
 * <ul>
 * <li>split: the avail position is {@code used->idx} from the ring plus the heads logged in flight (every chain
 *     popped was used, one used element each, or is one of them: libvduse's {@code vduse_queue_check_inflights});
 *     those heads are resubmitted from the descriptor table, oldest first;</li>
 * <li>packed: there is no index in shared memory at all (virtio 1.2 §2.8), so the used position and wrap counter
 *     come from the log, the avail position is that plus every descriptor logged in flight (§2.8.1), and the lists
 *     are resubmitted from the log's copies (the driver may have reused their ring slots).</li>
 * </ul>
 * A region that does not make sense is refused ({@link IllegalStateException} with the reason), never repaired: a
 * made-up position would hand the driver wrong completions.
 */
final class QueueRecovery {
    private QueueRecovery() {}

    /** The queue to serve, how many requests it resubmits, and one line about the positions. */
    record Result(TrackedVirtqueue queue, int resubmitted, String report) {}

    /** Split ring {@code desc}/{@code avail}/{@code used} of {@code num} entries, logged in {@code region}. */
    static Result split(int index, int num, MemorySegment desc, MemorySegment avail, MemorySegment used,
                        GuestMemory data, boolean eventIdx, boolean indirect, MemorySegment region,
                        TrackedVirtqueue.FirstCompletion first) {
        SplitVirtqueue q = new SplitVirtqueue(num, desc, avail, used, data, eventIdx, indirect);
        SplitInflightTracker t = new SplitInflightTracker(region, num);
        int ringUsed = q.usedIndexInRing();
        SplitInflightTracker.Recovered r = t.recover(ringUsed);
        if (r.problem() != null) {
            throw new IllegalStateException("queue " + index + ": " + r.problem());
        }
        int start = (ringUsed + r.heads().length) & 0xffff;
        q.restore(start);
        checkRing(index, q.isBroken(), q.brokenReason());
        Resubmission resubmit = r.heads().length == 0 ? null : new Resubmission.Split(q, r.heads());
        return new Result(new TrackedVirtqueue(index, q, t, resubmit, first), r.heads().length,
                "queue " + index + ": used " + ringUsed + ", avail " + start + ", " + r.heads().length + " resubmitted");
    }

    /** Packed ring {@code desc} (+ event suppression areas) of {@code num} entries, logged in {@code region}. */
    static Result packed(int index, int num, MemorySegment desc, MemorySegment driverEvent, MemorySegment deviceEvent,
                         GuestMemory data, boolean eventIdx, boolean indirect, MemorySegment region,
                         TrackedVirtqueue.FirstCompletion first) {
        PackedVirtqueue q = new PackedVirtqueue(num, desc, driverEvent, deviceEvent, data, eventIdx, indirect);
        PackedInflightTracker t = new PackedInflightTracker(region, num);
        PackedInflightTracker.Recovered r = t.recover(desc);
        if (r.usedIdx() < 0) {
            throw new IllegalStateException("queue " + index + ": " + r.problem());
        }
        int n = r.descriptors();
        int avail = r.usedIdx() + n;
        boolean availWrap = r.usedWrap();
        if (avail >= num) { // §2.8.1: the wrap counter flips each time the index passes the ring's end
            avail -= num;
            availWrap = !availWrap;
        }
        q.restore(avail, availWrap, r.usedIdx(), r.usedWrap());
        checkRing(index, q.isBroken(), q.brokenReason());
        if (!r.lists().isEmpty()) {
            q.forgetStaleUsed(n); // used elements staged but never published must not show up behind ours
        }
        Resubmission resubmit = r.lists().isEmpty() ? null : new Resubmission.Packed(q, r.lists());
        return new Result(new TrackedVirtqueue(index, q, t, resubmit, first), r.lists().size(),
                "queue " + index + ": used " + r.usedIdx() + "/" + (r.usedWrap() ? 1 : 0) + ", avail " + avail + "/"
                        + (availWrap ? 1 : 0) + ", " + r.lists().size() + " resubmitted");
    }

    private static void checkRing(int index, boolean broken, int reason) {
        if (broken) {
            throw new IllegalStateException("queue " + index + ": the recovered position is not one of this ring ("
                    + ChainError.name(reason) + ")");
        }
    }
}
