package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.engine.KickSource;
import java.util.concurrent.locks.LockSupport;

/**
 * The kick source of a vring whose SET_VRING_KICK carried the NOFD flag (spec: "polling should be used instead
 * of waiting for the kick"): the poller re-checks the ring every {@link #PERIOD_NANOS}.
 */
final class PollingKick implements KickSource {
    static final long PERIOD_NANOS = 50_000;
    private volatile Thread waiter;

    @Override
    public void await() {
        waiter = Thread.currentThread();
        LockSupport.parkNanos(PERIOD_NANOS);
        waiter = null;
    }

    @Override
    public void wake() {
        Thread t = waiter;
        if (t != null) {
            LockSupport.unpark(t);
        }
    }
}
