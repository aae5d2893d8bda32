package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.invoke.MethodHandle;

/**
 * The calling thread's timer slack ({@code prctl(PR_SET_TIMERSLACK)} / {@code PR_GET_TIMERSLACK}, prctl(2)): how much
 * later than asked the kernel may end a timed sleep so that it can batch wake-ups (50 µs by default for a normal
 * thread). A poller that sleeps for a few microseconds on purpose sets it small first.
 */
public final class TimerSlack {
    private TimerSlack() {}

    static final int PR_SET_TIMERSLACK = 29;
    static final int PR_GET_TIMERSLACK = 30;

    private static final MethodHandle PRCTL = Libc.downcall("prctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG), Libc.variadicFrom(1));

    /** Sets the calling thread's timer slack to {@code nanos} (above 0; 0 would mean the process default). */
    public static void setCurrentThreadNanos(long nanos) {
        if (nanos <= 0) {
            throw new IllegalArgumentException("timer slack must be above 0 ns, got " + nanos);
        }
        int r = prctl(PR_SET_TIMERSLACK, nanos);
        if (r < 0) {
            throw new ErrnoException("prctl", "PR_SET_TIMERSLACK " + nanos, -r);
        }
    }

    /** The calling thread's timer slack in nanoseconds. */
    public static long currentThreadNanos() {
        int r = prctl(PR_GET_TIMERSLACK, 0);
        if (r < 0) {
            throw new ErrnoException("prctl", "PR_GET_TIMERSLACK", -r);
        }
        return r & 0xffff_ffffL;
    }

    /** prctl(option, arg): its result, or -errno. */
    private static int prctl(int option, long arg) {
        CallState st = CallState.current();
        int r;
        try {
            r = (int) PRCTL.invokeExact(st.capture, option, arg, 0L, 0L, 0L);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        return r == -1 ? -st.errno() : r;
    }
}
