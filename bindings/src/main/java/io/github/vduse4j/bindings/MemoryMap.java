package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.ref.Reference;

/**
 * {@code mmap}/{@code munmap}/{@code madvise}. A mapping is returned as a native segment of the mapped length;
 * with an arena it is unmapped when the arena closes, without one the caller calls {@link #unmap}.
 */
public final class MemoryMap {
    private MemoryMap() {}

    public static final int PROT_NONE = 0;
    public static final int PROT_READ = 0x1;
    public static final int PROT_WRITE = 0x2;
    public static final int PROT_EXEC = 0x4;

    public static final int MAP_SHARED = 0x1;
    public static final int MAP_PRIVATE = 0x2;
    public static final int MAP_SHARED_VALIDATE = 0x3;
    public static final int MAP_FIXED = 0x10;
    public static final int MAP_ANONYMOUS = 0x20;
    public static final int MAP_LOCKED = 0x2000;
    public static final int MAP_NORESERVE = 0x4000;
    public static final int MAP_POPULATE = 0x8000;
    public static final int MAP_HUGETLB = 0x40000;
    public static final int MAP_FIXED_NOREPLACE = 0x100000;

    /** {@code madvise}: the range may be freed now; a private anonymous mapping reads back zeros afterwards. */
    public static final int MADV_DONTNEED = 4;

    /** What {@code mmap} returns on failure: {@code (void *) -1}. */
    public static final long MAP_FAILED = -1L;

    private static final MethodHandle MMAP = Libc.downcall("mmap",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MUNMAP = Libc.downcall("munmap",
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle MADVISE = Libc.downcall("madvise",
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));

    /**
     * {@code mmap(NULL, length, prot, flags, fd, offset)}, unmapped when {@code arena} closes.
     * Use a shared or global-lifetime arena for mappings that pollers read (closing a shared arena is slow).
     */
    @SuppressWarnings("restricted")
    public static MemorySegment map(long length, int prot, int flags, int fd, long offset, Arena arena) {
        long address = mmap(length, prot, flags, fd, offset);
        try {
            return MemorySegment.ofAddress(address).reinterpret(length, arena, s -> unmap(s.address(), length));
        } catch (RuntimeException e) { // e.g. the arena is already closed
            unmap(address, length);
            throw e;
        }
    }

    /** {@code mmap(NULL, length, prot, flags, fd, offset)}; the caller must {@link #unmap} it. Use {@code fd = -1} with {@link #MAP_ANONYMOUS}. */
    @SuppressWarnings("restricted")
    public static MemorySegment map(long length, int prot, int flags, int fd, long offset) {
        return MemorySegment.ofAddress(mmap(length, prot, flags, fd, offset)).reinterpret(length);
    }

    /** {@code munmap} a segment returned by the arena-less {@link #map(long, int, int, int, long)}; never touch it afterwards. */
    public static void unmap(MemorySegment mapping) {
        unmap(mapping.address(), mapping.byteSize());
    }

    /**
     * {@code madvise} on {@code mapping[offset, offset + length)}: 0, or {@code -errno} (no exception, no allocation:
     * usable on a queue's request path). The range must start on a page boundary ({@code EINVAL} otherwise).
     */
    public static int adviseRaw(CallState st, MemorySegment mapping, long offset, long length, int advice) {
        long address = Libc.address(mapping, offset, length);
        int r;
        try {
            r = (int) MADVISE.invokeExact(st.capture, address, length, advice);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        Reference.reachabilityFence(mapping);
        return r < 0 ? -st.errno() : r;
    }

    private static long mmap(long length, int prot, int flags, int fd, long offset) {
        CallState st = CallState.current();
        long address;
        try {
            address = (long) MMAP.invokeExact(st.capture, 0L, length, prot, flags, fd, offset);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (address == MAP_FAILED) {
            throw new ErrnoException("mmap", "length=" + length + ", prot=" + Libc.hex(prot) + ", flags="
                    + Libc.hex(flags) + ", fd=" + fd + ", offset=" + offset, st.errno());
        }
        return address;
    }

    private static void unmap(long address, long length) {
        CallState st = CallState.current();
        int r;
        try {
            r = (int) MUNMAP.invokeExact(st.capture, address, length);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (r < 0) {
            throw new ErrnoException("munmap", "address=" + Libc.hex(address) + ", length=" + length, st.errno());
        }
    }
}
