package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.invoke.MethodHandle;

/**
 * eventfds: {@link #create}, {@link #signal} (write 8 bytes: add to the counter) and {@link #consume}
 * (read 8 bytes: take the counter, or 1 with {@link #EFD_SEMAPHORE}). The 8-byte value lives in the
 * {@link CallState}, so the {@code ...Raw} forms allocate nothing.
 */
public final class EventFd {
    private EventFd() {}

    public static final int EFD_SEMAPHORE = 0x1;
    public static final int EFD_NONBLOCK = 0x800;
    public static final int EFD_CLOEXEC = 0x80000;

    private static final MethodHandle EVENTFD = Libc.downcall("eventfd",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), Libc.CRITICAL);

    /** {@code eventfd(initialValue, flags)}; returns the new fd. {@code flags}: {@code EFD_*}. */
    public static int create(int initialValue, int flags) {
        CallState st = CallState.current();
        int fd;
        try {
            fd = (int) EVENTFD.invokeExact(st.capture, initialValue, flags);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (fd < 0) {
            throw new ErrnoException("eventfd", "initval=" + initialValue + ", flags=" + Libc.hex(flags), st.errno());
        }
        return fd;
    }

    /** Adds 1 to the counter. */
    public static void signal(int fd) {
        signal(fd, 1);
    }

    /** Adds {@code value} to the counter (blocks while it would overflow, unless {@link #EFD_NONBLOCK}). */
    public static void signal(int fd, long value) {
        CallState st = CallState.current();
        int r;
        do {
            r = signalRaw(st, fd, value);
        } while (r == -Errno.EINTR);
        if (r < 0) {
            throw new ErrnoException("write", "eventfd=" + fd + ", value=" + value, r);
        }
    }

    /** Reads the counter (resetting it), blocking while it is 0 unless {@link #EFD_NONBLOCK}. */
    public static long consume(int fd) {
        CallState st = CallState.current();
        long r;
        do {
            r = consumeRaw(st, fd);
        } while (r == -Errno.EINTR);
        if (r < 0) {
            throw new ErrnoException("read", "eventfd=" + fd, (int) r);
        }
        return r;
    }

    /** Adds {@code value} to the counter: 0, or {@code -errno} ({@code -EAGAIN} if it would block). */
    public static int signalRaw(CallState st, int fd, long value) {
        st.scratch.set(JAVA_LONG, 0, value);
        long r = FileIo.writeAddress(st, fd, st.scratch.address(), Long.BYTES);
        return r < 0 ? (int) r : 0;
    }

    /**
     * Reads the counter: its value, or {@code -errno} ({@code -EAGAIN} when 0 and non-blocking).
     * Counter values of 2^63 and above would read as negative; signalling by small increments never gets there.
     */
    public static long consumeRaw(CallState st, int fd) {
        long r = FileIo.readAddress(st, fd, st.scratch.address(), Long.BYTES);
        return r < 0 ? r : st.scratch.get(JAVA_LONG, 0);
    }
}
