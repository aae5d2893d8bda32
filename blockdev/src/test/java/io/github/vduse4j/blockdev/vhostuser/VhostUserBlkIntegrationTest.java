package io.github.vduse4j.blockdev.vhostuser;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.blockdev.backend.MemoryBackend;
import io.github.vduse4j.blockdev.backend.NullBackend;
import io.github.vduse4j.blockdev.bench.BenchOptions;
import io.github.vduse4j.blockdev.bench.BenchResult;
import io.github.vduse4j.blockdev.bench.BenchRunner;
import io.github.vduse4j.blockdev.virtio.VirtioBlkDevice;
import io.github.vduse4j.blockdev.virtio.VirtioBlkSettings;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.vhostuser.VhostUserServer;
import io.github.vduse4j.ring.VirtioRing;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** vduse4j's vhost-user back-end driven by vduse4j's frontend over a real socket and memfds. */
class VhostUserBlkIntegrationTest {
    @TempDir
    Path dir;

    private static BenchOptions opts(Path sock, BenchOptions.Pattern p, int bs, int depth, int queues, long millis,
                                     boolean verify) {
        return opts(sock, p, bs, depth, queues, millis, verify, false);
    }

    private static BenchOptions opts(Path sock, BenchOptions.Pattern p, int bs, int depth, int queues, long millis,
                                     boolean verify, boolean packed) {
        return new BenchOptions(sock, p, bs, depth, queues, Duration.ofMillis(millis), verify, 0, 50, 0, 42, packed);
    }

    /**
     * {@code vduse4j bench --completions call}: with a rate that leaves each queue idle between requests, the jobs
     * sleep on the call eventfds and the back-end's used-buffer notifications wake them; verify stays clean.
     */
    @Test
    void awaitCallsSleepsOnTheCallEventfd() {
        Path sock = dir.resolve("calls.sock");
        VirtioBlkDevice dev = new VirtioBlkDevice(new MemoryBackend(8 << 20, false),
                new VirtioBlkSettings(2, 256, 512, "it", false));
        try (VhostUserServer server = VhostUserServer.start(sock, dev, true)) {
            BenchOptions o = new BenchOptions(sock, BenchOptions.Pattern.RANDRW, 4096, 4, 2, Duration.ofMillis(1500),
                    true, 0, 50, 0, 3, false, 2000, false, 0, 0, true);
            BenchResult r = BenchRunner.run(o, null);
            assertTrue(r.ok(), r.summary());
            assertTrue(r.ios() > 100 && r.verified() > 0, r.summary());
            assertTrue(r.calls() > 0, "the jobs slept on the call eventfd and were woken: " + r.toJson());
        }
    }

    /**
     * {@code vduse4j bench --rate-iops}: 2 queues at 600 IOPS in all for 1.5 s issue about 900 requests, evenly
     * spaced, not as fast as the back-end goes (hundreds of thousands here), and the JSON names the rate. The rate is
     * low so that a loaded CI host (which once managed only 2,400 IOPS in this test) still reaches it: the bound that
     * matters is the upper one, never more than asked.
     */
    @Test
    void aRateLimitIssuesThatManyRequestsPerSecond() {
        Path sock = dir.resolve("rate.sock");
        VirtioBlkDevice dev = new VirtioBlkDevice(new MemoryBackend(8 << 20, false),
                new VirtioBlkSettings(2, 256, 512, "it", false));
        try (VhostUserServer server = VhostUserServer.start(sock, dev, true)) {
            BenchOptions o = new BenchOptions(sock, BenchOptions.Pattern.RANDREAD, 4096, 8, 2, Duration.ofMillis(1500),
                    false, 0, 50, 0, 1, false, 600, false, 0, 0, false);
            BenchResult r = BenchRunner.run(o, null);
            assertTrue(r.ok(), r.summary());
            assertTrue(r.iops() > 600 * 0.7 && r.iops() < 600 * 1.05, "about 600 IOPS: " + r.summary());
            assertTrue(r.toJson().contains("\"rate_iops\":600"), r.toJson());
        }
    }

    @Test
    void randomWritesVerifyOnAMemoryDisk() {
        Path sock = dir.resolve("blk.sock");
        VirtioBlkDevice dev = new VirtioBlkDevice(new MemoryBackend(8 << 20, false),
                new VirtioBlkSettings(2, 256, 512, "it", false));
        try (VhostUserServer server = VhostUserServer.start(sock, dev, true)) {
            BenchResult w = BenchRunner.run(opts(sock, BenchOptions.Pattern.RANDRW, 4096, 8, 2, 700, true), null);
            assertTrue(w.ok(), w.summary());
            assertTrue(w.writes() > 100 && w.reads() > 100, w.summary());
            assertTrue(w.verified() > 100, w.summary());
            long served = server.stats().stream().mapToLong(s -> s.requests()).sum();
            assertTrue(served >= w.ios(), "server counted " + served + " requests, bench " + w.ios());
            // the data stays: a second connection reads it back (reconnect)
            BenchResult r = BenchRunner.run(opts(sock, BenchOptions.Pattern.WRITE, 512, 4, 1, 300, true), null);
            assertTrue(r.ok(), r.summary());
            assertEquals(2, server.connections());
        }
    }

