package io.github.vduse4j.jmh.backend;

import io.github.vduse4j.engine.CompletionHandoff;
import java.util.concurrent.TimeUnit;
import org.jctools.queues.atomic.SpscAtomicArrayQueue;
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
 * The cross-thread completion handoff ({@link CompletionHandoff}, as {@code VirtioBlkQueueHandler} uses it for
 * backends that complete on their own threads): a backend thread completes preallocated requests into the handoff
 * as fast as the poller gives them back; the benchmark thread plays the poller, draining ({@code beginDrain} +
 * {@code poll}) and returning each request to the backend (an SPSC free list, as a queue's slot pool would). One
 * operation = one request handed over and taken, so the score is ns per request including the eventfd
 * {@code write} a producer makes once per poller pass. {@link #offerAndTakeOneThread} is the same handoff with
 * producer and consumer on one thread (64 offers, one eventfd write, 64 takes): its cost without cache-line
 * transfers or scheduling, which on a loaded 2-vCPU machine dominate the two-thread score. Run with
 * {@code -prof gc}: 0 B/op.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1)
public class CompletionHandoffBenchmark {
    static final int BATCH = 64;

    static final class Request {
        long payload;
    }

    /** The poller's side of a handoff fed by a background backend thread. */
    @State(Scope.Benchmark)
    public static class Pair {
        /** Requests in flight (a queue's slots). */
        @Param({"128"})
        public int inflight;

        CompletionHandoff<Request> handoff;
        SpscAtomicArrayQueue<Request> free;
        Thread backend;
        volatile boolean running;

        @Setup
        public void setUp() {
            handoff = new CompletionHandoff<>(inflight, -1);
            free = new SpscAtomicArrayQueue<>(inflight);
            for (int i = 0; i < inflight; i++) {
                free.offer(new Request());
            }
            running = true;
            backend = Thread.ofPlatform().name("backend").daemon(true).start(() -> {
                while (running) {
                    Request r = free.relaxedPoll();
                    if (r == null) {
                        Thread.onSpinWait();
                        continue;
                    }
                    r.payload++;
                    handoff.offer(r);
                }
            });
        }

        @TearDown
        public void tearDown() throws InterruptedException {
            running = false;
            backend.join();
            handoff.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long handOver(Pair p) {
        int got = 0;
        long sum = 0;
        while (got < BATCH) {
            Request r = p.handoff.poll();
            if (r == null) {
                if (!p.handoff.beginDrain()) {
                    Thread.onSpinWait(); // as an idle poller would before it sleeps on the eventfd
                }
                continue;
            }
            sum += r.payload;
            p.free.offer(r);
            got++;
        }
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long offerAndTakeOneThread(Local l) {
        for (int i = 0; i < BATCH; i++) {
            l.handoff.offer(l.items[i]);
        }
        long sum = 0;
        l.handoff.beginDrain();
        Request r;
        while ((r = l.handoff.poll()) != null) {
            sum += ++r.payload;
        }
        return sum;
    }

    /** A handoff used by one thread only (no background producer). */
    @State(Scope.Thread)
    public static class Local {
        CompletionHandoff<Request> handoff;
        final Request[] items = new Request[BATCH];

        @Setup
        public void setUp() {
            handoff = new CompletionHandoff<>(BATCH, -1);
            for (int i = 0; i < BATCH; i++) {
                items[i] = new Request();
            }
        }

        @TearDown
        public void tearDown() {
            handoff.close();
        }
    }
}
