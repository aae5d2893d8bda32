package io.github.vduse4j.engine;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Poll;
import java.util.concurrent.locks.LockSupport;

/**
 * A kick eventfd: the driver side (the kernel for VDUSE, the frontend for vhost-user) signals it, the
 * queue's poller blocks reading it. Owned by this object and closed by {@link #close()}.
 */
public final class EventFdKick implements KickSource, AutoCloseable {
    private final int fd;
    private final CallState pollerState = new CallState();
    /** The poller's pollfd pair (kick, completion fd), made on first use by the poller thread. */
    private Poll pair;
    /** The poller's pollfd for the kick alone (a non-blocking kick eventfd), made on first use. */
    private Poll single;

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
        if (r == -Errno.EAGAIN) {
            // A non-blocking eventfd (vhost-user frontends may pass one, vduse4j bench does): sleep in poll(2), not
            // in a timed park, which under load turned into 5-10 ms of latency per idle period.
            Poll p = single;
            if (p == null) {
                p = single = new Poll(1);
                p.add(fd, Poll.POLLIN);
            }
            int n = p.pollRaw(pollerState, -1);
            if (n > 0 && (p.revents(0) & Poll.POLLIN) != 0) {
                EventFd.consumeRaw(pollerState, fd);
            } else if (n < 0 && n != -Errno.EINTR) {
                LockSupport.parkNanos(1_000_000L);
            }
            return;
        }
        if (r < 0) {
            // EBADF and the like only during teardown: don't spin, the poller re-checks its command.
            LockSupport.parkNanos(1_000_000L);
        }
    }

    /** Poller thread only: blocks until a kick or a completion, consuming whichever fired. */
    @Override
    public void await(int completionFd) {
        if (completionFd < 0) {
            await();
            return;
        }
        Poll p = pair;
        if (p == null) {
            p = pair = new Poll(2);
            p.add(fd, Poll.POLLIN);
            p.add(completionFd, Poll.POLLIN);
        } else {
            p.set(1, completionFd, Poll.POLLIN);
        }
        int n = p.pollRaw(pollerState, -1);
        if (n < 0) {
            if (n != -Errno.EINTR) {
                LockSupport.parkNanos(1_000_000L); // EBADF and the like only during teardown
            }
            return;
        }
        if ((p.revents(0) & Poll.POLLIN) != 0) {
            EventFd.consumeRaw(pollerState, fd); // readable: does not block
        }
        if ((p.revents(1) & Poll.POLLIN) != 0) {
            EventFd.consumeRaw(pollerState, completionFd); // non-blocking eventfd
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
