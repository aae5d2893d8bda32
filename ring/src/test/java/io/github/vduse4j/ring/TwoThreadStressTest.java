package io.github.vduse4j.ring;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;

import java.lang.foreign.ValueLayout;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Driver and device on two threads with real sleeps: the device parks until a kick, the driver until an interrupt,
 * each only after the enable / full fence / re-check sequence. Checks the payload of every chain and that no wake-up
 * is lost (a lost one would leave a side waiting: reported after 20 s instead of hanging the build).
 */
class TwoThreadStressTest {
    private static final int CHAINS = Integer.getInteger("ring.stress.chains", 200_000);

    @ParameterizedTest(name = "packed={0} eventIdx={1}")
    @CsvSource({"false, false", "false, true", "true, false", "true, true"})
    void payloadsAndWakeupsSurviveConcurrency(boolean packed, boolean eventIdx) throws Exception {
        int size = 64;
        try (VirtqueueDriver d = DriverConfig.of(size).eventIdx(eventIdx).dataRegions(1, 16L * size).build(packed)) {
            Virtqueue q = d.newDeviceQueue();
            Semaphore kick = new Semaphore(0), irq = new Semaphore(0);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread device = Thread.ofPlatform().name("device").start(() -> {
                try {
                    deviceLoop(q, kick, irq);
                } catch (Throwable t) {
                    failure.set(t);
                    irq.release(1 << 20);
                }
            });
            try {
                driverLoop(d, size, kick, irq, failure);
            } finally {
                kick.release(1 << 20);   // let the device observe the end
                device.join(30_000);
            }
            if (failure.get() != null) throw new AssertionError(failure.get());
            assertFalse(device.isAlive());
        }
    }

    private static final long STOP = -1;

    private static void driverLoop(VirtqueueDriver d, int size, Semaphore kick, Semaphore irq,
                                   AtomicReference<Throwable> failure) throws InterruptedException {
        UsedBuffer u = new UsedBuffer();
        long base = io.github.vduse4j.ring.testkit.DriverMemory.DATA_BASE;
        long[] slotSeq = new long[size];
        boolean[] slotBusy = new boolean[size];
        long next = 0, done = 0;
        int slot = 0;
        d.disableCallbacks();
        while (done < CHAINS) {
            if (failure.get() != null) return;
            boolean progress = false;
            int added = 0;
            while (next < CHAINS && added < 16 && !slotBusy[slot]) {
                long a = base + 16L * slot;
                d.memory().view(a, 16).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, next);
                d.memory().view(a, 16).set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 0);
                if (d.chain().readable(a, 8).writable(a + 8, 8).add(slot) < 0) break;
                slotBusy[slot] = true;
                slotSeq[slot] = next;
                next++;
                added++;
                slot = (slot + 1) % size;
            }
            if (added > 0) {
                progress = true;
                if (d.kickPrepare()) kick.release();
            }
            while (d.reap(u)) {
                int s = (int) u.token;
                long echoed = d.memory().view(base + 16L * s + 8, 8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
                assertEquals(slotSeq[s] + 1, echoed, "device's answer for chain " + slotSeq[s]);
                assertEquals(8, u.len);
                slotBusy[s] = false;
                done++;
                progress = true;
            }
            if (!progress) {
                if (d.enableCallbacks()) {   // nothing pending: sleep until an interrupt
                    if (!irq.tryAcquire(20, TimeUnit.SECONDS)) fail("lost interrupt: driver waited 20 s, done=" + done);
                }
                d.disableCallbacks();
            }
        }
        d.memory().view(base, 8);   // keep memory reachable until here
        kick.release();
    }

    private static void deviceLoop(Virtqueue q, Semaphore kick, Semaphore irq) throws InterruptedException {
        DescriptorChain c = DescriptorChain.forQueue(q);
        int processed = 0;
        if (!q.enableNotifications()) {
            if (!kick.tryAcquire(20, TimeUnit.SECONDS)) fail("no first kick");
        }
        q.disableNotifications();
        while (processed < CHAINS) {
            int res = q.pop(c);
            if (res == Virtqueue.POPPED) {
                long seq = c.readLongLE(0);
                c.segment(1).set(ValueLayout.JAVA_LONG_UNALIGNED, c.offset(1), seq + 1);
                q.complete(c.id(), 8);
                processed++;
                if ((processed & 7) != 0) continue;   // publish in batches of up to 8
            } else if (res != Virtqueue.EMPTY) {
                fail("pop returned " + res + " " + ChainError.name(c.error()));
            }
            q.publish();
            if (q.needsNotification()) irq.release();
            if (res == Virtqueue.EMPTY) {
                if (!q.enableNotifications()) {
                    if (!kick.tryAcquire(20, TimeUnit.SECONDS)) fail("lost kick: device waited 20 s, processed=" + processed);
                }
                q.disableNotifications();
            }
        }
        q.publish();
        if (q.needsNotification()) irq.release();
    }
}
