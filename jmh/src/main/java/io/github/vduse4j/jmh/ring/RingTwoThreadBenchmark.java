package io.github.vduse4j.jmh.ring;

import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Control;

/**
 * The same chains with the driver and the device on two threads (two cores), both busy-polling with notifications
 * suppressed (device: NO_NOTIFY / stale avail_event or DISABLE; driver: callbacks disabled). One {@code device}
 * operation = one chain popped, status written and completed; the device publishes (and runs its notification check)
 * every {@code batch} chains or when the ring is empty. The {@code driver} operation = one chain added (kick check and reaping every
 * {@code batch} additions, or when the ring is full). Read the {@code ·device} score as chains/s.
 */
@State(Scope.Group)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1)
public class RingTwoThreadBenchmark {
    @Param({"split", "packed"})
    public String ring;

    @Param({"1", "16", "64"})
    public int batch;

    private RingFixture fixture;

    @Setup(Level.Iteration)
    public void setup() {
        // a fresh queue per iteration: a thread stopped mid-operation at the end of one leaves no half state behind
        fixture = new RingFixture(ring);
    }

    @TearDown(Level.Iteration)
    public void tearDown() { fixture.close(); }

    /** Driver-thread state. */
    @State(Scope.Thread)
    public static class DriverSide {
        final UsedBuffer used = new UsedBuffer();
        int sinceKick;

        @Setup(Level.Iteration)
        public void reset() { sinceKick = 0; }
    }

    /** Device-thread state. */
    @State(Scope.Thread)
    public static class DeviceSide {
        int unpublished;

        @Setup(Level.Iteration)
        public void reset() { unpublished = 0; }
    }

    /**
     * Busy-poll spins before yielding the core (-Dring.bench.spins, default 16). On the shared 2-vCPU development
     * machine the two threads mostly share one free CPU, so yielding early is what lets the other side run (measured
     * at batch 16: 10 spins ~7.6 M chains/s, 50 ~5-6, 500 ~2, 5000 ~0.3); on dedicated cores a large value (pure
     * busy polling) is the realistic setting.
     */
    private static final int SPINS_BEFORE_YIELD = Integer.getInteger("ring.bench.spins", 16);

    /** Agrona-style backoff: spin first, then yield the core (the machine may have fewer free cores than threads). */
    private static void idle(int spins) {
        if (spins < SPINS_BEFORE_YIELD) Thread.onSpinWait(); else Thread.yield();
    }

    @Benchmark
    @Group("pingPong")
    @GroupThreads(1)
    public long driver(DriverSide s, Control control) {
        final RingFixture f = fixture;
        final VirtqueueDriver d = f.driver;
        long sum = 0;
        int spins = 0;
        while (!f.add(sum)) {   // ring full: reap (as a polling Linux driver would), then retry
            if (control.stopMeasurement) return sum;
            while (d.reap(s.used)) sum += s.used.len;
            idle(++spins);
        }
        if (++s.sinceKick >= batch) {
            s.sinceKick = 0;
            d.kickPrepare();
            while (d.reap(s.used)) sum += s.used.len;
        }
        return sum;
    }

    @Benchmark
    @Group("pingPong")
    @GroupThreads(1)
    public long device(DeviceSide s, Control control) {
        final RingFixture f = fixture;
        final Virtqueue q = f.queue;
        final DescriptorChain c = f.chain;
        int r;
        int spins = 0;
        while ((r = q.pop(c)) != Virtqueue.POPPED) {
            if (r != Virtqueue.EMPTY) throw new IllegalStateException("pop " + c);
            if (s.unpublished > 0) {   // ring empty: hand back what we have
                s.unpublished = 0;
                q.publish();
                q.needsNotification();
            }
            if (control.stopMeasurement) return 0;
            idle(++spins);
        }
        c.writeLastByte((byte) 0);
        q.complete(c.id(), 1);
        if (++s.unpublished >= batch) {
            s.unpublished = 0;
            q.publish();
            q.needsNotification();
        }
        return c.readableLength();
    }
}
