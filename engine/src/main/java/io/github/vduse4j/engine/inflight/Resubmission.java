package io.github.vduse4j.engine.inflight;

import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.PackedVirtqueue;
import io.github.vduse4j.ring.SplitVirtqueue;
import io.github.vduse4j.ring.Virtqueue;
import java.util.List;

/**
 * Requests an earlier back-end popped and never used (spec "Inflight I/O tracking", "When reconnecting": "resubmit
 * inflight entries in order of their counter value"), prepared when the ring is built and handed to the device by
 * the queue before anything new is popped from the ring. Poller thread only; no allocation.
 */
public abstract sealed class Resubmission {
    private int next;

    /** How many requests are waiting. */
    public abstract int count();

    /** Builds request {@code k} into {@code chain}: as {@link Virtqueue#pop}, never {@link Virtqueue#EMPTY}. */
    public abstract int pop(DescriptorChain chain, int k);

    /** The next request, as {@link Virtqueue#pop}; {@link Virtqueue#EMPTY} once all were handed out. */
    public final int pop(DescriptorChain chain) {
        return next < count() ? pop(chain, next++) : Virtqueue.EMPTY;
    }

    /** Requests not handed out yet. */
    public final int remaining() {
        return count() - next;
    }

    /** Split: the in-flight heads, still valid in the descriptor table, walked again ({@link SplitVirtqueue#popHead}). */
    public static final class Split extends Resubmission {
        private final SplitVirtqueue ring;
        private final int[] heads;

        public Split(SplitVirtqueue ring, int[] heads) {
            this.ring = ring;
            this.heads = heads.clone();
        }

        @Override
        public int count() {
            return heads.length;
        }

        @Override
        public int pop(DescriptorChain chain, int k) {
            return ring.popHead(chain, heads[k]);
        }
    }

    /** Packed: the descriptor lists as the inflight buffer saved them ({@link PackedVirtqueue#popCopied}). */
    public static final class Packed extends Resubmission {
        private final PackedVirtqueue ring;
        private final PackedInflightTracker.SavedList[] lists;

        public Packed(PackedVirtqueue ring, List<PackedInflightTracker.SavedList> lists) {
            this.ring = ring;
            this.lists = lists.toArray(new PackedInflightTracker.SavedList[0]);
        }

        @Override
        public int count() {
            return lists.length;
        }

        @Override
        public int pop(DescriptorChain chain, int k) {
            PackedInflightTracker.SavedList l = lists[k];
            return ring.popCopied(chain, l.id(), l.addr(), l.len(), l.flags(), l.count());
        }
    }
}
