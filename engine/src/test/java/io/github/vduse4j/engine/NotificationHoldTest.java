package io.github.vduse4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Interrupt moderation, driven by given publish and empty-ring times (no clock). */
class NotificationHoldTest {
    private static final long HOLD = 16_000;

    @Test
    void aBurstOfPublishesGetsOneNotificationWhenTheRingHasStayedEmptyForTheHold() {
        NotificationHold h = new NotificationHold(HOLD);
        assertEquals(HOLD, h.holdNanos(), "the first hold is the maximum");
        assertTrue(h.start(0), "the first wanted notification is held");
        assertFalse(h.due(HOLD - 1));
        assertTrue(h.submitted(10_000), "the driver went on submitting: the hold goes on");
        assertTrue(h.submitted(20_000));
        assertFalse(h.due(20_000 + HOLD - 1), "measured from the last publish");
        assertTrue(h.due(20_000 + HOLD));
        h.sent();
        assertFalse(h.pending());
        assertFalse(h.probingOnly(), "a hold that caught publishes keeps holding");
        assertTrue(h.start(100_000));
    }

    @Test
    void aDriverThatNeverPausesIsNotifiedAfterFourHolds() {
        NotificationHold h = new NotificationHold(HOLD);
        long t = 0;
        assertTrue(h.start(t));
        int held = 1;
        while (h.submitted(t += 1_000)) {
            held++;
        }
        assertEquals(NotificationHold.MAX_HOLDS * HOLD / 1_000, held, "publishes held before the notification");
        assertFalse(h.pending(), "that publish is notified at once, for the whole burst");
        assertFalse(h.due(t + HOLD), "nothing left held");
    }

    @Test
    void holdsThatCatchNothingStopButForOneProbeInPROBE_EVERY() {
        NotificationHold h = new NotificationHold(HOLD);
        long t = 0;
        for (int i = 0; i < NotificationHold.WASTED_LIMIT; i++) {   // queue depth 1: nothing joins a hold
            assertTrue(h.start(t));
            t += HOLD;
            assertTrue(h.due(t));
            h.sent();
            t += 100_000;
        }
        assertTrue(h.probingOnly());
        int heldOf = 0;
        for (int i = 0; i < 10 * NotificationHold.PROBE_EVERY; i++) {
            if (h.start(t)) {
                heldOf++;
                t += HOLD;
                assertTrue(h.due(t));
                h.sent();
            }
            t += 100_000;
        }
        assertEquals(10, heldOf, "one probe per PROBE_EVERY publishes");
        assertTrue(h.probingOnly());
        // the driver got deeper: the next probe catches a second publish and holding is back
        while (!h.start(t)) {
            t += 100_000;
        }
        assertTrue(h.submitted(t + 5_000));
        assertTrue(h.due(t + 5_000 + HOLD));
        h.sent();
        assertFalse(h.probingOnly());
        assertTrue(h.start(t + 200_000), "holding again at once");
    }

    /** Requests 1 µs apart shrink the hold to about 3 µs; 10 µs apart bring it back to the maximum. */
    @Test
    void theHoldAdaptsToTheGapsBetweenTheSubmissionsThatJoinIt() {
        NotificationHold h = new NotificationHold(HOLD);
        long t = 0;
        for (int i = 0; i < 100; i++) {   // bursts of 3 publishes 1 µs apart, 100 µs between bursts
            assertTrue(h.start(t));
            assertTrue(h.submitted(t + 1_000));
            assertTrue(h.submitted(t + 2_000));
            h.sent();
            t += 100_000;
        }
        long shrunk = h.holdNanos();
        assertTrue(shrunk >= 3_000 && shrunk < 3_500, "3 x the 1 us gap: " + shrunk);
        assertTrue(h.start(t));
        assertFalse(h.due(t + shrunk - 1));
        assertTrue(h.due(t + shrunk), "the burst's end is seen one adapted hold after its last publish");
        assertFalse(h.submitted(t + shrunk), "a publish after the hold was due does not join it: the owed one is sent");
        assertFalse(h.pending());
        for (int i = 0; i < 100; i++) {   // 2.5 us apart: inside the 3 us hold, so they join it and lengthen it
            t += 100_000;
            assertTrue(h.start(t));
            if (h.submitted(t + 2_500)) {
                h.sent();
            }
        }
        assertTrue(h.holdNanos() < 8_000, "3 x the 2.5 us gap: " + h.holdNanos());
        for (int i = 0; i < 100; i++) {
            t += 100_000;
            assertTrue(h.start(t));
            long len = h.holdNanos();
            if (h.submitted(t + Math.min(10_000, len - 1))) {
                h.sent();
            }
        }
        assertEquals(HOLD, h.holdNanos(), "gaps up to 10 us grow it back to the 16 us maximum");
    }

