package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.engine.DriverNotifier;

/**
 * Used-buffer notification of one vring: writes the call eventfd the frontend gave with SET_VRING_CALL
 * (spec: "Set the event file descriptor to signal when buffers are used"). No fd (the NOFD flag) means the
 * frontend polls, so nothing is signalled. The fd is swapped only while the queue's poller is paused.
 */
final class VringCall implements DriverNotifier {
    private final CallState state = new CallState();
    private volatile int fd = -1;
    private long failures;

    /** Control thread, with the poller paused or not running. Returns the previous fd (the caller closes it). */
    int replace(int newFd) {
        int old = fd;
        fd = newFd;
        return old;
    }

    int fd() {
        return fd;
    }

    /** Poller thread only. */
    @Override
    public void notifyDriver() {
        int f = fd;
        if (f >= 0 && EventFd.signalRaw(state, f, 1) < 0) {
            failures++;
        }
    }

    long failures() {
        return failures;
    }
}
