package io.github.vduse4j.ring;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Notification suppression never loses a wake-up: a random interleaving of a driver (submission always possible, a
 * completion side that sleeps until an interrupt) and a device (sleeps until a kick) is checked after every step:
 * a sleeping device has no unseen available chain, and when both sleep no used entry is left unreaped. Each side
 * sleeps only the way Linux / the poll loop contract prescribe (enable, full fence, re-check).
 */
class NotificationLivenessPropertyTest {
    private static final int RUNS = Integer.getInteger("ring.liveness.runs", 400);

    @ParameterizedTest(name = "packed={0} eventIdx={1}")
    @CsvSource({"false, false", "false, true", "true, false", "true, true"})
    void noLostNotifications(boolean packed, boolean eventIdx) {
        Random master = new Random(packed ? 11 : 12 + (eventIdx ? 100 : 0));
        long kicks = 0, adds = 0, interrupts = 0, publishes = 0;
        for (int run = 0; run < RUNS; run++) {
            long seed = master.nextLong();
            try {
                long[] c = run(new Random(seed), packed, eventIdx);
                adds += c[0];
                kicks += c[1];
                publishes += c[2];
                interrupts += c[3];
            } catch (Throwable t) {
                throw new AssertionError("seed " + seed, t);
            }
        }
        assertTrue(kicks <= adds && interrupts <= publishes);
        if (eventIdx) {
            assertTrue(kicks < adds, "EVENT_IDX suppresses some kicks: " + kicks + "/" + adds);
        }
    }

    private long[] run(Random r, boolean packed, boolean eventIdx) {
        int size = packed ? 1 + r.nextInt(12) : 1 << r.nextInt(4);
        DriverConfig cfg = DriverConfig.of(size).eventIdx(eventIdx).dataRegions(1, 4096);
        try (VirtqueueDriver d = cfg.build(packed)) {
            if (!packed && r.nextBoolean()) ((io.github.vduse4j.ring.testkit.SplitDriver) d).startAt(0xFFFF - r.nextInt(20));
            Virtqueue q = d.newDeviceQueue();
            DescriptorChain chain = DescriptorChain.forQueue(q);
            UsedBuffer u = new UsedBuffer();
            long buf = d.memory().allocate(64);
            List<Integer> inflight = new ArrayList<>();
            boolean deviceAwake = q.enableNotifications();
            boolean completionAwake = !d.enableCallbacks();
            assertFalse(deviceAwake);
            assertFalse(completionAwake);
            long added = 0, popped = 0, published = 0, reaped = 0, publishes = 0;
            for (int step = 0; step < 1500; step++) {
                int action = r.nextInt(3);
                if (action == 0) {                                   // driver submits, then kick check
                    int n = 1 + r.nextInt(3);
                    int k = 0;
                    for (; k < n; k++) {
                        if (d.chain().readable(buf, 8).writable(buf + 8, 8).add(added) < 0) break;
                        added++;
                    }
                    if (k > 0 && d.kickPrepare()) deviceAwake = true;
                } else if (action == 1 && deviceAwake) {              // device works or tries to sleep
                    switch (r.nextInt(4)) {
                        case 0 -> q.disableNotifications();
                        case 1 -> {
                            int max = 1 + r.nextInt(size);
                            for (int k = 0; k < max; k++) {
                                int res = q.pop(chain);
                                if (res == Virtqueue.EMPTY) break;
                                assertEquals(Virtqueue.POPPED, res);
                                inflight.add(chain.id());
                                popped++;
                            }
                        }
                        case 2 -> {
                            Collections.shuffle(inflight, r);
                            int n = r.nextInt(inflight.size() + 1);
                            for (int k = 0; k < n; k++) q.complete(inflight.removeLast(), 8);
                            q.publish();
                            published += n;
                            publishes++;
                            if (q.needsNotification() && d.interrupt()) completionAwake = true;
                        }
                        default -> {
                            if (inflight.isEmpty()) {
                                // poll loop contract: enable, and sleep only if nothing arrived meanwhile
                                if (!q.enableNotifications()) deviceAwake = false;
                            }
                        }
                    }
                } else if (action == 2 && completionAwake) {          // driver completion side (virtblk_done)
                    if (r.nextBoolean()) d.disableCallbacks();
                    int n = r.nextInt(size + 1);
                    for (int k = 0; k < n && d.reap(u); k++) reaped++;
                    if (r.nextBoolean() && d.enableCallbacks()) completionAwake = false;
                }
                if (!deviceAwake) {
                    assertEquals(added, popped, "device sleeps with available chains it was never kicked for");
                }
                if (!deviceAwake && !completionAwake) {
                    assertEquals(published, reaped, "driver sleeps with used entries it was never notified of");
                }
            }
            return new long[] {added, d.kicks(), publishes, d.interrupts()};
        }
    }
}
