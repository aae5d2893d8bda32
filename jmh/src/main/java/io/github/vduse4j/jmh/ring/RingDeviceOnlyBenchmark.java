package io.github.vduse4j.jmh.ring;

import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;

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
 * one publish and one notification check per batch, fed by {@link RingReplay}. One operation = one chain.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1)
public class RingDeviceOnlyBenchmark {
    static final int CHAINS_PER_INVOCATION = 64;

    @Param({"split", "packed"})
    public String ring;

    @Param({"1", "16", "64"})
    public int batch;

    private RingReplay replay;
    private Virtqueue queue;
    private DescriptorChain chain;

    @Setup
    public void setup() {
        // 256 entries: not a multiple of 3, so packed chains also wrap the ring end
        replay = new RingReplay(ring.equals("packed"), RingFixture.QUEUE_SIZE, false);
        queue = replay.newDeviceQueue();
        chain = DescriptorChain.forQueue(queue);
        queue.disableNotifications();
    }

    @TearDown
    public void tearDown() { replay.close(); }

    @Benchmark
    @OperationsPerInvocation(CHAINS_PER_INVOCATION)
    public long popComplete() {
        final int b = batch;
        final Virtqueue q = queue;
        final DescriptorChain c = chain;
        long sum = 0;
        for (int done = 0; done < CHAINS_PER_INVOCATION; done += b) {
            replay.expose(b, done);
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
            replay.expose(b, done);
        }
        return replay.position();
    }
}
