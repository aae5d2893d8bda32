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

    // The CPU gate (issue 18): spin at most the break-even while idle periods average longer than it.
    private static final long BREAK_EVEN = 4_000;

    /**
     * A light open-loop load (a request every 40 us, wake-ups 10 us): ungated, the window grows to cover the gap and
     * the poller spins through every gap; gated, no spin lasts longer than the break-even, so each gap costs at most
     * the break-even plus one wake-up.
     */
    @Test
    void aLightLoadSpinsAtMostTheBreakEven() {
        SpinWindow ungated = new SpinWindow(MAX), gated = new SpinWindow(MAX, BREAK_EVEN);
        long gap = 40_000, wakeUp = 10_000;
        int caughtUngated = 0;
        for (int i = 0; i < 1000; i++) {
            if (period(ungated, gap, wakeUp)) {
                caughtUngated++;
            }
            assertTrue(gated.nanos() <= BREAK_EVEN || i < 8, "period " + i + " would spin " + gated.nanos());
            period(gated, gap, wakeUp);
        }
        assertTrue(caughtUngated > 990, "ungated, the spin caught the gaps (CPU through all of them): " + caughtUngated);
        assertTrue(gated.gated(), "mean idle " + gated.meanIdle());
        assertTrue(gated.meanIdle() >= gap, "the mean idle period is the gap (plus wake-ups): " + gated.meanIdle());
        for (int i = 0; i < SpinWindow.PROBE_AFTER * 3; i++) {
            assertTrue(gated.nanos() <= BREAK_EVEN, "probes are capped too: " + gated.nanos() + " in period " + i);
            assertFalse(period(gated, gap, wakeUp));
        }
    }

    /**
     * A closed-loop driver that is back within 1 us, but preempted for 100 us every 50th request: the mean stays
     * below the break-even, so the full adaptive window remains and (once it has grown) catches the long gaps too.
     */
    @Test
    void aFastDriverKeepsTheFullWindowAndItsRareLongGapsAreCaught() {
        SpinWindow w = new SpinWindow(MAX, BREAK_EVEN);
        int longCaught = 0, longGaps = 0;
        for (int i = 0; i < 5000; i++) {
            boolean longGap = i % 50 == 49;
            boolean caught = period(w, longGap ? 100_000 : 1_000, 10_000);
            if (i >= 1000 && longGap) {
                longGaps++;
                longCaught += caught ? 1 : 0;
            } else if (i >= 1000) {
                assertTrue(caught, "short gap " + i + " caught by the spin");
            }
        }
        assertEquals(longGaps, longCaught, "every long gap after warm-up caught; window " + w.window());
        // a long gap shuts the gate for the few periods its weight needs to decay (the short gaps are caught within
        // the break-even meanwhile); after a run of short ones it is open
        for (int i = 0; i < 30; i++) {
            assertTrue(period(w, 1_000, 10_000));
        }
        assertFalse(w.gated(), "mean idle " + w.meanIdle());
    }

    /** Once the driver speeds up, a gated spin catches its short gaps and the full window returns. */
    @Test
    void theGateOpensWhenTheDriverSpeedsUp() {
        SpinWindow w = new SpinWindow(MAX, BREAK_EVEN);
        for (int i = 0; i < 500; i++) {
            period(w, 200_000, 50_000);
        }
        assertTrue(w.gated());
        int i = 0;
        while (w.gated() && i < 100) {
            period(w, 500, 50_000);
            i++;
        }
        assertFalse(w.gated(), "still gated after 100 fast periods, mean " + w.meanIdle());
        assertTrue(w.nanos() > BREAK_EVEN || w.window() <= BREAK_EVEN, "the adaptive window again: " + w.nanos());
    }

    @Test
    void aZeroBreakEvenIsTheUngatedWindow() {
        SpinWindow w = new SpinWindow(MAX, 0), plain = new SpinWindow(MAX);
        for (int i = 0; i < 300; i++) {
            assertEquals(plain.nanos(), w.nanos(), "period " + i);
            period(w, 40_000, 10_000);
            period(plain, 40_000, 10_000);
            assertFalse(w.gated());
        }
    }

    /**
     * An open-loop trickle slower than the break-even (a request every 60 us, wake-ups 10 us): once
     * {@link SpinWindow#GATED_MISSES} gated spins in a row found nothing, the poller sleeps at once but for one
     * period in {@link SpinWindow#GATED_PROBE_EVERY}, so the spin costs an eighth of the break-even per request.
     */
    @Test
    void aGateWhoseSpinsKeepMissingSleepsAtOnceButForItsProbes() {
        SpinWindow w = new SpinWindow(MAX, BREAK_EVEN);
        for (int i = 0; i < 100; i++) {
            w.busyEnded(1);
            period(w, 60_000, 10_000);
        }
        long spun = 0;
        int spinning = 0, periods = 800;
        for (int i = 0; i < periods; i++) {
            w.busyEnded(1);
            spun += w.nanos();
            spinning += w.nanos() > 0 ? 1 : 0;
            assertFalse(period(w, 60_000, 10_000), "period " + i);
        }
        assertTrue(w.gated());
        assertEquals(periods / SpinWindow.GATED_PROBE_EVERY, spinning, "one probe per " + SpinWindow.GATED_PROBE_EVERY);
        assertEquals(periods / SpinWindow.GATED_PROBE_EVERY * BREAK_EVEN, spun, "each probe spins the break-even");
    }

    /** A sleeping gate's probe that catches a driver which sped up brings the spin back, then the full window. */
    @Test
    void aProbeThatCatchesTheDriverBringsTheSpinBack() {
        SpinWindow w = new SpinWindow(MAX, BREAK_EVEN);
        for (int i = 0; i < 200; i++) {
            period(w, 60_000, 10_000);
        }
        assertTrue(w.gated(), "the slow trickle shut the gate");
        int firstCatch = -1;
        for (int i = 0; i < 100; i++) {
            boolean caught = period(w, 1_000, 10_000);
            if (caught && firstCatch < 0) {
                firstCatch = i;
            } else if (firstCatch >= 0) {
                assertTrue(caught, "after the first catch every period is caught: " + i);
            }
        }
        assertTrue(firstCatch >= 0 && firstCatch < SpinWindow.GATED_PROBE_EVERY, "a probe caught it: " + firstCatch);
        assertFalse(w.gated(), "and the mean opened the gate: " + w.meanIdle());
    }

    /**
     * A closed-loop QD32 frontend: 32 requests per busy period, a batch turnaround of 20 us (longer than the
     * break-even) and wake-ups of 10 us. The gate stays open (the full window catches every turnaround); the same gaps
     * one request at a time are the trickle the gate is for.
     */
    @Test
    void aBatchingDriverKeepsTheFullWindow() {
        SpinWindow batches = new SpinWindow(MAX, BREAK_EVEN), trickle = new SpinWindow(MAX, BREAK_EVEN);
        int caught = 0;
        for (int i = 0; i < 1000; i++) {
            batches.busyEnded(32);
            trickle.busyEnded(1);
            boolean c = period(batches, 20_000, 10_000);
            if (i >= 100) {
                caught += c ? 1 : 0;
            }
            period(trickle, 20_000, 10_000);
        }
        assertEquals(900, caught, "every batch turnaround caught after warm-up");
        assertFalse(batches.gated(), "batches keep the gate open: " + batches.perBusyX16() + "/16 per busy period");
        assertTrue(trickle.gated() && trickle.nanos() <= BREAK_EVEN, "one request per busy period: gated");
    }
}
