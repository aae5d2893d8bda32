package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.ref.Reference;
import java.util.Objects;

/**
 * {@code poll(2)} over a reusable native {@code struct pollfd} array. Typical use:
 * {@code Poll p = new Poll(2); int kick = p.add(fd, Poll.POLLIN); p.poll(1000); if ((p.revents(kick) & Poll.POLLIN) != 0) ...}.
 * An instance belongs to one thread at a time.
 */
public final class Poll {
    public static final int POLLIN = 0x1;
    public static final int POLLPRI = 0x2;
    public static final int POLLOUT = 0x4;
    public static final int POLLERR = 0x8;
    public static final int POLLHUP = 0x10;
    public static final int POLLNVAL = 0x20;
    public static final int POLLRDHUP = 0x2000;

    /** {@code struct pollfd { int fd; short events; short revents; }}. */
    public static final StructLayout POLLFD = MemoryLayout.structLayout(
            JAVA_INT.withName("fd"), JAVA_SHORT.withName("events"), JAVA_SHORT.withName("revents"));
    private static final long FD = 0, EVENTS = 4, REVENTS = 6;

    private static final FunctionDescriptor POLL_CALL = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT);
    /**
     * Captured only when it fails (a failed poll changed nothing; the repeat waits again):
     * Libc.downcallRepeatedForErrno.
     */
    private static final MethodHandle POLL = Libc.downcallRepeatedForErrno("poll", POLL_CALL);

    private final MemorySegment fds;
    private int size;

    /** A set with room for {@code capacity} fds, in native memory freed by the GC. */
    public Poll(int capacity) {
        fds = Arena.ofAuto().allocate(POLLFD, capacity);
    }

    /** Adds {@code fd} waiting for {@code events} ({@code POLL*} bits); returns its slot. */
    public int add(int fd, int events) {
        if ((long) (size + 1) * POLLFD.byteSize() > fds.byteSize()) {
            throw new IllegalStateException("poll set is full (" + size + " fds)");
        }
        write(size * POLLFD.byteSize(), fd, events);
        return size++;
    }

    /** Replaces the fd and events in {@code slot} (poll ignores an fd below 0). */
    public void set(int slot, int fd, int events) {
        write(checkedSlot(slot), fd, events);
    }

    private void write(long base, int fd, int events) {
        fds.set(JAVA_INT, base + FD, fd);
        fds.set(JAVA_SHORT, base + EVENTS, (short) events);
        fds.set(JAVA_SHORT, base + REVENTS, (short) 0);
    }

    /** Removes every fd. */
    public void clear() {
        size = 0;
    }

    /** The number of fds in the set. */
    public int size() {
        return size;
    }

    /** The fd in {@code slot}. */
    public int fd(int slot) {
        return fds.get(JAVA_INT, checkedSlot(slot) + FD);
    }

    /** The events the last poll reported for {@code slot} ({@code POLL*} bits). */
    public int revents(int slot) {
        return fds.get(JAVA_SHORT, checkedSlot(slot) + REVENTS) & 0xffff;
    }

    /** Waits up to {@code timeoutMillis} (-1: forever); returns the number of ready fds, 0 on timeout. EINTR is retried. */
    public int poll(int timeoutMillis) {
        CallState st = CallState.current();
        int r;
        do {
            r = pollRaw(st, timeoutMillis);
        } while (r == -Errno.EINTR);
        if (r < 0) {
            throw new ErrnoException("poll", "nfds=" + size + ", timeout=" + timeoutMillis, r);
        }
        return r;
    }

    /** As {@link #poll(int)}: the number of ready fds, or {@code -errno} (including {@code -EINTR}). */
    public int pollRaw(CallState st, int timeoutMillis) {
        return poll(st, fds, size, timeoutMillis);
    }

    /** {@code poll} over a caller-built {@link #POLLFD} array of {@code nfds} entries; returns the ready count. EINTR is retried. */
    public static int poll(MemorySegment pollfds, int nfds, int timeoutMillis) {
        if (nfds < 0 || nfds * POLLFD.byteSize() > pollfds.byteSize()) {
            throw new IndexOutOfBoundsException("nfds " + nfds + " exceeds the pollfd array " + pollfds);
        }
        CallState st = CallState.current();
        int r;
        do {
            r = poll(st, pollfds, nfds, timeoutMillis);
        } while (r == -Errno.EINTR);
        if (r < 0) {
            throw new ErrnoException("poll", "nfds=" + nfds + ", timeout=" + timeoutMillis, r);
        }
        return r;
    }

    private static int poll(CallState st, MemorySegment pollfds, int nfds, int timeoutMillis) {
        int r;
        try {
            r = (int) POLL.invokeExact(st.capture, pollfds, (long) nfds, timeoutMillis);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        Reference.reachabilityFence(pollfds);
        return r < 0 ? -st.errno() : r;
    }

    private long checkedSlot(int slot) {
        return Objects.checkIndex(slot, size) * POLLFD.byteSize();
    }
}
