package io.github.vduse4j.ring;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class EventIndexTest {
    /** Reference: does the half-open u16 interval (old, new] contain event + 1, i.e. was entry `event` written? */
    private static boolean model(int event, int newIdx, int oldIdx) {
        int n = (newIdx - oldIdx) & 0xFFFF;
        for (int k = 0; k < n; k++) {
            if (((oldIdx + k) & 0xFFFF) == (event & 0xFFFF)) return true;
        }
        return false;
    }

    @Test
    void specExampleUsedEventZero() {
        // §2.7.7 note: used_event 0 -> notify after the first buffer is used (idx 0 -> 1) and not again until 65536.
        assertTrue(EventIndex.needEvent(0, 1, 0));
        assertFalse(EventIndex.needEvent(0, 2, 1));
        assertTrue(EventIndex.needEvent(0, 0x10001, 0x10000));
    }

    @Test
    void wrapsAroundTheU16Boundary() {
        assertTrue(EventIndex.needEvent(0xFFFF, 0x0001, 0xFFFE));
        assertTrue(EventIndex.needEvent(0x0000, 0x0001, 0xFFFE));
        assertFalse(EventIndex.needEvent(0x0001, 0x0001, 0xFFFE));
        assertFalse(EventIndex.needEvent(0xFFFD, 0x0001, 0xFFFE));
        assertFalse(EventIndex.needEvent(5, 7, 7), "no progress, no event");
    }

    @Test
    void agreesWithTheIntervalModel() {
        java.util.Random r = new java.util.Random(7);
        for (int i = 0; i < 100_000; i++) {
            int old = r.nextInt(0x10000);
            int n = r.nextInt(600);
            int nw = (old + n) & 0xFFFF;
            int ev = r.nextBoolean() ? (old + r.nextInt(700) - 50) & 0xFFFF : r.nextInt(0x10000);
            assertEquals(model(ev, nw, old), EventIndex.needEvent(ev, nw, old), ev + " " + nw + " " + old);
        }
    }

    @Test
    void acceptsNegativeIndexesLikeLinuxPackedCode() {
        // packed: event in the previous lap is off - size; old = new - added may be negative
        int size = 256;
        assertTrue(EventIndex.needEvent(250 - size, 4, 4 - 12));   // old = -8 (= 248 last lap), event 250 last lap
        assertFalse(EventIndex.needEvent(240 - size, 4, 4 - 12));
        assertTrue(EventIndex.needEvent(2, 4, 4 - 12));
    }
}
