package io.github.vduse4j.engine;

/**
 * How long a queue poller spins on an empty ring before it sleeps on the kick: QEMU's adaptive AioContext polling
 * ({@code util/aio-posix.c}, {@code adjust_polling_time}: poll_ns against block_ns), plus a probe that keeps the
 * window from being trapped at zero. Poller thread only; no allocation.
 *
 * <p>After each idle period the poller reports how long the ring stayed empty and whether the period ended in a
 * sleep. As in QEMU: work found while spinning is the sweet spot (no change); work that came after a sleep but within
 * the maximum means a longer window would have caught it (grow: double, starting at {@link #MIN_NANOS}); a period
 * longer than the maximum means spinning is wasted (shrink: halve, below {@link #MIN_NANOS} to 0).
 *
 * <p>The trap: a period that ended in a sleep is measured to the wake-up, so it includes the wake-up's own latency.
 * Where that latency exceeds the maximum (a kick that waits milliseconds for a vCPU, docs/benchmarks.md "Why the
 * first guest runs showed 20-40 IOPS"), every period measures longer than the maximum however soon the driver came
 * back: the window shrinks to 0 and never grows again, although spinning would have caught every request. So after
 * {@link #PROBE_AFTER} periods in a row that ended in a sleep, the next period spins for the whole maximum (a
 * probe); work found within it (a measurement without any wake-up in it) grows the window to cover it. A driver that
 * really is slower than the maximum costs one maximum-long spin per {@link #PROBE_AFTER} sleeps.
 */
final class SpinWindow {
    /** Smallest window once it grows (QEMU's poll-grow starts at 4 µs too). */
    static final long MIN_NANOS = 4_000;
    /** Idle periods in a row that ended in a sleep before one is spun through as a probe. */
    static final int PROBE_AFTER = 64;

    private final long maxNanos;
    private long nanos;
    private int sleepsInARow;
    private boolean probing;

    /** A window adapting up to {@code maxNanos}, starting at 32 µs (or the maximum if lower); 0: never spins. */
    SpinWindow(long maxNanos) {
        this.maxNanos = maxNanos;
        this.nanos = Math.min(MIN_NANOS * 8, maxNanos);
    }

    /** How long to spin in the idle period that has begun (the whole maximum while probing). */
    long nanos() {
        return probing ? maxNanos : nanos;
    }

    /** The adapted window, probe or not (tests, stats). */
    long window() {
        return nanos;
    }

    /** True while the current idle period is a probe. */
    boolean probing() {
        return probing;
    }

    /**
     * An idle period ended after {@code waitedNanos} with work found; {@code slept}: the poller slept on the kick in it
     * (else the spin found the work).
     */
    void idleEnded(long waitedNanos, boolean slept) {
        if (maxNanos == 0) {
            return;
        }
        boolean probe = probing;
        probing = false;
        if (!slept) {
            sleepsInARow = 0;
            if (probe) {
                // the probe caught work no wake-up delayed: open the window as far as it takes to catch that again
                while (nanos < waitedNanos && nanos < maxNanos) {
                    nanos = grow(nanos);
                }
            }
            return;   // otherwise the sweet spot: no change
        }
        if (waitedNanos > maxNanos) {
            nanos = nanos / 2 < MIN_NANOS ? 0 : nanos / 2;
        } else if (nanos < maxNanos) {
            nanos = grow(nanos);
        }
        if (++sleepsInARow >= PROBE_AFTER && nanos < maxNanos) {
            sleepsInARow = 0;
            probing = true;   // the next idle period spins through the maximum
        }
    }

    private long grow(long n) {
        return Math.min(maxNanos, Math.max(MIN_NANOS, n * 2));
    }
}
