package io.github.vduse4j.blockdev.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.blockdev.bench.BenchOptions;
import io.github.vduse4j.blockdev.bench.BenchResult;
import io.github.vduse4j.blockdev.bench.BenchRunner;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.control.ControlClient;
import io.github.vduse4j.engine.control.Json;
import io.github.vduse4j.engine.control.StatsFile;
import io.github.vduse4j.engine.control.StatsLayout;
import io.github.vduse4j.engine.control.StatsSnapshot;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.StandardProtocolFamily;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The operator's commands against a real export: {@code vduse4j export} (vhost-user, in this JVM) driven by the
 * project's own frontend ({@code vduse4j bench}) over a real socket, with {@code list}, {@code stats},
 * {@code resize}, {@code stop}, the shared-memory stats file read while I/O runs, and the metrics endpoint scraped and
 * parsed by the Prometheus client's own text-format parser.
 */
class OperationsIntegrationTest {
    @TempDir
    Path dir;

    /** Threads of their own: the export blocks until stopped (the common pool may have a single worker). */
    private final java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newCachedThreadPool();

    /** Exit code and standard output of one CLI command (errors go to {@code err}). */
    record Run(int code, String out, String err) {}

    private static synchronized Run cli(String... args) {
        PrintStream saved = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        StringWriter err = new StringWriter();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        try {
            int code = Main.execute(new PrintWriter(err, true), args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString());
        } finally {
            System.setOut(saved);
        }
    }

