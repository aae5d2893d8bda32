package io.github.vduse4j.engine.control;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.engine.QueueStats;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StatsFileTest {
    @TempDir
    Path dir;

    @Test
    void bucketsCoverEveryValueInOrderWithinASixteenth() {
        assertEquals(0, StatsLayout.bucketOf(-5));
        long prevLow = -1;
        for (int b = 0; b < StatsLayout.HISTOGRAM_BUCKETS; b++) {
            long lo = StatsLayout.bucketLowerBound(b);
            assertTrue(lo > prevLow, "bounds increase");
            assertEquals(b, StatsLayout.bucketOf(lo), "lower bound of " + b);
            if (b < StatsLayout.HISTOGRAM_BUCKETS - 1) {
                long hi = StatsLayout.bucketUpperBound(b);
                assertEquals(b, StatsLayout.bucketOf(hi), "upper bound of " + b);
                assertEquals(b + 1, StatsLayout.bucketOf(hi + 1));
                assertTrue(hi - lo + 1 <= Math.max(1, lo / 16), "width of " + b + " at most 1/16 of its start");
            }
            prevLow = lo;
        }
        assertEquals(StatsLayout.HISTOGRAM_BUCKETS - 1, StatsLayout.bucketOf(Long.MAX_VALUE));
    }

    @Test
    void percentilesFromTheBucketsMatchTheExactOnesWithinTheBucketWidth() {
        QueueStats q = new QueueStats();
        Random r = new Random(1);
        long[] v = new long[100_000];
        for (int i = 0; i < v.length; i++) {
            v[i] = (long) Math.exp(r.nextGaussian() * 1.5 + 10); // log-normal around 22 us
            q.popped();
            q.completed(0, -1, 4096, v[i]);
        }
        java.util.Arrays.sort(v);
        StatsSnapshot s = StatsSnapshot.of(q);
        for (double p : new double[] {0.5, 0.99, 0.999}) {
            long exact = v[(int) Math.ceil(p * v.length) - 1];
            long got = s.percentile(p);
            assertTrue(got >= exact && got <= exact + exact / 16 + 1, p + ": " + got + " vs exact " + exact);
        }
        assertEquals(v[v.length - 1], s.percentile(1.0), "the top is the maximum");
        assertEquals(v.length, s.requests());
        assertEquals(4096L * v.length, q.readBytes());
        assertEquals(0, s.inflight());
    }

    @Test
    void aReaderInAnotherMappingSeesTheWritersCountsWhileItWrites() throws Exception {
        Path f = dir.resolve("stats");
        try (StatsFile w = StatsFile.create(f, "disk0", 2)) {
            try (StatsFile r = StatsFile.open(f)) {
                assertEquals("disk0", r.name());
                assertEquals(ProcessHandle.current().pid(), r.pid());
                assertEquals(2, r.queues().size());
                assertEquals("requests", r.counterNames().get(StatsLayout.REQUESTS));
                assertEquals("ops.write", r.counterNames().get(StatsLayout.OP_FIRST + StatsLayout.OP_WRITE));
                AtomicBoolean done = new AtomicBoolean();
                AtomicReference<String> problem = new AtomicReference<>();
                Thread reader = Thread.ofPlatform().start(() -> {
                    long last = 0;
                    while (!done.get()) {
                        QueueStats q = r.queues().get(1);
                        long n = q.requests();
                        long bytes = q.writtenBytes();
                        if (n < last || q.inflight() < 0 || bytes < 0 || bytes % 512 != 0) {
                            problem.set("requests " + n + " after " + last + ", bytes " + bytes);
                        }
                        last = n;
                    }
                });
                QueueStats q = w.queues().get(1);
                for (int i = 0; i < 200_000; i++) {
                    q.popped();
                    q.completed(StatsLayout.OP_WRITE, -1, 512, 1000);
                }
                done.set(true);
                reader.join();
                assertNull(problem.get());
                assertEquals(200_000, r.queues().get(1).requests());
                assertEquals(200_000L * 512, r.queues().get(1).writtenBytes());
                assertEquals(0, r.queues().get(0).requests(), "queue 0 untouched");
                assertFalse(r.isClosed());
                w.close();
                assertTrue(r.isClosed(), "the reader sees the writer stop");
                assertEquals(200_000, r.queues().get(1).requests(), "and keeps the final counts");
            }
        }
    }

    /**
     * Two exports started at once under one name (e.g. restarts of a crashed one) both create the stats file before
     * one of them is refused: each must build its own temporary file, or one truncates the file the other is
     * writing through its mapping (SIGBUS: an InternalError out of the memory access).
     */
    @Test
    void creatorsRacingOnOnePathNeverWriteIntoEachOthersFile() throws Exception {
        Path f = dir.resolve("stats");
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread[] threads = new Thread[2];
        for (int t = 0; t < threads.length; t++) {
            threads[t] = new Thread(() -> {
                for (int i = 0; i < 400 && failure.get() == null; i++) {
                    try (StatsFile s = StatsFile.create(f, "disk0", 64)) {
                        assertEquals(64, s.queues().size());
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }
            });
            threads[t].start();
        }
        for (Thread t : threads) {
            t.join();
        }
        assertNull(failure.get(), () -> "a creator failed: " + failure.get());
        try (StatsFile r = StatsFile.open(f)) {
            assertEquals(64, r.queues().size());
        }
    }

    @Test
    void aReaderRefusesFilesItCannotRead() throws IOException {
        Path junk = dir.resolve("junk");
        Files.write(junk, new byte[2048]);
        assertTrue(assertThrows(IOException.class, () -> StatsFile.open(junk)).getMessage().contains("bad magic"));
        Path small = dir.resolve("small");
        Files.write(small, new byte[10]);
        assertThrows(IOException.class, () -> StatsFile.open(small));
        assertThrows(IOException.class, () -> StatsFile.open(dir.resolve("missing")));
        Path f = dir.resolve("future");
        StatsFile.create(f, "x", 1).close();
        try (var ch = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(0, 2), 8);
        }
        assertTrue(assertThrows(IOException.class, () -> StatsFile.open(f)).getMessage().contains("layout version 2"));
    }
}
