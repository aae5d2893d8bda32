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
 *
 * <p>The CPU gate (issue 18: the CPU a spin burns at light load). A window that covers the driver's gaps is the
 * sweet spot for latency, but a spin costs CPU for as long as the gap lasts, while a sleep costs one wake-up whatever
 * the gap. So the window also tracks the mean idle period (an exponential moving average, weight
 * 1/{@code 2^}{@link #MEAN_SHIFT}, of every measured period, sleeps included) and, while that mean exceeds the
 * break-even (about what one sleep and wake-up cost the poller's CPU), spins at most the break-even, probes
 * included: the ski-rental rule (spin as long as blocking would cost, then block), so an idle period costs at most
 * twice a wake-up. Requests that come back faster than a wake-up costs on average (a closed-loop QD1 driver, a busy
 * queue) keep the full adaptive window: a rare long gap among them is still caught. A gated spin that catches a
 * short gap measures it without any wake-up in it, so the mean falls again once the driver speeds up.
 *
 * <p>Two refinements of the gate (issue 18, the 10 % load rows). A gated spin that keeps finding nothing costs the
 * break-even on every request for no gain (an open-loop QD1 at 16k IOPS: 60 us gaps, each paying the spin and the
 * wake-up), so after {@link #GATED_MISSES} gated spins in a row that ended in a sleep the poller sleeps at once, but
 * for one period in {@link #GATED_PROBE_EVERY} that still spins the break-even: a probe that catches the driver (it
 * sped up) brings the gated spin back on every period, and the mean then opens the gate. And a driver that submits
 * in batches (at least {@link #BATCH_X16}/16 requests per busy period on average: a closed-loop QD32 frontend
 * resubmitting what completed) keeps the full window whatever the mean: its gap is its batch turnaround, the kick a
 * sleep would make it pay is on its own critical path, and a gate that shut there cost closed-loop QD32 most of its
 * IOPS (docs/benchmarks.md "CPU per request at a fixed rate"). Requests that come one per busy period with long gaps
 * between them are the open-loop trickle the gate is for.
 */
final class SpinWindow {
    /** Smallest window once it grows (QEMU's poll-grow starts at 4 µs too). */
    static final long MIN_NANOS = 4_000;
    /** Idle periods in a row that ended in a sleep before one is spun through as a probe. */
    static final int PROBE_AFTER = 64;

    /** The mean idle period's moving-average weight: 1/2^MEAN_SHIFT per period. */
    static final int MEAN_SHIFT = 3;
    /** Gated spins in a row that ended in a sleep before the gate stops spinning but for its probes. */
    static final int GATED_MISSES = 4;
    /** While gated spins keep missing, one idle period in this many (a power of 2) spins the break-even. */
    static final int GATED_PROBE_EVERY = 8;
    /**
     * Requests per busy period (x16, fixed point; a moving average, weight 1/4) from which the driver counts as
     * submitting in batches: the gate stays open.
     */
    static final int BATCH_X16 = 48;

    private final long maxNanos;
    /** The CPU gate's break-even (0: no gate). */
    private final long breakEvenNanos;
    /** Moving average of the measured idle periods (ns). */
    private long meanIdleNanos;
    private long nanos;
    private int sleepsInARow;
    private boolean probing;
    /** Requests per busy period (x16), a moving average. */
    private int perBusyX16 = 16;
    /** Gated idle periods in a row that ended in a sleep (at most GATED_MISSES). */
    private int gatedMisses;
    /** Idle periods seen (wraps; only its low bits pick the gated probes). */
    private int periods;

    /** A window adapting up to {@code maxNanos}, starting at 32 µs (or the maximum if lower); 0: never spins. */
    SpinWindow(long maxNanos) {
        this(maxNanos, 0);
    }

    /**
     * As {@link #SpinWindow(long)}, with the CPU gate at {@code breakEvenNanos} (0: none): while the mean idle period
     * is longer, no spin lasts longer than that.
     */
    SpinWindow(long maxNanos, long breakEvenNanos) {
        this.maxNanos = maxNanos;
        this.breakEvenNanos = breakEvenNanos;
        this.nanos = Math.min(MIN_NANOS * 8, maxNanos);
    }

    /**
     * How long to spin in the idle period that has begun (the whole maximum while probing; at most the break-even
     * while the CPU gate is shut).
     */
    long nanos() {
        long n = probing ? maxNanos : nanos;
        if (!gated()) {
            return n;
        }
        if (gatedMisses >= GATED_MISSES && !probing && (periods & (GATED_PROBE_EVERY - 1)) != 0) {
            return 0;   // the gated spins kept missing: sleep at once, but for the probes
        }
        return Math.min(n, breakEvenNanos);
    }

    /**
     * True while the CPU gate caps the spin: the mean idle period is longer than the break-even and the driver does
     * not submit in batches.
     */
    boolean gated() {
        return breakEvenNanos > 0 && meanIdleNanos > breakEvenNanos && perBusyX16 < BATCH_X16;
    }

    /** The requests per busy period (x16, a moving average) that tell a batching driver (tests, stats). */
    int perBusyX16() {
        return perBusyX16;
    }

    /** A busy period ended (the ring went empty) after serving {@code served} requests. */
    void busyEnded(int served) {
        perBusyX16 += (Math.min(served, 1 << 20) * 16 - perBusyX16) >> 2;
    }

    /** The mean idle period (ns) the CPU gate compares with the break-even (tests, stats). */
    long meanIdle() {
        return meanIdleNanos;
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
        if (gated()) {
            gatedMisses = slept ? Math.min(gatedMisses + 1, GATED_MISSES) : 0;
        } else {
            gatedMisses = 0;
        }
        periods++;
        meanIdleNanos += (Math.max(0, waitedNanos) - meanIdleNanos) >> MEAN_SHIFT;
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
