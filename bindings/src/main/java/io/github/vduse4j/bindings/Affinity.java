package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * CPU affinity with {@code sched_setaffinity}/{@code sched_getaffinity}. Thread id 0 is the calling
 * thread, so pollers pin themselves from their own (platform) thread: {@code Affinity.setCurrentThread(3)}.
 */
public final class Affinity {
    private Affinity() {}

    /** {@code sizeof(cpu_set_t)}: glibc's default mask covers CPUs 0..1023. */
    static final long CPU_SET_BYTES = 128;
    private static final long MAX_MASK_BYTES = 1 << 20;

    private static final MethodHandle SET = Libc.downcall("sched_setaffinity",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS));
    private static final MethodHandle GET = Libc.downcall("sched_getaffinity",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), Libc.CRITICAL);

    /** Restricts the calling thread to {@code cpus}. */
    public static void setCurrentThread(int... cpus) {
        set(0, cpus);
    }

    /** The CPUs the calling thread may run on, ascending. */
    public static int[] currentThread() {
        return get(0);
    }

    /** {@code sched_setaffinity(tid, cpus)}; {@code tid} 0 is the calling thread. */
    public static void set(int tid, int... cpus) {
        if (cpus.length == 0) {
            throw new IllegalArgumentException("no CPUs given");
        }
        int max = IntStream.of(cpus).max().getAsInt();
        if (IntStream.of(cpus).min().getAsInt() < 0) {
            throw new IllegalArgumentException("negative CPU in " + Arrays.toString(cpus));
        }
        CallState st = CallState.current();
        int r;
        try (Arena arena = Arena.ofConfined()) {
            long bytes = Math.max(CPU_SET_BYTES, ((max / 64) + 1) * 8L);
            MemorySegment mask = arena.allocate(bytes, 8);
            for (int cpu : cpus) {
                long word = (cpu / 64) * 8L;
                mask.set(JAVA_LONG, word, mask.get(JAVA_LONG, word) | 1L << (cpu % 64));
            }
            r = (int) SET.invokeExact(st.capture, tid, bytes, mask);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (r < 0) {
            throw new ErrnoException("sched_setaffinity", "pid=" + tid + ", cpus=" + Arrays.toString(cpus), st.errno());
        }
    }

    /** {@code sched_getaffinity(tid)}: the CPUs, ascending; {@code tid} 0 is the calling thread. */
    public static int[] get(int tid) {
        CallState st = CallState.current();
        try (Arena arena = Arena.ofConfined()) {
            for (long bytes = CPU_SET_BYTES; ; bytes *= 2) {
                MemorySegment mask = arena.allocate(bytes, 8);
                int r = (int) GET.invokeExact(st.capture, tid, bytes, mask);
                if (r == 0) {
                    return cpus(mask);
                }
                int errno = st.errno();
                if (errno != Errno.EINVAL || bytes >= MAX_MASK_BYTES) { // EINVAL: the mask is smaller than the kernel's
                    throw new ErrnoException("sched_getaffinity", "pid=" + tid + ", size=" + bytes, errno);
                }
            }
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    private static int[] cpus(MemorySegment mask) {
        IntStream.Builder cpus = IntStream.builder();
        for (long word = 0; word < mask.byteSize() / 8; word++) {
            long bits = mask.getAtIndex(JAVA_LONG, word);
            while (bits != 0) {
                cpus.add((int) (word * 64 + Long.numberOfTrailingZeros(bits)));
                bits &= bits - 1;
            }
        }
        return cpus.build().toArray();
    }
}
