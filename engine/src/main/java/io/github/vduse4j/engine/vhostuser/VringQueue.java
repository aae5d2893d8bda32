package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.engine.inflight.InflightTracker;
import io.github.vduse4j.engine.inflight.Resubmission;

import io.github.vduse4j.ring.ChainError;
import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;

/**
 * The virtqueue a vhost-user queue poller serves: the split or packed ring itself, built on first use by the
 * poller thread (with an IOMMU the ring addresses are IOVAs, and resolving them may need IOTLB misses that only
 * a thread other than the control thread may wait for), plus inflight tracking in the shared
 * {@link InflightRegion} when the frontend set one up: the requests an earlier back-end left in flight are
 * {@linkplain Resubmission resubmitted} before anything new is popped, and every pop, completion and publication
 * is recorded ({@link InflightTracker}).
 *
 * <p>With an IOMMU, {@link #publish()} also ends the translation lifetime of the queue's IOTLB view
 * ({@link VhostUserIotlb.View#newBatch()}).
 *
 * <p>Until the ring is built, or if it cannot be (addresses not mapped), the queue reports itself broken and
 * its poller parks until the control thread stops it.
 */
final class VringQueue implements Virtqueue {
    /** Builds and restores the ring (and recovers its inflight state); returns null if its addresses cannot be resolved. */
    interface Factory {
        Built create();
    }

    /** A ring ready to serve, and the requests to resubmit before popping it (null: none). */
    record Built(Virtqueue ring, Resubmission resubmission) {}

    private final int size;
    private final Factory factory;
    private final InflightTracker tracker;
    private final QueueQuiescence quiescence;
    private final VhostUserIotlb.View iotlb;
    private final int index;
    private Virtqueue q;
    private Resubmission pending;
    private boolean failed;
    private int chainErrors;

    /**
     * @param ready   the ring if the control thread could build it already, else null (built on first use)
     * @param tracker the queue's inflight tracking, or null
     * @param iotlb   the queue's IOTLB view (IOMMU_PLATFORM), or null
     */
    VringQueue(int index, int size, Built ready, Factory factory, InflightTracker tracker,
               QueueQuiescence quiescence, VhostUserIotlb.View iotlb) {
        this.index = index;
        this.size = size;
        this.quiescence = quiescence;
        this.iotlb = iotlb;
        this.factory = factory;
        this.tracker = tracker;
        take(ready);
    }

    private void take(Built b) {
        q = b == null ? null : b.ring();
        pending = b == null || b.resubmission() == null || b.resubmission().remaining() == 0 ? null : b.resubmission();
    }

    /** The ring, or null if it has not been built (or could not be). */
    Virtqueue ring() {
        return q;
    }

    private boolean ready() {
        if (q != null) {
            return true;
        }
        if (failed) {
            return false;
        }
        quiescence.register(); // resolving may miss in the IOTLB: only a registered poller thread may wait
        try {
            take(factory.create());
        } catch (RuntimeException e) {
            take(null);
        }
        failed = q == null;
        return q != null;
    }

    @Override
    public int pop(DescriptorChain chain) {
        if (!ready()) {
            return NEEDS_RESET;
        }
        int r;
        if (pending != null) { // spec "When reconnecting": resubmit before anything new; tracked already
            r = pending.pop(chain);
            if (r != EMPTY) {
                if (r == CHAIN_ERROR) {
                    chainError(chain);
                }
                return r;
            }
            pending = null;
        }
        if (tracker == null) {
            r = q.pop(chain);
        } else {
            int first = q.lastAvailIndex(); // packed: the list occupies ring slots [first, lastAvail after the pop)
            r = q.pop(chain);
            if (r == POPPED || r == CHAIN_ERROR) {
                tracker.popped(chain.id(), first, q.lastAvailIndex());
            }
        }
        if (r == CHAIN_ERROR) {
            chainError(chain);
        }
        return r;
    }

    /** The driver's chain cannot be walked: worth a (rate-limited) line, the handler only counts it. */
    private void chainError(DescriptorChain chain) {
        int n = ++chainErrors;
        if (n <= 10 || Integer.bitCount(n) == 1) {
            System.err.println("vduse4j: vhost-user: queue " + index + ": chain " + chain.id() + " refused: "
                    + ChainError.name(chain.error()) + " (" + n + " so far)");
        }
    }

    @Override
    public void complete(int id, int writtenLength) {
        q.complete(id, writtenLength);
        if (tracker != null) {
            tracker.completed(id);
        }
    }

    @Override
    public void publish() {
        if (q == null) {
            return;
        }
        if (tracker != null) {
            tracker.publishing(q.lastUsedIndex(), q.lastUsedWrapCounter());
        }
        q.publish();
        if (iotlb != null) {
            // The driver may now unmap what it got back and reuse the IOVAs: no translation outlives a batch.
            iotlb.newBatch();
        }
        if (tracker != null) {
            tracker.published(q.lastUsedIndex(), q.lastUsedWrapCounter());
        }
    }

    @Override
    public boolean needsNotification() {
        return q != null && q.needsNotification();
    }

    @Override
    public void disableNotifications() {
        if (ready()) {
            q.disableNotifications();
        }
    }

    @Override
    public boolean enableNotifications() {
        // resubmissions waiting: never let the poller sleep on them
        return ready() && (pending != null || q.enableNotifications());
    }

    @Override
    public boolean isBroken() {
        return !ready() || q.isBroken();
    }

    @Override
    public int brokenReason() {
        return ready() ? q.brokenReason() : io.github.vduse4j.ring.ChainError.QUEUE_BROKEN;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public int lastAvailIndex() {
        return q == null ? 0 : q.lastAvailIndex();
    }

    @Override
    public boolean lastAvailWrapCounter() {
        return q == null || q.lastAvailWrapCounter();
    }

    @Override
    public int lastUsedIndex() {
        return q == null ? 0 : q.lastUsedIndex();
    }

    @Override
    public boolean lastUsedWrapCounter() {
        return q == null || q.lastUsedWrapCounter();
    }

    @Override
    public void restore(int lastAvailIndex, boolean availWrap, int lastUsedIndex, boolean usedWrap) {
        if (ready()) {
            q.restore(lastAvailIndex, availWrap, lastUsedIndex, usedWrap);
            pending = null; // the ring forgot what was in flight; resubmissions no longer fit it
        }
    }

    @Override
    public int inflight() {
        return q == null ? 0 : q.inflight();
    }
}
