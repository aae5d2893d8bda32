package io.github.vduse4j.blockdev.bench;

import static io.github.vduse4j.ring.VirtioRing.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.engine.frontend.MemoryRegion;
import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.RegionTable;
import io.github.vduse4j.ring.SplitVirtqueue;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.driver.DriverRing;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link BenchOptions#submitBatch} ({@code bench --iodepth-batch N}): a {@link BenchJob} on a split {@link BlkQueue}
 * whose device (a {@link SplitVirtqueue} on another thread, which never suppresses kicks) completes requests only in
 * whole rounds of the queue depth, with one used index store. Every publish of new requests then kicks, so the kicks
 * count the publishes exactly: one per round with the default (the job refills every free slot, then publishes), and
 * depth / N per round with N. The requests of one publish share their start time, so their latencies agree.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class BenchJobSubmitBatchTest {
    private static final long GPA = 0;
    private static final int RING = 64, DEPTH = 8, BS = 4096, ROUNDS = 200;

    @ParameterizedTest(name = "--iodepth-batch {0}: {1} publishes per round of {2}")
    @CsvSource({"0, 1, 8", "8, 1, 8", "2, 4, 8", "1, 8, 8", "3, 3, 8"})
    void eachBatchOfNewRequestsIsPublishedOnItsOwn(int batch, int publishesPerRound, int depth) throws Exception {
        try (MemoryRegion mem = MemoryRegion.memfd(BlkQueue.memoryBytes(RING, DEPTH, BS), GPA);
             BlkQueue q = new BlkQueue(mem, RING, DEPTH, BS, 0)) {
            DriverRing ring = q.ring();
            SplitVirtqueue dev = new SplitVirtqueue(RING, view(mem, ring.descAddress(), descTableBytes(RING)),
                    view(mem, ring.driverAreaAddress(), availRingBytes(RING)),
                    view(mem, ring.deviceAreaAddress(), usedRingBytes(RING)),
                    RegionTable.builder().add(GPA, mem.segment(), GuestMemory.READ | GuestMemory.WRITE).build(),
                    false, false);
            BenchOptions o = new BenchOptions(Path.of("/nonexistent"), BenchOptions.Pattern.RANDREAD, BS, depth, 1,
                    Duration.ofMinutes(1), false, 0, 50, RING, 3, false, 0, false, 0, 0, false, batch);
            BenchJob job = new BenchJob(q, o, 0, 1024);
            Device device = new Device(dev, depth);
            Thread deviceThread = Thread.ofPlatform().name("batch-device").daemon(true).start(device);
            Thread jobThread = Thread.ofPlatform().name("batch-job").daemon(true).start(job);
            try {
                long deadline = System.nanoTime() + 30_000_000_000L;
                while (job.completedOps() < (long) ROUNDS * depth && System.nanoTime() < deadline) {
                    Thread.sleep(1);
                }
            } finally {
                job.stop = true;
                jobThread.join(10_000);
                device.done = true;
                deviceThread.join(5_000);
            }
            assertFalse(jobThread.isAlive(), "the job drained and ended");
            assertNull(device.problem, device.problem);
            assertEquals(0, job.errors, job.firstProblem);
            long rounds = device.rounds;
            assertTrue(rounds >= ROUNDS, rounds + " rounds");
            assertEquals(rounds * depth, job.reads, "every request completed once");
            assertEquals(rounds * publishesPerRound, q.kicks(),
                    "publishes (each one kicks) per round of " + depth + " with --iodepth-batch " + batch);
            // A request's latency starts at its publish (BenchJob.publish) and the job reaps a whole round at once, so
            // the requests of one publish record the same latency: every histogram bucket holds whole publishes.
            int perPublish = depth / publishesPerRound;
            if (depth % publishesPerRound == 0) {
                job.histogram.recordedValues().forEach(v -> assertEquals(0, v.getCountAtValueIteratedTo() % perPublish,
                        v.getCountAtValueIteratedTo() + " requests at " + v.getValueIteratedTo() + " ns, not whole"
                                + " publishes of " + perPublish));
            }
        }
    }

    @Test
    void aBatchLargerThanTheDepthIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new BenchOptions(
                Path.of("/nonexistent"), BenchOptions.Pattern.RANDREAD, BS, DEPTH, 1, Duration.ofSeconds(1), false, 0,
                50, RING, 3, false, 0, false, 0, 0, false, DEPTH + 1));
        assertEquals("submit batch must be 0..queue depth (8), got 9", e.getMessage());
    }

    private static MemorySegment view(MemoryRegion mem, long gpa, long bytes) {
        return mem.segment().asSlice(gpa - mem.gpa(), bytes);
    }

    /** A null disk that waits for a whole round of {@code depth} requests, then completes them with one publish. */
    private static final class Device implements Runnable {
        private final SplitVirtqueue dev;
        private final int depth;
        volatile boolean done;
        volatile long rounds;
        volatile String problem;

        Device(SplitVirtqueue dev, int depth) {
            this.dev = dev;
            this.depth = depth;
        }

        @Override
        public void run() {
            DescriptorChain chain = DescriptorChain.forQueue(dev);
            int[] ids = new int[depth];
            int popped = 0;
            while (!done) {
                int r = dev.pop(chain);
                if (r == Virtqueue.EMPTY) {
                    Thread.onSpinWait();
                    continue;
                }
                if (r != Virtqueue.POPPED || chain.writableLength() != BS + 1) {
                    problem = "not a " + BS + "-byte read: " + r + ", writable " + chain.writableLength();
                    return;
                }
                chain.writeLastByte((byte) 0);
                ids[popped++] = chain.id();
                if (popped == depth) {
                    for (int id : ids) {
                        dev.complete(id, 1);
                    }
                    dev.publish();   // one used->idx store for the whole round
                    popped = 0;
                    rounds++;
                }
            }
        }
    }
}
