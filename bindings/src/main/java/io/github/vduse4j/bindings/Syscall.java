package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.ref.Reference;

/**
 * Raw {@code syscall(2)} for what glibc does not wrap: the io_uring calls and {@code memfd_secret}. Numbers are
 * x86_64 (the only supported arch; 425..427 happen to be the same on every arch since Linux 5.1). Never linked
 * {@code critical}: {@code io_uring_enter} may wait.
 */
public final class Syscall {
    private Syscall() {}

    public static final long IO_URING_SETUP = 425;
    public static final long IO_URING_ENTER = 426;
    public static final long IO_URING_REGISTER = 427;
    /** {@code memfd_secret(2)}, Linux 5.14 (x86_64 number). */
    public static final long MEMFD_SECRET = 447;

    private static final MethodHandle SYSCALL = Libc.downcall("syscall", FunctionDescriptor.of(JAVA_LONG,
            JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG), Libc.variadicFrom(1));

    /**
     * {@code syscall(nr, a1..a6)}: the result, or {@code -errno}. Unused arguments are passed as 0; pointers as
     * {@link MemorySegment#address()}, kept alive by the caller.
     */
    public static long raw(CallState st, long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
        long r;
        try {
            r = (long) SYSCALL.invokeExact(st.capture, nr, a1, a2, a3, a4, a5, a6);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        return r == -1 ? -st.errno() : r;
    }

    /** {@code io_uring_setup(entries, params)}; {@code params} is a native {@code struct io_uring_params}. Returns the ring fd. */
    public static int ioUringSetup(int entries, MemorySegment params) {
        long r = raw(CallState.current(), IO_URING_SETUP, entries, Libc.address(params, 0, params.byteSize()), 0, 0, 0, 0);
        Reference.reachabilityFence(params);
        if (r < 0) {
            throw new ErrnoException("io_uring_setup", "entries=" + entries, (int) r);
        }
        return (int) r;
    }

    /** {@code io_uring_enter(fd, toSubmit, minComplete, flags, NULL, 0)}; returns the number of SQEs consumed. */
    public static int ioUringEnter(int fd, int toSubmit, int minComplete, int flags) {
        CallState st = CallState.current();
        int r;
        do {
            r = ioUringEnterRaw(st, fd, toSubmit, minComplete, flags);
        } while (r == -Errno.EINTR);
        if (r < 0) {
            throw new ErrnoException("io_uring_enter", "fd=" + fd + ", toSubmit=" + toSubmit + ", minComplete="
                    + minComplete + ", flags=" + Libc.hex(flags), r);
        }
        return r;
    }

    /** {@code io_uring_enter(fd, toSubmit, minComplete, flags, NULL, 0)}: SQEs consumed, or {@code -errno}. */
    public static int ioUringEnterRaw(CallState st, int fd, int toSubmit, int minComplete, int flags) {
        return (int) raw(st, IO_URING_ENTER, fd, toSubmit, minComplete, flags, 0, 0);
    }

    /**
     * {@code io_uring_enter(fd, toSubmit, minComplete, flags, arg, argSize)} with {@code arg} an address
     * (a sigset, or a {@code struct io_uring_getevents_arg} with {@code IORING_ENTER_EXT_ARG}): SQEs consumed, or {@code -errno}.
     */
    public static int ioUringEnterRaw(CallState st, int fd, int toSubmit, int minComplete, int flags, long arg, long argSize) {
        return (int) raw(st, IO_URING_ENTER, fd, toSubmit, minComplete, flags, arg, argSize);
    }

    /** {@code io_uring_register(fd, opcode, arg, nrArgs)}; {@code arg} native or {@link MemorySegment#NULL}. Returns the result. */
    public static int ioUringRegister(int fd, int opcode, MemorySegment arg, int nrArgs) {
        long address = arg.equals(MemorySegment.NULL) ? 0 : Libc.address(arg, 0, arg.byteSize());
        long r = raw(CallState.current(), IO_URING_REGISTER, fd, opcode, address, nrArgs, 0, 0);
        Reference.reachabilityFence(arg);
        if (r < 0) {
            throw new ErrnoException("io_uring_register", "fd=" + fd + ", opcode=" + opcode + ", nrArgs=" + nrArgs, (int) r);
        }
        return (int) r;
    }

    /**
     * {@code memfd_secret(flags)}: a memory file whose mapped pages are removed from the kernel's direct map, so the
     * kernel refuses to pin them (GUP fails with EFAULT) while the process reads and writes them as usual.
     *
     * @param flags 0 or {@code O_CLOEXEC}
     * @return the new fd
     * @throws ErrnoException e.g. ENOSYS where the kernel lacks CONFIG_SECRETMEM or {@code secretmem.enable=0}
     */
    public static int memfdSecret(int flags) {
        long r = raw(CallState.current(), MEMFD_SECRET, flags, 0, 0, 0, 0, 0);
        if (r < 0) {
            throw new ErrnoException("memfd_secret", "flags=" + Libc.hex(flags), (int) r);
        }
        return (int) r;
    }
}