    @Test
    void listStatsMetricsResizeStopAgainstARunningExport() throws Exception {
        Path run = dir.resolve("run");
        Path sock = dir.resolve("disk1.sock");
        String rd = "--run-dir=" + run;
        CompletableFuture<Integer> export = CompletableFuture.supplyAsync(() -> Main.execute("export", "--memory", "16M",
                "--transport", "vhost-user", "--socket", sock.toString(), "--queues", "2", rd, "--metrics", "0"), threads);
        Path control = run.resolve("disk1/control");
        for (int i = 0; i < 200 && !Files.exists(control); i++) {
            assertFalse(export.isDone(), "export exited early: " + (export.isDone() ? export.get() : ""));
            Thread.sleep(50);
        }
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(control)));

        // a dead export's stale socket next to it: reported, not a hang
        Files.createDirectories(run.resolve("dead"));
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(run.resolve("dead/control")));
        }

        Run list = cli("list", rd);
        assertEquals(0, list.code(), list.err());
        String row = list.out().lines().filter(l -> l.startsWith("disk1 ")).findFirst().orElseThrow(() -> new AssertionError(list.out()));
        assertTrue(row.contains("vhost-user") && row.contains(sock.toString()) && row.contains("memory"), row);
        assertTrue(row.endsWith("waiting"), "no frontend yet: " + row);
        String dead = list.out().lines().filter(l -> l.startsWith("dead ")).findFirst().orElseThrow(() -> new AssertionError(list.out()));
        assertTrue(dead.contains("stale control socket"), dead);

        // I/O on both queues while a reader attached to the stats file watches
        try (StatsFile reader = StatsFile.open(run.resolve("disk1/stats"))) {
            assertEquals("disk1", reader.name());
            assertEquals(2, reader.queues().size());
            CompletableFuture<BenchResult> bench = CompletableFuture.supplyAsync(() -> BenchRunner.run(
                    new BenchOptions(sock, BenchOptions.Pattern.RANDRW, 4096, 8, 2, Duration.ofMillis(1500), true,
                            0, 50, 0, 7, false), null), threads);
            List<Long> seen = new ArrayList<>();
            long last = 0;
            while (!bench.isDone()) {
                StatsSnapshot s = StatsSnapshot.sum(reader.queues());
                assertTrue(s.requests() >= last, "totals never go back");
                assertTrue(s.inflight() <= 2 * 8, "at most the frontend's depth in flight: " + s.inflight());
                last = s.requests();
                seen.add(last);
                Thread.sleep(100);
            }
            BenchResult r = bench.get(30, TimeUnit.SECONDS);
            assertTrue(r.ok(), r.summary());
            assertTrue(seen.stream().anyMatch(v -> v > 0 && v < r.ios()), "the reader saw counts while I/O ran: " + seen);
            StatsSnapshot end = StatsSnapshot.sum(reader.queues());
            assertEquals(0, end.inflight());
            // every request the frontend sent: its reads and writes, plus the reads of its final verify pass
            long reads = end.get(StatsLayout.OP_FIRST + StatsLayout.OP_READ);
            long writes = end.get(StatsLayout.OP_FIRST + StatsLayout.OP_WRITE);
            assertEquals(r.writes(), writes, "writes");
            assertTrue(reads >= r.reads() && reads <= r.reads() + r.verified(), reads + " reads, bench " + r.summary());
            assertEquals(reads + writes, end.requests(), "nothing but reads and writes");
            assertEquals(r.writes() * 4096, end.get(StatsLayout.WRITTEN_BYTES));
            assertEquals(reads * 4096, end.get(StatsLayout.READ_BYTES));
            assertTrue(seen.stream().allMatch(v -> v <= end.requests()));
            for (QueueStats q : reader.queues()) {
                assertTrue(q.requests() > 0, "both queues served");
            }
            long p50 = end.percentile(0.5);
            long p99 = end.percentile(0.99);
            assertTrue(p50 > 0 && p99 >= p50, p50 + " " + p99);

            // vduse4j stats --json: the same totals
            Run stats = cli("stats", "disk1", "--json", rd);
            assertEquals(0, stats.code(), stats.err());
            @SuppressWarnings("unchecked")
            Map<String, Object> js = (Map<String, Object>) Json.parse(stats.out().strip());
            @SuppressWarnings("unchecked")
            Map<String, Object> total = (Map<String, Object>) js.get("total");
            assertEquals(end.requests(), total.get("requests"));
            assertEquals(2, ((List<?>) js.get("queues")).size());
            // the control socket's own stats command: the same totals, per queue too
            Map<String, Object> byControl = ControlClient.request(control, Map.of("command", "stats"), Duration.ofSeconds(5));
            @SuppressWarnings("unchecked")
            Map<String, Object> controlTotal = (Map<String, Object>) byControl.get("total");
            assertEquals(end.requests(), controlTotal.get("requests"), byControl.toString());
            assertEquals(2, ((List<?>) byControl.get("queues")).size());
            Run table = cli("stats", "disk1", "--watch", "0.2", "--count", "2", rd);
            assertEquals(0, table.code(), table.err());
            assertEquals(2, table.out().lines().filter(l -> l.startsWith("total")).count(), table.out());

            // the metrics endpoint, parsed by the Prometheus client's text-format parser
            Map<String, Object> info = ControlClient.request(control, Map.of("command", "info"), Duration.ofSeconds(5));
            String text = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("http://" + info.get("metrics") + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            List<Map<String, Object>> samples = promParse(text);
            assertEquals(reads, sum(samples, "vduse4j_requests_total", "op", "read"));
            assertEquals(r.writes(), sum(samples, "vduse4j_requests_total", "op", "write"));
            assertEquals(r.writes() * 4096, sum(samples, "vduse4j_written_bytes_total", null, null));
            assertEquals(end.requests(), sum(samples, "vduse4j_request_latency_seconds_count", null, null));
            assertEquals(end.requests(), samples.stream().filter(s -> s.get("name").equals("vduse4j_request_latency_seconds_bucket")
                    && "+Inf".equals(((Map<?, ?>) s.get("labels")).get("le"))).mapToDouble(s -> ((Number) s.get("value")).doubleValue()).sum());
            assertEquals("histogram", samples.stream().filter(s -> s.get("family").equals("vduse4j_request_latency_seconds"))
                    .findFirst().orElseThrow().get("type"));
        }

        // resize: to a size, then bad input
        Run shrink = cli("resize", "disk1", "8M", rd);
        assertEquals(0, shrink.code(), shrink.err());
        assertEquals("disk1: 8388608 bytes", shrink.out().strip());
        assertEquals(8388608L, ControlClient.request(control, Map.of("command", "info"), Duration.ofSeconds(5)).get("capacity"));
        Run grow = cli("resize", "disk1", "1G", rd);
        assertEquals(1, grow.code());
        assertEquals(1, grow.err().lines().count(), grow.err());
        assertTrue(grow.err().contains("grows only up to"), grow.err());
        Run bad = cli("resize", "disk1", "12Q", rd);
        assertEquals(2, bad.code());
        assertEquals(1, bad.err().lines().count(), bad.err());
        Run none = cli("stats", "nosuch", rd);
        assertEquals(1, none.code());
        assertTrue(none.err().contains("no export named 'nosuch'"), none.err());
        Run deadStats = cli("stop", "dead", rd);
        assertEquals(1, deadStats.code());
        assertTrue(deadStats.err().contains("not running any more"), deadStats.err());

        // the protocol refuses nonsense with a one-line error and keeps serving
        Map<String, Object> unknown = ControlClient.request(control, Map.of("command", "explode"), Duration.ofSeconds(5));
        assertEquals(false, unknown.get("ok"));

        Run stop = cli("stop", "disk1", rd);
        assertEquals(0, stop.code(), stop.err());
        assertEquals(0, export.get(30, TimeUnit.SECONDS), "export exits 0 after stop");
        assertFalse(Files.exists(run.resolve("disk1")), "its run directory is gone");
        assertFalse(Files.exists(sock), "its vhost-user socket is gone");
    }

    /** {@code vduse4j resize NAME} without a size re-reads a file export's file (as SIGHUP does). */
    @Test
    void resizeWithoutASizeRereadsTheFile() throws Exception {
        Path run = dir.resolve("run");
        String rd = "--run-dir=" + run;
        Path img = dir.resolve("grow.img");
        try (var f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(4 << 20);
        }
        CompletableFuture<Integer> export = CompletableFuture.supplyAsync(() -> Main.execute("export", "--file",
                img.toString(), "--transport", "vhost-user", "--socket", dir.resolve("grow.sock").toString(), rd), threads);
        Path control = run.resolve("grow/control");
        for (int i = 0; i < 200 && !Files.exists(control); i++) {
            assertFalse(export.isDone(), "export exited early: " + (export.isDone() ? export.get() : ""));
            Thread.sleep(50);
        }
        assertEquals(4L << 20, ControlClient.request(control, Map.of("command", "info"), Duration.ofSeconds(5)).get("capacity"));
        try (var f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(12 << 20);
        }
        Run grown = cli("resize", "grow", rd);
        assertEquals(0, grown.code(), grown.err());
        assertEquals(12L << 20, ControlClient.request(control, Map.of("command", "info"), Duration.ofSeconds(5)).get("capacity"));
        Run sized = cli("resize", "grow", "8M", rd);
        assertEquals(1, sized.code(), "a file export takes its size from the file");
        assertEquals(1, sized.err().lines().count(), sized.err());
        assertEquals(0, cli("stop", "grow", rd).code());
        assertEquals(0, export.get(30, TimeUnit.SECONDS));
    }

    @Test
    void aSecondExportOfTheSameNameIsRefusedAndLeavesTheFirstRunning() throws Exception {
        Path run = dir.resolve("run");
        String rd = "--run-dir=" + run;
        CompletableFuture<Integer> first = CompletableFuture.supplyAsync(() -> Main.execute("export", "--null", "1G",
                "--transport", "vhost-user", "--socket", dir.resolve("a.sock").toString(), "--name", "same", rd), threads);
        for (int i = 0; i < 200 && !Files.exists(run.resolve("same/control")); i++) {
            Thread.sleep(50);
        }
        StringWriter err = new StringWriter();
        int code = Main.execute(new PrintWriter(err, true), "export", "--null", "1G", "--transport", "vhost-user",
                "--socket", dir.resolve("b.sock").toString(), "--name", "same", rd);
        assertEquals(1, code);
        assertTrue(err.toString().contains("already running"), err.toString());
        assertFalse(Files.exists(dir.resolve("b.sock")), "nothing left of the refused export");
        assertEquals(0, cli("stop", "same", rd).code());
        assertEquals(0, first.get(30, TimeUnit.SECONDS));
    }

    private static double sum(List<Map<String, Object>> samples, String name, String label, String value) {
        return samples.stream().filter(s -> s.get("name").equals(name))
                .filter(s -> label == null || value.equals(((Map<?, ?>) s.get("labels")).get(label)))
                .mapToDouble(s -> ((Number) s.get("value")).doubleValue()).sum();
    }

    /** Runs scripts/lib/prom-parse.py (prometheus_client's parser) over {@code text}. */
    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> promParse(String text) throws Exception {
        Path script = Path.of("..", "scripts", "lib", "prom-parse.py").toAbsolutePath().normalize();
        Process p = new ProcessBuilder("/usr/bin/python3", script.toString()).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try (var in = p.getOutputStream()) {
            in.write(text.getBytes(StandardCharsets.UTF_8));
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), "the Prometheus parser accepted the exposition (python3-prometheus-client)");
        List<Map<String, Object>> samples = new ArrayList<>();
        out.lines().forEach(l -> samples.add((Map<String, Object>) Json.parse(l)));
        assertFalse(samples.isEmpty());
        return samples;
    }
}
