package io.github.vduse4j.engine;

import java.util.Arrays;

/**
 * How a device's queue pollers run: the idle strategy, the adaptive spin limit and the CPUs they are pinned to
 * (queue {@code i} runs on {@code cpus[i % cpus.length]}; none = not pinned).
 */
public record PollerSettings(PollMode mode, long maxSpinNanos, int[] cpus) {
    /** Adaptive polling up to 512 µs, not pinned. */
    public static final PollerSettings DEFAULT = new PollerSettings(PollMode.ADAPTIVE, 512_000, new int[0]);

    public PollerSettings {
        if (mode == null) {
            throw new IllegalArgumentException("poll mode is required");
        }
        if (maxSpinNanos < 0) {
            throw new IllegalArgumentException("max spin must not be negative");
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
                + (mode == PollMode.ADAPTIVE || mode == PollMode.INFLIGHT ? " (max spin " + maxSpinNanos / 1000 + " us)" : "")
                + (cpus.length == 0 ? "" : ", cpus " + Arrays.toString(cpus));
    }
}
