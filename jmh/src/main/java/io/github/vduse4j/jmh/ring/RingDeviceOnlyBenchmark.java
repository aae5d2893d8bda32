package io.github.vduse4j.jmh.ring;

import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.VirtioRing;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.PackedDriver;
import io.github.vduse4j.ring.testkit.SplitDriver;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The device side alone: pop + status write + complete of 3-descriptor chains (16 B header, 4 KiB data, 1 B status),
 * one publish and one notification check per batch. The "driver" is a minimal replay: the descriptors are written
 * once, and per chain it only re-exposes them (split: one avail ring entry + avail->idx release store per batch;
 * packed: rewrites the three descriptors' flags, head flags last with a release store), and never reaps (the device
 * does not care). One operation = one chain.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class RingDeviceOnlyBenchmark {
    static final int CHAINS_PER_INVOCATION = 64;
    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle()
            .withInvokeExactBehavior();
    private static final VarHandle U64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle()
            .withInvokeExactBehavior();

    @Param({"split", "packed"})
    public String ring;

    @Param({"1", "16", "64"})
    public int batch;

    private VirtqueueDriver driver;
    private Virtqueue queue;
    private DescriptorChain chain;
    private MemorySegment desc, avail;
    private boolean packed;
    private int size;
    private int availIdx;          // split replay
    private int next;              // packed replay: next descriptor
    private boolean wrap = true;   // packed replay: driver wrap counter
    private long header, data, status;

    @Setup
    public void setup() {
        packed = ring.equals("packed");
        size = RingFixture.QUEUE_SIZE;   // 256: not a multiple of 3, so packed chains also wrap the ring end
        driver = DriverConfig.of(size).eventIdx(true).dataRegions(1, 1 << 20).build(packed);
        queue = driver.newDeviceQueue();
        chain = DescriptorChain.forQueue(queue);
        header = driver.memory().allocate(16, 16);
        data = driver.memory().allocate(4096, 4096);
        status = driver.memory().allocate(1, 1);
        queue.disableNotifications();
        if (packed) {
            desc = ((PackedDriver) driver).descSegment();
        } else {
            SplitDriver s = (SplitDriver) driver;
            desc = s.descSegment();
            avail = s.availSegment();
            // chains at heads 0, 3, 6, ...: header -> data -> status
            for (int h = 0; h + 2 < size; h += 3) {
                s.raw().descriptor(h, header, 16, VirtioRing.DESC_F_NEXT, h + 1)
                        .descriptor(h + 1, data, 4096, VirtioRing.DESC_F_NEXT, h + 2)
                        .descriptor(h + 2, status, 1, VirtioRing.DESC_F_WRITE, 0);
            }
        }
    }

    @TearDown
    public void tearDown() { driver.close(); }

    private int splitHead;

    private void exposeSplit(int n) {
        for (int i = 0; i < n; i++) {
            U16.set(avail, VirtioRing.AVAIL_RING + 2L * (availIdx + i & (size - 1)), (short) splitHead);
            splitHead += 3;
            if (splitHead + 2 >= size) splitHead = 0;
        }
        availIdx = (availIdx + n) & 0xFFFF;
        U16.setRelease(avail, VirtioRing.AVAIL_IDX, (short) availIdx);
    }

    private void writePacked(int i, long addr, int len, int id, int flags) {
        long off = 16L * i;
        U64.set(desc, off, addr);
        U64.set(desc, off + 8, (len & 0xFFFF_FFFFL) | (long) id << 32 | (long) (flags & 0xFFFF) << 48);
    }

    private void exposePacked(int n, int firstId) {
        for (int c = 0; c < n; c++) {
            int avail = wrap ? VirtioRing.PACKED_DESC_F_AVAIL : VirtioRing.PACKED_DESC_F_USED;
            int head = next;
            int i1 = head + 1 == size ? 0 : head + 1;
            int f1 = i1 == 0 ? avail ^ 0x8080 : avail;
            int i2 = i1 + 1 == size ? 0 : i1 + 1;
            int f2 = i2 == 0 ? avail ^ 0x8080 : (i1 == 0 ? f1 : avail);
            writePacked(i1, data, 4096, firstId + c, f1 | VirtioRing.DESC_F_NEXT);
            writePacked(i2, status, 1, firstId + c, f2 | VirtioRing.DESC_F_WRITE);
            // head last, after a release fence (virtio_wmb)
            U64.set(desc, 16L * head, header);
            VarHandle.releaseFence();
            U64.set(desc, 16L * head + 8, 16L | (long) (firstId + c) << 32 | (long) (avail | VirtioRing.DESC_F_NEXT) << 48);
            next = i2 + 1;
            if (next >= size) {
                next -= size;
            }
            if (next <= head) wrap = !wrap;
        }
    }

    @Benchmark
    @OperationsPerInvocation(CHAINS_PER_INVOCATION)
    public long popComplete() {
        final int b = batch;
        final Virtqueue q = queue;
        final DescriptorChain c = chain;
        long sum = 0;
        for (int done = 0; done < CHAINS_PER_INVOCATION; done += b) {
            if (packed) exposePacked(b, done); else exposeSplit(b);
            for (int i = 0; i < b; i++) {
                if (q.pop(c) != Virtqueue.POPPED) throw new IllegalStateException("pop " + c);
                c.writeLastByte((byte) 0);
                q.complete(c.id(), 1);
                sum += c.readableLength();
            }
            q.publish();
            if (q.needsNotification()) sum++;
        }
        return sum;
    }


    /** The replay "driver" alone (no device): subtract it from {@link #popComplete} to see the device's share. */
    @Benchmark
    @OperationsPerInvocation(CHAINS_PER_INVOCATION)
    public int replayOnly() {
        final int b = batch;
        for (int done = 0; done < CHAINS_PER_INVOCATION; done += b) {
            if (packed) exposePacked(b, done); else exposeSplit(b);
        }
        return next + availIdx;
    }
}
