package io.github.vduse4j.blockdev.bench;

import static io.github.vduse4j.ring.VirtioRing.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.PackedVirtqueue;
import io.github.vduse4j.ring.RegionTable;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.driver.DriverRing;
import io.github.vduse4j.engine.frontend.MemoryRegion;
import io.github.vduse4j.ring.testkit.PackedRawRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A {@link BenchJob} on a packed {@link BlkQueue} whose device (a {@link PackedVirtqueue} on another thread) serves
 * requests properly for a while, then writes a used descriptor with a buffer id outside the ring: the job stops at
 * once (no 30 s drain of requests that can no longer be accounted), reports the fault as its first problem, and
 * nothing throws out of it.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class BenchJobFaultTest {
    private static final long GPA = 0;
    private static final int RING = 64, DEPTH = 8, BS = 4096, GOOD = 2000;

    @Test
    void aBrokenDeviceStopsTheJobAndIsReported() throws InterruptedException {
        try (MemoryRegion mem = MemoryRegion.memfd(BlkQueue.memoryBytes(RING, DEPTH, BS), GPA);
             BlkQueue q = new BlkQueue(mem, RING, DEPTH, BS, 1L << F_RING_PACKED)) {
            DriverRing ring = q.ring();
            MemorySegment desc = view(mem, ring.descAddress(), descTableBytes(RING));
            PackedVirtqueue dev = new PackedVirtqueue(RING, desc, view(mem, ring.driverAreaAddress(), 4),
                    view(mem, ring.deviceAreaAddress(), 4),
                    RegionTable.builder().add(GPA, mem.segment(), GuestMemory.READ | GuestMemory.WRITE).build(),
                    false, false);
            BenchOptions o = new BenchOptions(Path.of("/nonexistent"), BenchOptions.Pattern.RANDWRITE, BS, DEPTH, 1,
                    Duration.ofMinutes(1), false, 0, 50, RING, 3, true);
            BenchJob job = new BenchJob(q, o, 0, 1024);
            Thread device = Thread.ofPlatform().name("fault-device").daemon(true).start(() -> serve(dev, desc));
            Thread jobThread = Thread.ofPlatform().name("fault-job").daemon(true).start(job);
            try {
                jobThread.join(20_000);
                assertFalse(jobThread.isAlive(), "the job stops by itself when the ring breaks");
            } finally {
                job.stop = true;
                jobThread.join(5_000);
                device.join(5_000);
            }
            assertTrue(ring.broken());
            assertEquals(1, ring.deviceFaults());
            assertEquals(GOOD, job.writes, "every good completion was taken before the bad one");
            assertEquals(0, job.errors, job.firstProblem);
            assertNotNull(job.firstProblem);
            assertTrue(job.firstProblem.contains("used buffer id 999 is outside the ring"), job.firstProblem);
        }
    }

    private static MemorySegment view(MemoryRegion mem, long gpa, long bytes) {
        return mem.segment().asSlice(gpa - mem.gpa(), bytes);
    }

    /** A null disk that answers GOOD writes properly (status OK), then writes one bad used descriptor. */
    private static void serve(PackedVirtqueue dev, MemorySegment desc) {
        DescriptorChain chain = DescriptorChain.forQueue(dev);
        int completed = 0;
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (completed < GOOD && System.nanoTime() < deadline) {
            int r = dev.pop(chain);
            if (r == Virtqueue.EMPTY) {
                dev.publish();
                Thread.onSpinWait();
                continue;
            }
            if (r != Virtqueue.POPPED || chain.writableLength() != 1) {
                return;   // not a write request: the job then never stops and the test fails on it
            }
            chain.writeLastByte((byte) 0);
            dev.complete(chain.id(), 1);
            completed++;
        }
        dev.publish();
        int at = dev.lastUsedIndex();
        long off = (long) DESC_SIZE * at;
        ValueLayout.OfShort s16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
        desc.set(ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN), off + DESC_LEN, 1);
        desc.set(s16, off + PACKED_DESC_ID, (short) 999);
        // the flags go last, as a device publishes (release store)
        java.lang.invoke.VarHandle.releaseFence();
        desc.set(s16, off + PACKED_DESC_FLAGS,
                (short) (PackedRawRing.usedFlags(dev.lastUsedWrapCounter()) | DESC_F_WRITE));
    }
}
