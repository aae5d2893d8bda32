package io.github.vduse4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The adaptive spin window, driven by idle periods of given lengths (no clock: each period's length is what the
 * poller would have measured). A driver that comes back {@code turnaround} ns after the ring went empty is caught by
 * the spin if the window covers it; otherwise the poller sleeps and measures {@code turnaround} plus the wake-up.
 */
class SpinWindowTest {
    private static final long MAX = 512_000;

    /** One idle period of a driver with this turnaround and this wake-up latency; true if the spin caught it. */
    private static boolean period(SpinWindow w, long turnaround, long wakeUp) {
        if (turnaround <= w.nanos()) {
            w.idleEnded(turnaround, false);
            return true;
        }
        w.idleEnded(Math.max(turnaround, w.nanos()) + wakeUp, true);
        return false;
    }

    @Test
    void growsAndShrinksAsQemusPollNsDoes() {
        SpinWindow w = new SpinWindow(MAX);
        assertEquals(32_000, w.window(), "starts at 32 us");
        w.idleEnded(100_000, true);   // slept, came within the maximum: a longer window would have caught it
        assertEquals(64_000, w.window());
        w.idleEnded(10_000, false);   // found while spinning: the sweet spot
        assertEquals(64_000, w.window());
        w.idleEnded(2_000_000, true); // idle longer than the maximum: spinning was wasted
        assertEquals(32_000, w.window());
        for (int i = 0; i < 3; i++) {
            w.idleEnded(2_000_000, true);
        }
        assertEquals(4_000, w.window());
        w.idleEnded(2_000_000, true);
        assertEquals(0, w.window(), "below the 4 us minimum it stops spinning");
        w.idleEnded(100_000, true);
        assertEquals(4_000, w.window(), "and grows from 4 us again when work comes within the maximum");
        for (int i = 0; i < 20; i++) {
            w.idleEnded(300_000, true);
        }
        assertEquals(MAX, w.window(), "never beyond the maximum");
    }

    /**
     * The trap of the vhost-vdpa diagnostic boot: wake-ups slower than the maximum (8 ms kicks) make every slept
     * period measure longer than the maximum, though the driver comes back after 100 us. Without the probe the window
     * stays 0 for good (every request sleeps); with it, the first probe catches the driver and the window opens.
     */
    @Test
    void aWindowCollapsedBySlowWakeUpsOpensAgainWhenTheDriverIsFast() {
        SpinWindow w = new SpinWindow(MAX);
        long turnaround = 100_000, wakeUp = 8_000_000;
        for (int i = 0; i < SpinWindow.PROBE_AFTER - 1; i++) {
            assertFalse(period(w, turnaround, wakeUp), "period " + i + " slept");
        }
        assertEquals(0, w.window(), "the slow wake-ups collapsed the window (the trap)");
        assertFalse(period(w, turnaround, wakeUp), "still sleeping after " + SpinWindow.PROBE_AFTER + " periods");
        assertTrue(w.probing(), "which makes the next period a probe");
        assertEquals(MAX, w.nanos(), "spun through the whole maximum");
        assertTrue(period(w, turnaround, wakeUp), "the probe catches the driver");
        assertTrue(w.window() >= turnaround, "and the window covers its turnaround: " + w.window());
        for (int i = 0; i < 1000; i++) {
            assertTrue(period(w, turnaround, wakeUp), "request " + i + " caught by the spin, no wake-up");
        }
    }

    /** A driver really slower than the maximum: the window stays closed and probes cost one spin per 64 sleeps. */
    @Test
    void aSlowDriverCostsOneProbePerSixtyFourSleeps() {
        SpinWindow w = new SpinWindow(MAX);
        int probes = 0, periods = 64 * 100;
        for (int i = 0; i < periods; i++) {
            if (w.probing()) {
                probes++;
            }
            assertFalse(period(w, 2_000_000, 50_000));
        }
        assertEquals(0, w.window());
        assertEquals(periods / SpinWindow.PROBE_AFTER - 1, probes, "one probe per " + SpinWindow.PROBE_AFTER + " sleeps");
    }

    @Test
    void aZeroMaximumNeverSpins() {
        SpinWindow w = new SpinWindow(0);
        for (int i = 0; i < 200; i++) {
            w.idleEnded(100, true);
            assertEquals(0, w.nanos());
        }
        assertFalse(w.probing());
    }
}
