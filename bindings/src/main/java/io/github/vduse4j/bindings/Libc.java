package io.github.vduse4j.bindings;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.invoke.VarHandle;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Linker plumbing shared by the libc wrappers: one linker, the libc lookup, and downcalls that
 * capture errno. Constants and struct offsets in this package are Linux x86_64 values, so the
 * class refuses to load anywhere else.
 */
final class Libc {
    private Libc() {}

    static {
        String os = System.getProperty("os.name"), arch = System.getProperty("os.arch");
        if (!"Linux".equals(os) || !("amd64".equals(arch) || "x86_64".equals(arch))) {
            throw new UnsupportedOperationException("vduse4j bindings support Linux x86_64 only, not " + os + "/" + arch);
        }
    }

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LOOKUP = LINKER.defaultLookup();
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    /** Layout of the capture segment handed to every downcall. */
    static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    /** errno in the capture segment: (MemorySegment, long offset) -> int. */
    static final VarHandle ERRNO =
            CAPTURE_LAYOUT.varHandle(PathElement.groupElement("errno")).withInvokeExactBehavior();

    /** For short calls that never block: the thread stays in Java state (no heap segments passed). */
    static final Linker.Option CRITICAL = Linker.Option.critical(false);

    /** {@code r == -1} for int and long results, the test of {@link #downcallRepeatedForErrno}. */
    private static final MethodHandle INT_IS_MINUS_ONE = isMinusOne(int.class);
    private static final MethodHandle LONG_IS_MINUS_ONE = isMinusOne(long.class);

    /** Links a libc function; the handle takes the capture segment as its first argument. */
    static MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        return capturing(symbol(name), descriptor, options);
    }

    @SuppressWarnings("restricted")
    private static MethodHandle capturing(MemorySegment symbol, FunctionDescriptor descriptor,
                                          Linker.Option... options) {
        Linker.Option[] all = Arrays.copyOf(options, options.length + 1);
        all[options.length] = CAPTURE_ERRNO;
        return LINKER.downcallHandle(symbol, descriptor, all);
    }

    /**
     * Links a libc function for the hot path's repeatable calls. The handle has the {@link #downcall capturing} one's
     * shape (capture segment first, the same result) and does two steps: it issues the call through a handle linked
     * without errno capture and, only when that returns -1, issues it again through the capturing one, so that the
     * capture segment holds the errno of the repeat. A repeat that succeeds (the eventfd became readable meanwhile) is
     * the result.
     *
     * <p>Why: the JDK's capturing handle makes a slice of the capture segment per call
     * ({@code SharedUtils.checkCaptureSegment}), which C2's escape analysis removes and C1 (the TCG guest's only
     * compiler, docs/benchmarks.md "The guest JVM crash") does not: ~40 bytes per request and young GCs during I/O in
     * the guest ({@code scripts/bench/gc-during-fio}). The combinators built here allocate nothing per call under
     * either compiler ({@code HotPathAllocationTest}, {@code HotPathAllocationUnderC1Test}; docs/libc.md "errno
     * capture").
     *
     * <p>Only for calls that a failure leaves without effect, so that the repeat is what a caller retrying it would
     * do: pread and pwrite at a position, read and write (nothing moved on -1: an eventfd, the VDUSE device's
     * messages), poll, and the ioctls that say so ({@link Ioctl#ioctlRepeatableRaw}). The function must return
     * {@code int} or {@code long}.
     */
    @SuppressWarnings("restricted")
    static MethodHandle downcallRepeatedForErrno(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MemorySegment symbol = symbol(name);
        MethodHandle capturing = capturing(symbol, descriptor, options); // (capture, args...) -> r
        MethodHandle plain = LINKER.downcallHandle(symbol, descriptor, options); // (args...) -> r
        Class<?> result = plain.type().returnType();
        MethodHandle isMinusOne = result == int.class ? INT_IS_MINUS_ONE
                : result == long.class ? LONG_IS_MINUS_ONE
                : null;
        if (isMinusOne == null) {
            throw new IllegalArgumentException(name + " returns " + result + "; a repeat for errno needs int or long");
        }
        List<Class<?>> arguments = capturing.type().parameterList();
        // (r, capture, args...) -> r == -1 ? capturing(capture, args...) : r
        MethodHandle choose = MethodHandles.guardWithTest(
                MethodHandles.dropArguments(isMinusOne, 1, arguments),
                MethodHandles.dropArguments(capturing, 0, result),
                MethodHandles.dropArguments(MethodHandles.identity(result), 1, arguments));
        // (capture, args...) -> choose(plain(args...), capture, args...)
        return MethodHandles.foldArguments(choose, MethodHandles.dropArguments(plain, 0, MemorySegment.class));
    }

    private static MethodHandle isMinusOne(Class<?> type) {
        try {
            MethodType test = MethodType.methodType(boolean.class, type);
            return MethodHandles.lookup().findStatic(Libc.class, "isMinusOne", test);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private static boolean isMinusOne(int r) {
        return r == -1;
    }

    private static boolean isMinusOne(long r) {
        return r == -1;
    }

    private static MemorySegment symbol(String name) {
        return LOOKUP.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
    }

    /** Marks the arguments from {@code index} on as variadic (for {@code open}, {@code ioctl}, {@code syscall}). */
    static Linker.Option variadicFrom(int index) {
        return Linker.Option.firstVariadicArg(index);
    }

    /**
     * The address of {@code buf[offset, offset + length)} after checking it is native, in bounds,
     * alive and accessible from this thread. Allocation-free unless a check fails.
     */
    static long address(MemorySegment buf, long offset, long length) {
        if (!buf.isNative()) {
            throw new IllegalArgumentException("a native segment is required, not " + buf);
        }
        Objects.checkFromIndexSize(offset, length, buf.byteSize());
        if (!buf.scope().isAlive()) {
            throw new IllegalStateException("the segment's arena is closed");
        }
        if (!buf.isAccessibleBy(Thread.currentThread())) {
            throw new WrongThreadException("the segment is confined to another thread");
        }
        return buf.address() + offset;
    }

    /** Wraps what a downcall's invokeExact cannot really throw (a wrong signature is a bug here). */
    static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException e) {
            return e;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException("unexpected downcall failure", t);
    }

    /** {@code 0x1f}-style hex for messages. */
    static String hex(long value) {
        return "0x" + Long.toHexString(value);
    }
}
