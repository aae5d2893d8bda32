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
        assertTrue(h.published(0), "the first publish is held");
        assertFalse(h.due(HOLD - 1));
        assertTrue(h.published(10_000), "the driver went on submitting: the hold goes on");
        assertTrue(h.published(20_000));
        assertFalse(h.due(20_000 + HOLD - 1), "measured from the last publish");
        assertTrue(h.due(20_000 + HOLD));
        h.sent();
        assertFalse(h.pending());
        assertFalse(h.probingOnly(), "a hold that caught publishes keeps holding");
        assertTrue(h.published(100_000));
    }

    @Test
    void aDriverThatNeverPausesIsNotifiedAfterFourHolds() {
        NotificationHold h = new NotificationHold(HOLD);
        long t = 0;
        assertTrue(h.published(t));
        int held = 1;
        while (h.published(t += 1_000)) {
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
            assertTrue(h.published(t));
            t += HOLD;
            assertTrue(h.due(t));
            h.sent();
            t += 100_000;
        }
        assertTrue(h.probingOnly());
        int heldOf = 0;
        for (int i = 0; i < 10 * NotificationHold.PROBE_EVERY; i++) {
            if (h.published(t)) {
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
        while (!h.published(t)) {
            t += 100_000;
        }
        assertTrue(h.published(t + 5_000));
        assertTrue(h.due(t + 5_000 + HOLD));
        h.sent();
        assertFalse(h.probingOnly());
        assertTrue(h.published(t + 200_000), "holding again at once");
    }

    @Test
    void aNotificationSentBeforeASleepEndsTheHold() {
        NotificationHold h = new NotificationHold(HOLD);
        assertTrue(h.published(0));
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
            assertFalse(h.published(i * 1_000L));
        }
        assertFalse(h.pending());
        assertThrows(IllegalArgumentException.class, () -> new NotificationHold(-1));
    }
}
