package io.github.vduse4j.bindings;

import static org.junit.jupiter.api.Assertions.*;

import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** {@link TimerSlack}: per thread, as prctl(2) says (a new thread's slack is its creator's). */
class TimerSlackTest {
    @Test
    void aThreadSetsItsOwnSlackAndOnlyItsOwn() throws InterruptedException {
        long before = TimerSlack.currentThreadNanos();
        assertTrue(before > 0, "a thread has a slack: " + before);
        AtomicLong seen = new AtomicLong(-1);
        Thread t = Thread.ofPlatform().start(() -> {
            TimerSlack.setCurrentThreadNanos(1_000);
            seen.set(TimerSlack.currentThreadNanos());
        });
        t.join();
        assertEquals(1_000, seen.get());
        assertEquals(before, TimerSlack.currentThreadNanos(), "the other thread's setting is not ours");
    }

    @Test
    void zeroIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> TimerSlack.setCurrentThreadNanos(0));
    }
}
