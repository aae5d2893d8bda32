package io.github.vduse4j.blockdev.bench;

import static io.github.vduse4j.ring.VirtioRing.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.engine.frontend.MemoryRegion;
import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.PackedVirtqueue;
import io.github.vduse4j.ring.RegionTable;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.driver.DriverRing;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The hand-over that IOTLB churn and stop/start rely on ({@code bench --remap-interval-ms}, {@code
 * --stop-start-interval-ms}): while the runner holds a slot for a remap, no request the device pops uses that slot's
 * data buffer; a pause leaves nothing in flight; the slot comes back into use after the hand-back. The device is a
 * {@link PackedVirtqueue} on another thread that completes every request at once and checks every chain's data
 * address against the held one.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class BenchJobHandoverTest {
    private static final int RING = 64, DEPTH = 8, BS = 4096, ROUNDS = 64;

    private volatile long heldGpa = -1;
    private volatile boolean deviceStop;
    private final AtomicLong violations = new AtomicLong();
    private final AtomicLong served = new AtomicLong();
    private final long[] servedPerSlot = new long[DEPTH];

    @Test
    void aHeldBufferIsNeverInFlightAndAPauseDrainsEverything() throws InterruptedException {
        try (MemoryRegion mem = MemoryRegion.memfd(BlkQueue.memoryBytes(RING, DEPTH, BS), 0);
             BlkQueue q = new BlkQueue(mem, RING, DEPTH, BS, 1L << F_RING_PACKED)) {
            DriverRing ring = q.ring();
            PackedVirtqueue dev = new PackedVirtqueue(RING, view(mem, ring.descAddress(), descTableBytes(RING)),
                    view(mem, ring.driverAreaAddress(), 4), view(mem, ring.deviceAreaAddress(), 4),
                    RegionTable.builder().add(0, mem.segment(), GuestMemory.READ | GuestMemory.WRITE).build(),
                    false, false);
            BenchOptions o = new BenchOptions(Path.of("/dev/vhost-vdpa-test"), BenchOptions.Pattern.RANDRW, BS, DEPTH,
                    1, Duration.ofMinutes(1), false, 0, 50, RING, 5, true, 0, true, 1, 1, false);
            BenchJob job = new BenchJob(q, o, 0, 4096);
            Thread device = Thread.ofPlatform().name("handover-device").daemon(true).start(() -> serve(dev, q));
            Thread jobThread = Thread.ofPlatform().name("handover-job").daemon(true).start(job);
            try {
                for (int r = 0; r < ROUNDS; r++) {
                    int slot = r % DEPTH;
                    long before = servedPerSlot[slot];
                    job.remapWanted = slot;
                    await(() -> job.remapHeld == slot, "slot " + slot + " handed over");
                    job.remapWanted = -1;
                    heldGpa = q.dataGpa(slot);
                    long until = System.nanoTime() + 200_000;   // requests on the other slots go on meanwhile
                    while (System.nanoTime() < until) {
                        Thread.onSpinWait();
                    }
                    heldGpa = -1;
                    job.remapDone = slot;
                    await(() -> job.remapHeld == -1, "slot " + slot + " taken back");
                    assertTrue(servedPerSlot[slot] >= before, "counts only grow");
                    if (r % 32 == 31) {
                        job.pauseWanted = true;
                        await(() -> job.paused, "the job paused");
                        assertEquals(0, ring.inflight(), "a paused job has nothing in flight");
                        long s = served.get();
                        Thread.sleep(5);
                        assertEquals(s, served.get(), "nothing is submitted while paused");
                        job.pauseWanted = false;
                    }
                }
                long total = served.get();
                await(() -> served.get() > total + 100, "requests go on after the last hand-back");
            } finally {
                job.stop = true;
                jobThread.join(10_000);
                deviceStop = true;
                device.join(5_000);
            }
            assertFalse(jobThread.isAlive());
            assertEquals(0, violations.get(), "requests popped on a held buffer");
            assertEquals(0, job.errors, job.firstProblem);
            for (int s = 0; s < DEPTH; s++) {
                assertTrue(servedPerSlot[s] > 0, "slot " + s + " was used");
            }
        }
    }

    private void serve(PackedVirtqueue dev, BlkQueue q) {
        DescriptorChain chain = DescriptorChain.forQueue(dev);
        while (!deviceStop) {
            int r = dev.pop(chain);
            if (r == Virtqueue.EMPTY) {
                dev.publish();
                Thread.onSpinWait();
                continue;
            }
            if (r != Virtqueue.POPPED || chain.bufferCount() != 3) {
                violations.incrementAndGet();
                return;
            }
            long data = chain.offset(1);   // one region at IOVA 0: offsets are device addresses
            if (data == heldGpa) {
                violations.incrementAndGet();
            }
            for (int s = 0; s < DEPTH; s++) {
                if (q.dataGpa(s) == data) {
                    servedPerSlot[s]++;
                }
            }
            chain.writeLastByte((byte) 0);
            dev.complete(chain.id(), chain.writableCount() == 2 ? BS + 1 : 1);
            served.incrementAndGet();
        }
    }

    private static void await(java.util.function.BooleanSupplier c, String what) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("timed out waiting until " + what);
            }
            Thread.onSpinWait();
        }
    }

    private static MemorySegment view(MemoryRegion mem, long gpa, long bytes) {
        return mem.segment().asSlice(gpa - mem.gpa(), bytes);
    }
}
