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
    private final QueueHandler delegate;
    private volatile long epoch;
    private volatile boolean missWaiting;
    private volatile Thread poller;
    private boolean registered; // poller thread only: skips the volatile read on every batch

    QueueQuiescence(QueueHandler delegate) {
        this.delegate = delegate;
    }

    QueueHandler delegate() {
        return delegate;
    }

    /** Poller thread: records it as the one thread that may wait for IOTLB misses of this queue. */
    void register() {
        if (!registered) {
            registered = true;
            if (poller == null) {
                poller = Thread.currentThread();
            }
        }
    }

    /** Whether the caller is this queue's poller thread (only it may block in an IOTLB miss). */
    boolean isPollerThread() {
        return poller == Thread.currentThread();
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

    /**
     * The delegate's: without it the poller would see no completion fd and spin for as long as an asynchronous backend
     * (librbd, io_uring) has requests in flight, taking a CPU from the very threads that complete them.
     */
    @Override
    public int completionFd() {
        return delegate.completionFd();
    }

    @Override
    public void quietCompletions() {
        delegate.quietCompletions();
    }

    @Override
    public boolean armCompletions() {
        return delegate.armCompletions();
    }

    @Override
    public QueueStats stats() {
        return delegate.stats();
    }

    @Override
    public void close() {
        delegate.close();
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