    /**
     * Packed rings end to end: our PackedDriverRing against the back-end's PackedVirtqueue on 2 queues, randrw with
     * verify. A 64-descriptor ring at depth 8 laps many times, so both wrap counters flip often.
     */
    @Test
    void packedRingsOnTwoQueuesVerify() {
        Path sock = dir.resolve("packed.sock");
        VirtioBlkDevice dev = new VirtioBlkDevice(new MemoryBackend(8 << 20, false),
                new VirtioBlkSettings(2, 256, 512, "it", true));
        try (VhostUserServer server = VhostUserServer.start(sock, dev, true)) {
            BenchResult w = BenchRunner.run(opts(sock, BenchOptions.Pattern.RANDRW, 4096, 8, 2, 700, true, true), null);
            assertTrue(w.ok(), w.summary());
            assertEquals(0, w.deviceFaults(), w.summary());
            assertTrue(w.writes() > 100 && w.reads() > 100, w.summary());
            assertTrue(w.verified() > 100, w.summary());
            assertTrue(w.toJson().contains("\"ring\":\"packed\""), w.toJson());
            assertTrue((server.negotiatedFeatures() & (1L << VirtioRing.F_RING_PACKED)) != 0,
                    "VIRTIO_F_RING_PACKED negotiated");
            assertTrue(w.ios() > 2L * 64 * 2, "rings lapped: " + w.summary());
            for (QueueStats s : server.stats()) {
                assertTrue(s.requests() > 0, "both queues served: " + server.stats());
                assertEquals(0, s.chainErrors(), "the back-end found no malformed chain: " + s);
            }
            // the same back-end then serves a split frontend: the ring layout is per connection
            BenchResult r = BenchRunner.run(opts(sock, BenchOptions.Pattern.WRITE, 512, 4, 1, 300, true), null);
            assertTrue(r.ok(), r.summary());
            assertTrue(r.toJson().contains("\"ring\":\"split\""), r.toJson());
            assertEquals(0, server.negotiatedFeatures() & (1L << VirtioRing.F_RING_PACKED), "split unless asked");
        }
    }

    @Test
    void nullDiskReadsAtQueueDepthOne() {
        Path sock = dir.resolve("null.sock");
        VirtioBlkDevice dev = new VirtioBlkDevice(new NullBackend(1L << 30, false),
                new VirtioBlkSettings(1, 256, 512, "it", false));
        try (VhostUserServer server = VhostUserServer.start(sock, dev, true)) {
            BenchResult r = BenchRunner.run(opts(sock, BenchOptions.Pattern.RANDREAD, 4096, 1, 1, 500, false), null);
            assertTrue(r.ok(), r.summary());
            assertTrue(r.ios() > 100, r.summary());
            assertTrue(r.p50() > 0 && r.p99() >= r.p50(), r.summary());
            System.out.println(r.summary());
            QueueStats s = server.stats().get(0);
            assertEquals(0, s.chainErrors());
        }
    }

    /**
     * Without verify every queue's job ranges over the whole device: a sequential read on a 16-block disk wraps on
     * each of 2 queues, so a job that offset its blocks by its queue index would ask for block 16 and get an I/O
     * error (it did, before the fix).
     */
    @Test
    void twoQueuesWithoutVerifyStayInsideTheDevice() {
        Path sock = dir.resolve("small.sock");
        VirtioBlkDevice dev = new VirtioBlkDevice(new NullBackend(16 * 4096, false),
                new VirtioBlkSettings(2, 256, 512, "it", false));
        try (VhostUserServer server = VhostUserServer.start(sock, dev, true)) {
            BenchResult r = BenchRunner.run(opts(sock, BenchOptions.Pattern.READ, 4096, 4, 2, 300, false), null);
            assertTrue(r.ios() > 2 * 16, "both jobs wrapped: " + r.summary());
            assertEquals(0, r.errors(), r.summary());
            assertTrue(r.ok(), r.summary());
            for (QueueStats s : server.stats()) {
                assertEquals(0, s.ioErrors(), "no request past the end: " + s);
            }
        }
    }
}
