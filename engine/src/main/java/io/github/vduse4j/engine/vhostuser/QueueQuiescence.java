package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.ring.Virtqueue;
import java.util.concurrent.locks.LockSupport;

/**
 * Grace periods for IOTLB invalidation (spec "IOMMU support"; ARCHITECTURE "reply late, never early"): the
 * poller thread's translations live only inside {@link QueueHandler#process}, so a queue is quiescent when it is
 * outside process, has entered it again since the new IOTLB table was published, or is blocked waiting for an
 * IOTLB miss (which re-reads the table when it resumes). The handler decorator marks entry and exit with an epoch
 * counter (odd = inside): one volatile store in, one release store out, per batch.
 *
 * <p>Why not pause the queues: a vhost-user frontend such as QEMU sends the invalidation synchronously and cannot
 * answer a pending IOTLB miss before the invalidation is acknowledged; a pause would wait for that miss forever.
 */
final class QueueQuiescence implements QueueHandler {
    private static final ThreadLocal<QueueQuiescence> CURRENT = new ThreadLocal<>();

    private final QueueHandler delegate;
    private volatile long epoch;
    private volatile boolean missWaiting;
    private boolean registered;

    QueueQuiescence(QueueHandler delegate) {
        this.delegate = delegate;
    }

    QueueHandler delegate() {
        return delegate;
    }

    /** Poller thread: makes this the quiescence of the current thread (before anything can miss). */
    void register() {
        if (!registered) {
            registered = true;
            CURRENT.set(this);
        }
    }

    @Override
    public int process(Virtqueue queue, int budget) {
        register();
        epoch = epoch + 1; // volatile store: ordered before the IOTLB table loads below (Dekker with awaitGrace)
        try {
            return delegate.process(queue, budget);
        } finally {
            epoch = epoch + 1;
        }
    }

    @Override
    public int inflight() {
        return delegate.inflight();
    }

    @Override
    public QueueStats stats() {
        return delegate.stats();
    }

    @Override
    public void close() {
        delegate.close();
    }

    /** The quiescence of the queue served by the current thread, or null (control thread). */
    static QueueQuiescence current() {
        return CURRENT.get();
    }

    void missWaiting(boolean waiting) {
        missWaiting = waiting;
    }

    /**
     * Control thread, after publishing a new IOTLB table: returns once every queue has passed a quiescent point,
     * or after {@code timeoutNanos} (false).
     */
    static boolean awaitGrace(Iterable<QueueQuiescence> queues, long timeoutNanos) {
        long deadline = System.nanoTime() + timeoutNanos;
        boolean ok = true;
        for (QueueQuiescence q : queues) {
            long e = q.epoch;
            if ((e & 1) == 0) {
                continue;
            }
            while (q.epoch == e && !q.missWaiting) {
                if (System.nanoTime() - deadline > 0) {
                    ok = false;
                    break;
                }
                LockSupport.parkNanos(10_000);
            }
        }
        return ok;
    }
}
