package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Process resource limits with {@code getrlimit}/{@code setrlimit} ({@code struct rlimit { rlim_t cur, max; }}).
 * The datapath needs {@link #MEMLOCK}: memory pinned with {@code VDUSE_IOTLB_REG_UMEM} counts against it.
 */
public final class ResourceLimit {
    private ResourceLimit() {}

    /** {@code RLIMIT_MEMLOCK} (x86_64): bytes of memory that may be locked or pinned. */
    public static final int MEMLOCK = 8;
    /** {@code RLIM_INFINITY}. */
    public static final long INFINITY = -1L;

    private static final MethodHandle GET = Libc.downcall("getrlimit",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ValueLayout.ADDRESS), Libc.CRITICAL);
    private static final MethodHandle SET = Libc.downcall("setrlimit",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ValueLayout.ADDRESS));

    /** A limit pair; {@link #INFINITY} (-1) means unlimited. */
    public record Limit(long soft, long hard) {
        /** True if {@code bytes} fit under the soft limit. */
        public boolean allows(long bytes) {
            return soft == INFINITY || Long.compareUnsigned(bytes, soft) <= 0;
        }
    }

    /** {@code getrlimit(resource)}. */
    public static Limit get(int resource) {
        CallState st = CallState.current();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment r = arena.allocate(16, 8);
            int rc;
            try {
                rc = (int) GET.invokeExact(st.capture, resource, r);
            } catch (Throwable t) {
                throw Libc.unexpected(t);
            }
            if (rc < 0) {
                throw new ErrnoException("getrlimit", "resource=" + resource, st.errno());
            }
            return new Limit(r.get(JAVA_LONG, 0), r.get(JAVA_LONG, 8));
        }
    }

    /** {@code setrlimit(resource, {soft, hard})}; raising the hard limit needs CAP_SYS_RESOURCE. */
    public static void set(int resource, Limit limit) {
        CallState st = CallState.current();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment r = arena.allocate(16, 8);
            r.set(JAVA_LONG, 0, limit.soft());
            r.set(JAVA_LONG, 8, limit.hard());
            int rc;
            try {
                rc = (int) SET.invokeExact(st.capture, resource, r);
            } catch (Throwable t) {
                throw Libc.unexpected(t);
            }
            if (rc < 0) {
                throw new ErrnoException("setrlimit", "resource=" + resource + ", soft=" + limit.soft()
                        + ", hard=" + limit.hard(), st.errno());
            }
        }
    }
}
