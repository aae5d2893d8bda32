package io.github.vduse4j.jmh.ring;

import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;

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
 * Pop + complete of 3-descriptor chains (16 B header, 4 KiB data, 1 B status) on one thread, in batches: the driver
 * adds {@code batch} chains and runs its kick check, the device pops them, writes each status byte, completes them,
 * publishes once and runs its notification check, the driver reaps them. One operation = one chain, both sides'
 * ring work included (score = chains/s).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1)
public class RingSingleThreadBenchmark {
    static final int CHAINS_PER_INVOCATION = 64;

    @Param({"split", "packed"})
    public String ring;

    @Param({"1", "16", "64"})
    public int batch;

    private RingFixture fixture;
    private VirtqueueDriver driver;
    private Virtqueue queue;
    private DescriptorChain chain;
    private final UsedBuffer used = new UsedBuffer();

    @Setup
    public void setup() {
        fixture = new RingFixture(ring);
        driver = fixture.driver;
        queue = fixture.queue;
        chain = fixture.chain;
    }

    @TearDown
    public void tearDown() { fixture.close(); }

    @Benchmark
    @OperationsPerInvocation(CHAINS_PER_INVOCATION)
    public long popComplete() {
        final int b = batch;
        long sum = 0;
        for (int done = 0; done < CHAINS_PER_INVOCATION; done += b) {
            for (int i = 0; i < b; i++) fixture.add(i);
            driver.kickPrepare();
            for (int i = 0; i < b; i++) {
                if (queue.pop(chain) != Virtqueue.POPPED) throw new IllegalStateException("pop " + chain);
                chain.writeLastByte((byte) 0);
                queue.complete(chain.id(), 1);
                sum += chain.readableLength();
            }
            queue.publish();
            if (queue.needsNotification()) sum++;
            while (driver.reap(used)) sum += used.len;
        }
        return sum;
    }
}
