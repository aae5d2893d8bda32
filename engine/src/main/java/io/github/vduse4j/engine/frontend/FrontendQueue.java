package io.github.vduse4j.engine.frontend;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.ring.driver.DriverRing;

/**
 * One virtqueue as a frontend drives it: a {@link DriverRing} and its two eventfds, kick (driver to device) and call
 * (device to driver). Completions are taken either by busy polling ({@link DriverRing#disableCallbacks()}, what
 * {@code vduse4j bench} does) or by sleeping on the call eventfd ({@link #awaitUsed(int)}, or a caller's own poll set
 * with {@link #prepareSleep()} / {@link #woken()}). Owned by one thread; no allocation after construction.
 */
public final class FrontendQueue implements AutoCloseable {
    private final DriverRing ring;
    private final int kickFd;
    private final int callFd;
    private final CallState state = new CallState();
    private final Poll poll = new Poll(1);
    private long kicks;
    private long calls;

    /** A queue over {@code ring} with two new non-blocking eventfds. */
    public FrontendQueue(DriverRing ring) {
        this.ring = ring;
        this.kickFd = EventFd.create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK);
        try {
            this.callFd = EventFd.create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK);
        } catch (RuntimeException e) {
            FileIo.close(kickFd);
            throw e;
        }
        poll.add(callFd, Poll.POLLIN);
    }

    public DriverRing ring() { return ring; }
    public int kickFd() { return kickFd; }
    public int callFd() { return callFd; }
    /** Kicks sent. */
    public long kicks() { return kicks; }
    /** Call eventfd wake-ups taken. */
    public long calls() { return calls; }

    /** Publishes what was added and kicks the device if it asked for kicks (§2.7.10 / §2.8.21.3). */
    public void flush() {
        if (ring.flush()) {
            kick();
        }
    }

    /** Signals the kick eventfd. */
    public void kick() {
        kicks++;
        EventFd.signalRaw(state, kickFd, 1);
    }

    /**
     * Before sleeping on {@link #callFd()}: re-enables used-buffer notifications; false if used buffers are already
     * waiting (then reap instead of sleeping; notifications stay enabled until {@link #woken()}).
     */
    public boolean prepareSleep() {
        return ring.enableCallbacks();
    }

    /** After {@link #callFd()} was readable (or a sleep ended): consumes the call and turns notifications off again. */
    public void woken() {
        if (EventFd.consumeRaw(state, callFd) > 0) {
            calls++;
        }
        ring.disableCallbacks();
    }

    /**
     * Consumes a pending call (non-blocking, notifications stay as they are): for a caller that keeps notifications
     * on and sleeps on {@link #callFd()} elsewhere. Consume before reaping, so a later used buffer signals anew.
     */
    public void consumeCall() {
        if (EventFd.consumeRaw(state, callFd) > 0) {
            calls++;
        }
    }

    /**
     * Waits up to {@code timeoutMillis} for a used buffer by the call eventfd (not by spinning): true if one is
     * waiting, false on timeout. A spurious call (libvhost-user signals the call eventfd when it is set, "in case of
     * I/O hang after reconnecting") only makes it sleep again.
     */
    public boolean awaitUsed(int timeoutMillis) {
        final long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        while (true) {
            if (prepareSleep()) {
                long left = (deadline - System.nanoTime()) / 1_000_000L;
                poll.poll((int) Math.max(0, left));
            }
            woken();
            if (ring.hasUsed() || ring.broken()) {
                return ring.hasUsed();
            }
            if (System.nanoTime() - deadline >= 0) {
                return false;
            }
        }
    }

    @Override
    public void close() {
        FileIo.close(kickFd);
        FileIo.close(callFd);
    }
}
