package io.github.vduse4j.engine;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import java.util.concurrent.locks.LockSupport;

/**
 * A kick eventfd: the driver side (the kernel for VDUSE, the frontend for vhost-user) signals it, the
 * queue's poller blocks reading it. Owned by this object and closed by {@link #close()}.
 */
public final class EventFdKick implements KickSource, AutoCloseable {
    private final int fd;
    private final CallState pollerState = new CallState();

    /** Creates a fresh eventfd. */
    public EventFdKick() {
        this(EventFd.create(0, EventFd.EFD_CLOEXEC));
    }

    /** Takes ownership of an existing eventfd (e.g. received over a socket). */
    public EventFdKick(int fd) {
        this.fd = fd;
    }

    public int fd() {
        return fd;
    }

    /** Poller thread only: blocks until the counter is non-zero, then resets it. */
    @Override
    public void await() {
        long r;
        do {
            r = EventFd.consumeRaw(pollerState, fd);
        } while (r == -Errno.EINTR);
        if (r < 0) {
            // EBADF and the like only during teardown: don't spin, the poller re-checks its command.
            LockSupport.parkNanos(1_000_000L);
        }
    }

    @Override
    public void wake() {
        EventFd.signal(fd);
    }

    @Override
    public void close() {
        FileIo.close(fd);
    }
}
