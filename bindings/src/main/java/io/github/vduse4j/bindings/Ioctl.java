package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.ref.Reference;

/**
 * {@code ioctl} in its two fixed-arity forms: an integer argument, or a pointer to a native struct.
 * The throwing forms take a {@link Request} (code plus readable name) so a failure names the request;
 * the {@code ...Raw} forms take the bare code, return {@code -errno} and allocate nothing.
 * Never linked {@code critical}: ioctls may block.
 */
public final class Ioctl {
    private Ioctl() {}

    /** An ioctl request code with the name its failures are reported under, e.g. {@code VDUSE_CREATE_DEV}. */
    public record Request(String name, long code) {
        /** {@code "NAME 0x..."} as shown in messages. */
        @Override
        public String toString() {
            return name + " " + Libc.hex(code);
        }
    }

    public static final int IOC_NONE = 0;
    public static final int IOC_WRITE = 1;
    public static final int IOC_READ = 2;

    public static final long FIONREAD = 0x541B;
    public static final long FIONBIO = 0x5421;
    public static final long FIOCLEX = 0x5451;

    private static final MethodHandle IOCTL_LONG = Libc.downcall("ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), Libc.variadicFrom(2));
    private static final FunctionDescriptor IOCTL_WITH_POINTER =
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS);
    private static final MethodHandle IOCTL_POINTER = Libc.downcall("ioctl", IOCTL_WITH_POINTER, Libc.variadicFrom(2));
    /** Captured only when it fails, for {@link #ioctlRepeatableRaw} (Libc.downcallRepeatedForErrno). */
    private static final MethodHandle IOCTL_POINTER_REPEATED =
            Libc.downcallRepeatedForErrno("ioctl", IOCTL_WITH_POINTER, Libc.variadicFrom(2));

    /** Names a request code. */
    public static Request request(String name, long code) {
        return new Request(name, code);
    }

    /** The kernel's {@code _IOC(dir, type, nr, size)} encoding (asm-generic, used by x86_64). */
    public static long ioc(int dir, int type, int nr, long size) {
        if ((type & ~0xff) != 0 || (nr & ~0xff) != 0 || (size & ~0x3fffL) != 0 || (dir & ~3) != 0) {
            throw new IllegalArgumentException("ioctl field out of range: dir=" + dir + " type=" + type
                    + " nr=" + nr + " size=" + size);
        }
        return ((long) dir << 30) | (size << 16) | ((long) type << 8) | nr;
    }

    /** {@code _IO(type, nr)}. */
    public static long io(int type, int nr) {
        return ioc(IOC_NONE, type, nr, 0);
    }

    /** {@code _IOR(type, nr, size)}: the kernel writes {@code size} bytes to user space. */
    public static long ior(int type, int nr, long size) {
        return ioc(IOC_READ, type, nr, size);
    }

    /** {@code _IOW(type, nr, size)}: the kernel reads {@code size} bytes from user space. */
    public static long iow(int type, int nr, long size) {
        return ioc(IOC_WRITE, type, nr, size);
    }

    /** {@code _IOWR(type, nr, size)}. */
    public static long iowr(int type, int nr, long size) {
        return ioc(IOC_READ | IOC_WRITE, type, nr, size);
    }

    /** {@code ioctl(fd, request, 0)}; returns the call's non-negative result. */
    public static int ioctl(int fd, Request request) {
        return ioctl(fd, request, 0L);
    }

    /** {@code ioctl(fd, request, arg)} with an integer argument; returns the call's non-negative result. */
    public static int ioctl(int fd, Request request, long arg) {
        int r = ioctlRaw(CallState.current(), fd, request.code(), arg);
        if (r < 0) {
            throw new ErrnoException("ioctl", "fd=" + fd + ", request=" + request + ", arg=" + arg, r);
        }
        return r;
    }

    /** {@code ioctl(fd, request, arg)} with a pointer to native memory; returns the call's non-negative result. */
    public static int ioctl(int fd, Request request, MemorySegment arg) {
        int r = ioctlRaw(CallState.current(), fd, request.code(), arg);
        if (r < 0) {
            throw new ErrnoException("ioctl", "fd=" + fd + ", request=" + request, r);
        }
        return r;
    }

    /** {@code ioctl} with an integer argument: the result, or {@code -errno}. */
    public static int ioctlRaw(CallState st, int fd, long request, long arg) {
        int r;
        try {
            r = (int) IOCTL_LONG.invokeExact(st.capture, fd, request, arg);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        return r < 0 ? -st.errno() : r;
    }

    /** {@code ioctl} with a pointer argument (a native segment, or {@link MemorySegment#NULL}): the result, or {@code -errno}. */
    public static int ioctlRaw(CallState st, int fd, long request, MemorySegment arg) {
        int r;
        try {
            r = (int) IOCTL_POINTER.invokeExact(st.capture, fd, request, arg);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        Reference.reachabilityFence(arg);
        return r < 0 ? -st.errno() : r;
    }

    /**
     * As {@link #ioctlRaw(CallState, int, long, MemorySegment)}, for an ioctl that a failure leaves without effect
     * (VDUSE_VQ_INJECT_IRQ): issued without errno capture, which allocates nothing under C1, and repeated with it only
     * when it fails, to learn errno ({@code Libc.downcallRepeatedForErrno}).
     */
    public static int ioctlRepeatableRaw(CallState st, int fd, long request, MemorySegment arg) {
        int r;
        try {
            r = (int) IOCTL_POINTER_REPEATED.invokeExact(st.capture, fd, request, arg);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        Reference.reachabilityFence(arg);
        return r < 0 ? -st.errno() : r;
    }
}
