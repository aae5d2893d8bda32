package io.github.vduse4j.jmh.engine;

import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.control.StatsLayout;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What live stats add to one request, isolated from the ring and the backend: the poller's {@code popped()}, one
 * {@code System.nanoTime()} at pop and one at completion (the handler takes one per completion batch, so this is the
 * batch-of-one worst case), and {@code completed()} (counters, histogram bucket, latency sum and max, the
 * slow-request comparison). {@code onePassPerRequest} is what the handler does now for one-chain passes (one clock
 * read per request); {@code clockPair} and {@code recordOnly} split the cost. {@code baseline} is the loop without
 * them. Run with {@code -prof gc}: 0 B/op.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1)
public class QueueStatsBenchmark {
    private final QueueStats stats = new QueueStats();
    private long n;

    @Benchmark
    public long baseline() {
        return ++n;
    }

    /** The two clock reads alone. */
    @Benchmark
    public long clockPair() {
        long start = System.nanoTime();
        n++;
        return System.nanoTime() - start + n;
    }

    /** The counter and histogram updates alone (a fixed latency: no clock). */
    @Benchmark
    public long recordOnly() {
        stats.popped();
        stats.completed((int) (++n & 1) == 0 ? StatsLayout.OP_READ : StatsLayout.OP_WRITE, -1, 4096, 1500 + (n & 1023));
        return n;
    }

    private long carried = System.nanoTime();

    /**
     * What VirtioBlkQueueHandler records per request for a stream of one-chain passes: the pop time is the clock read
     * that ended the previous pass, one clock read per request, the request's counters and bucket, then the pass's
     * count, latency sum and maximum.
     */
    @Benchmark
    public long onePassPerRequest() {
        long start = carried;
        stats.popped();
        long now = System.nanoTime();
        long latency = now - start;
        stats.completedRequest((int) (++n & 1) == 0 ? StatsLayout.OP_READ : StatsLayout.OP_WRITE, -1, 4096, latency);
        stats.completedPass(1, latency, latency);
        carried = now;
        return n;
    }

    @Benchmark
    public long popAndComplete() {
        long start = System.nanoTime();
        stats.popped();
        stats.completed((int) (++n & 1) == 0 ? StatsLayout.OP_READ : StatsLayout.OP_WRITE, -1, 4096,
                System.nanoTime() - start);
        return n;
    }
}
