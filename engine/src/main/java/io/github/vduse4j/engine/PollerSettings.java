package io.github.vduse4j.engine;

import java.util.Arrays;

/**
 * How a device's queue pollers run: the idle strategy, the adaptive spin limit (and its CPU gate), COALESCE's timer
 * period and the CPUs they are pinned to (queue {@code i} runs on {@code cpus[i % cpus.length]}; none = not pinned).
 */
public record PollerSettings(PollMode mode, long maxSpinNanos, long spinBreakEvenNanos, long coalesceNanos,
                             int[] cpus) {
    /** Adaptive polling up to 512 µs, not pinned, no CPU gate ({@link #SPIN_BREAK_EVEN_NANOS}). */
    public static final PollerSettings DEFAULT = new PollerSettings(PollMode.ADAPTIVE, 512_000, new int[0]);
    /**
     * The adaptive window's default CPU gate ({@link SpinWindow}): none. A gate at about what one sleep and wake-up
     * cost the poller's CPU (~4 µs on the 2-vCPU development VM: --poll event's CPU per request less the request's
     * own work) matches --poll event's CPU at fixed rates, but shut on closed-loop QD32 too (a batch's turnaround
     * in the frontend is longer than that) and cost it most of its IOPS in 2 of 3 rounds (docs/benchmarks.md "CPU per
     * request at a fixed rate"), so it is an option ({@code --spin-break-even-us}), not the default.
     */
    public static final long SPIN_BREAK_EVEN_NANOS = 0;
    /** {@link PollMode#COALESCE}'s default timer period: 20 µs. */
    public static final long COALESCE_NANOS = 20_000;

    /** With the default CPU gate ({@link #SPIN_BREAK_EVEN_NANOS}). */
    public PollerSettings(PollMode mode, long maxSpinNanos, int[] cpus) {
        this(mode, maxSpinNanos, SPIN_BREAK_EVEN_NANOS, COALESCE_NANOS, cpus);
    }

    /** With the default coalescing period ({@link #COALESCE_NANOS}). */
    public PollerSettings(PollMode mode, long maxSpinNanos, long spinBreakEvenNanos, int[] cpus) {
        this(mode, maxSpinNanos, spinBreakEvenNanos, COALESCE_NANOS, cpus);
    }

    public PollerSettings {
        if (mode == null) {
            throw new IllegalArgumentException("poll mode is required");
        }
        if (maxSpinNanos < 0) {
            throw new IllegalArgumentException("max spin must not be negative");
        }
        if (spinBreakEvenNanos < 0) {
            throw new IllegalArgumentException("spin break-even must not be negative");
        }
        if (coalesceNanos <= 0) {
            throw new IllegalArgumentException("coalescing period must be above 0");
        }
        cpus = cpus == null ? new int[0] : cpus.clone();
        for (int c : cpus) {
            if (c < 0) {
                throw new IllegalArgumentException("CPU numbers must not be negative: " + c);
            }
        }
    }

    /** The CPU queue {@code queue} is pinned to, or -1. */
    public int cpuFor(int queue) {
        return cpus.length == 0 ? -1 : cpus[queue % cpus.length];
    }

    @Override
    public int[] cpus() {
        return cpus.clone();
    }

    @Override
    public String toString() {
        return mode.name().toLowerCase(java.util.Locale.ROOT)
                + (mode == PollMode.ADAPTIVE || mode == PollMode.INFLIGHT ? " (max spin " + maxSpinNanos / 1000 + " us"
                        + (spinBreakEvenNanos > 0 ? ", " + spinBreakEvenNanos / 1000 + " us while idle periods average more" : "")
                        + ")" : "")
                + (mode == PollMode.COALESCE ? " (" + coalesceNanos / 1000 + " us timer while requests come faster)" : "")
                + (cpus.length == 0 ? "" : ", cpus " + Arrays.toString(cpus));
    }
}
