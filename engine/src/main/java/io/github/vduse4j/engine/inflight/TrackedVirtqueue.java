package io.github.vduse4j.engine.inflight;

import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;

/**
 * A virtqueue whose pops, completions and publications are recorded in an inflight log ({@link InflightTracker}), and
 * which first hands out the requests an earlier process left in flight ({@link Resubmission}, oldest first) before it
 * pops anything new from the ring. The VDUSE transport serves every queue through one (the vhost-user one, whose
 * ring is built lazily on the poller thread, is {@code vhostuser.VringQueue}).
 *
 * <p>Hot path: a tracker call per pop, completion and publication (plain stores and release fences into the
 * mapped log, no syscall, no allocation). Poller thread only.
 */
public final class TrackedVirtqueue implements Virtqueue {
    /** Told once, on the poller thread, when the first publication after a recovery made a completion visible. */
    public interface FirstCompletion {
        void published(int queue);
    }

    private final int index;
    private final Virtqueue q;
    private final InflightTracker tracker;
    private Resubmission pending;
    private FirstCompletion first;
    private final int usedAtStart;
    private final boolean usedWrapAtStart;

    /**
     * @param index        the queue's index (for {@code first})
     * @param ring         the ring, restored to its recovered position
     * @param tracker      the queue's log
     * @param resubmission requests to hand out before the ring's, or null
     * @param first        told about the first visible completion, or null
     */
    public TrackedVirtqueue(int index, Virtqueue ring, InflightTracker tracker, Resubmission resubmission,
                            FirstCompletion first) {
        this.index = index;
        this.q = ring;
        this.tracker = tracker;
        this.pending = resubmission == null || resubmission.remaining() == 0 ? null : resubmission;
        this.first = first;
        this.usedAtStart = ring.lastUsedIndex();
        this.usedWrapAtStart = ring.lastUsedWrapCounter();
    }

    /** The ring itself (crash-injection tests drive it and the tracker step by step). */
    public Virtqueue ring() {
        return q;
    }

    /** The queue's log. */
    public InflightTracker tracker() {
        return tracker;
    }

    /** Requests of the earlier process not handed out yet. */
    public int resubmissionsLeft() {
        return pending == null ? 0 : pending.remaining();
    }

    @Override
    public int pop(DescriptorChain chain) {
        if (pending != null) { // resubmit before anything new; these are tracked already
            int r = pending.pop(chain);
            if (r != EMPTY) {
                return r;
            }
            pending = null;
        }
        int firstSlot = q.lastAvailIndex(); // packed: the list occupies ring slots [first, lastAvail after the pop)
        int r = q.pop(chain);
        if (r == POPPED || r == CHAIN_ERROR) {
            tracker.popped(chain.id(), firstSlot, q.lastAvailIndex());
        }
        return r;
    }

    @Override
    public void complete(int id, int writtenLength) {
        q.complete(id, writtenLength);
        tracker.completed(id);
    }

    @Override
    public void publish() {
        tracker.publishing(q.lastUsedIndex(), q.lastUsedWrapCounter());
        q.publish();
        tracker.published(q.lastUsedIndex(), q.lastUsedWrapCounter());
        if (first != null && (q.lastUsedIndex() != usedAtStart || q.lastUsedWrapCounter() != usedWrapAtStart)) {
            FirstCompletion f = first;
            first = null;
            f.published(index);
        }
    }

    @Override
    public boolean needsNotification() {
        return q.needsNotification();
    }

    @Override
    public void disableNotifications() {
        q.disableNotifications();
    }

    @Override
    public boolean enableNotifications() {
        // resubmissions waiting: never let the poller sleep on them
        return pending != null || q.enableNotifications();
    }

    @Override public boolean isBroken() { return q.isBroken(); }
    @Override public int brokenReason() { return q.brokenReason(); }
    @Override public int size() { return q.size(); }
    @Override public int lastAvailIndex() { return q.lastAvailIndex(); }
    @Override public boolean lastAvailWrapCounter() { return q.lastAvailWrapCounter(); }
    @Override public int lastUsedIndex() { return q.lastUsedIndex(); }
    @Override public boolean lastUsedWrapCounter() { return q.lastUsedWrapCounter(); }
    @Override public int inflight() { return q.inflight(); }

    @Override
    public void restore(int lastAvailIndex, boolean availWrap, int lastUsedIndex, boolean usedWrap) {
        q.restore(lastAvailIndex, availWrap, lastUsedIndex, usedWrap);
        pending = null; // the ring forgot what was in flight; resubmissions no longer fit it
    }
}