    /** A probe holds for the whole maximum, however short the adapted hold has become. */
    @Test
    void probesHoldForTheMaximumAndTheirGapsSetTheLengthAgain() {
        NotificationHold h = new NotificationHold(HOLD);
        long t = 0;
        for (int i = 0; i < 100; i++) {
            assertTrue(h.start(t));
            assertTrue(h.submitted(t + 1_000));
            h.sent();
            t += 100_000;
        }
        assertTrue(h.holdNanos() < 4_000);
        while (!h.probingOnly()) {   // the driver slowed down: the short holds catch nothing
            assertTrue(h.start(t));
            h.sent();
            t += 100_000;
        }
        while (!h.start(t)) {
            t += 100_000;
        }
        assertFalse(h.due(t + HOLD - 1), "a probe lasts the maximum");
        for (int i = 1; i <= 3; i++) {
            assertTrue(h.submitted(t + i * 12_000L), "the probe catches publishes 12 us apart");
        }
        h.sent();
        assertFalse(h.probingOnly(), "holding is back");
        assertTrue(h.holdNanos() > 4_000, "the probe's gaps lengthened the hold: " + h.holdNanos());
    }

    /**
     * A hold that catches something takes one off the count of wasted holds, it does not clear it: a driver whose
     * holds catch in 1 of 4 stops holding (with a reset to 0 it would never reach {@link NotificationHold#WASTED_LIMIT}
     * and would hold forever, delaying three bursts in four for nothing), one whose holds catch in 2 of 3 goes on.
     */
    @Test
    void holdingStopsWhereFewerThanHalfOfTheHoldsCatchAndGoesOnWhereMostDo() {
        NotificationHold oneInFour = new NotificationHold(HOLD);
        long t = 0;
        int held = 0;
        for (int i = 0; i < 1000; i++, t += 100_000) {
            if (oneInFour.start(t)) {
                held++;
                if (i % 4 == 0) {
                    assertTrue(oneInFour.submitted(t + 5_000));
                }
                oneInFour.sent();
            }
        }
        assertTrue(oneInFour.probingOnly(), "1 catch in 4 holds: holding stopped");
        assertTrue(held < 100, "held " + held + " of 1000 wanted notifications");

        NotificationHold twoInThree = new NotificationHold(HOLD);
        for (int i = 0; i < 1000; i++, t += 100_000) {
            assertTrue(twoInThree.start(t), "notification " + i + " held");
            if (i % 3 != 0) {
                assertTrue(twoInThree.submitted(t + 5_000));
            }
            twoInThree.sent();
        }
        assertFalse(twoInThree.probingOnly());
    }

    @Test
    void aNotificationSentBeforeASleepEndsTheHold() {
        NotificationHold h = new NotificationHold(HOLD);
        assertTrue(h.start(0));
        h.sent();   // the poller is about to sleep
        assertFalse(h.pending());
        assertFalse(h.due(HOLD));
        h.sent();   // nothing held: no effect
        assertFalse(h.pending());
    }

    @Test
    void zeroNeverHolds() {
        NotificationHold h = new NotificationHold(0);
        assertFalse(h.enabled());
        for (int i = 0; i < 1000; i++) {
            assertFalse(h.start(i * 1_000L));
        }
        assertFalse(h.pending());
        assertThrows(IllegalArgumentException.class, () -> new NotificationHold(-1));
    }
}
