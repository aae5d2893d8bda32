package io.github.vduse4j.engine;

import java.util.Arrays;

/**
 * How a device's queue pollers run: the idle strategy, the adaptive spin limit (and its CPU gate), COALESCE's timer
 * period, the CPUs they are pinned to (queue {@code i} runs on {@code cpus[i % cpus.length]}; none = not pinned) and
 * the notification hold ({@link NotificationHold}: interrupt moderation; 0 = notify after every pass).
 */
public record PollerSettings(PollMode mode, long maxSpinNanos, long spinBreakEvenNanos, long coalesceNanos,
                             int[] cpus, long notifyHoldNanos) {
    /** Adaptive polling up to 512 µs, not pinned, no CPU gate ({@link #SPIN_BREAK_EVEN_NANOS}). */
    public static final PollerSettings DEFAULT = new PollerSettings(PollMode.ADAPTIVE, 512_000, new int[0]);
    /**
     * The adaptive window's default CPU gate ({@link SpinWindow}): none. A gate at about what one sleep and wake-up
     * cost the poller's CPU (~4 µs on the 2-vCPU development VM: --poll event's CPU per request less the request's
     * own work) brings light-load CPU to --poll event's (an open-loop QD1 at 10 % of qemu-storage-daemon's maximum:
     * 0.95x the peer's CPU per request, where the ungated window takes 3.4x) and, since it leaves batching drivers
     * the full window, keeps closed-loop QD32 at 0.5-0.9x the ungated IOPS (4.5x qemu-storage-daemon's). It is not
     * the default because the gaps it sleeps through are the ones that pay in a small VM: in the TCG guest a wake-up
     * takes 24-74 µs and fio's QD1 turnaround ~200 µs, so spinning through it is what keeps QD1 at the peer's
     * (the 4 µs gate: 0.66x the peer's QD1 IOPS, against 1.01x ungated; docs/benchmarks.md "The CPU gate
     * refined"). It is an option ({@code --spin-break-even-us}).
     */
    public static final long SPIN_BREAK_EVEN_NANOS = 0;
    /** {@link PollMode#COALESCE}'s default timer period: 20 µs. */
    public static final long COALESCE_NANOS = 20_000;

    /**
     * The default {@link #notifyHoldNanos()}, the longest a {@link NotificationHold} waits for the driver's next
     * request: 32 µs (4 x that in all); the hold itself adapts to 3 x the gaps between the driver's requests (a few µs
     * where they come a few µs apart) and stops where holds catch nothing (queue depth 1). In the 2-vCPU TCG guest it
     * took QD32 to 1.19x the peer's IOPS (ranked above it over 6 interleaved rounds; 1.05x the unheld poller's in the
     * same rounds, 1.14, 1.02 and 1.12x in 3 boots) with QD1 unchanged (docs/benchmarks.md "An adaptive hold, and the
     * default"). 0 turns it off.
     */
    public static final long NOTIFY_HOLD_NANOS = 32_000;

    /** With the default notification hold ({@link #NOTIFY_HOLD_NANOS}). */
    public PollerSettings(PollMode mode, long maxSpinNanos, long spinBreakEvenNanos, long coalesceNanos, int[] cpus) {
        this(mode, maxSpinNanos, spinBreakEvenNanos, coalesceNanos, cpus, NOTIFY_HOLD_NANOS);
    }

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
        if (notifyHoldNanos < 0) {
            throw new IllegalArgumentException("notification hold must not be negative");
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
                + (notifyHoldNanos > 0 && mode != PollMode.EVENT ? ", notifications held up to " + notifyHoldNanos / 1000
                        + " us while the driver goes on submitting" : "")
                + (cpus.length == 0 ? "" : ", cpus " + Arrays.toString(cpus));
    }
}
