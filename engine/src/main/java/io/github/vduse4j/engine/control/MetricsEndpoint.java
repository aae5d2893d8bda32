package io.github.vduse4j.engine.control;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.github.vduse4j.engine.QueueStats;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/**
 * Serves an export's counters in the Prometheus text exposition format (version 0.0.4) at {@code /metrics}, on the
 * JDK's own HTTP server (module {@code jdk.httpserver}) with one thread of its own. A scrape reads the stats records
 * the pollers write (plain loads, no lock), so it never slows or blocks the datapath.
 */
public final class MetricsEndpoint implements AutoCloseable {
    /** Upper bounds (seconds) of the exported latency histogram; the stats file's finer buckets are summed into them. */
    static final double[] LE = {1e-6, 2e-6, 5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3,
        20e-3, 50e-3, 100e-3, 200e-3, 500e-3, 1, 2, 5, 10, 30};

    private final HttpServer server;
    private final ExecutorService executor;

    private MetricsEndpoint(HttpServer server, ExecutorService executor) {
        this.server = server;
        this.executor = executor;
    }

    /**
     * Listens on {@code address} (port 0: any free port) and serves {@code stats} of export {@code name}.
     *
     * @throws IllegalArgumentException with the one-line reason (and what to do) when it cannot listen there
     */
    public static MetricsEndpoint start(InetSocketAddress address, String name, Supplier<List<QueueStats>> stats) {
        HttpServer s;
        try {
            s = HttpServer.create(address, 8);
        } catch (IOException e) {
            throw new IllegalArgumentException("metrics: cannot listen on " + address + " (" + e.getMessage()
                    + "): pick another address or port", e);
        }
        ExecutorService ex = Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().daemon(true)
                .name("vduse4j-metrics").unstarted(r));
        s.setExecutor(ex);
        s.createContext("/metrics", x -> serve(x, name, stats));
        s.createContext("/", x -> {
            x.sendResponseHeaders(404, -1);
            x.close();
        });
        s.start();
        return new MetricsEndpoint(s, ex);
    }

    /** Where it listens (the real port when started on port 0). */
    public InetSocketAddress address() {
        return server.getAddress();
    }

    private static void serve(HttpExchange x, String name, Supplier<List<QueueStats>> stats) throws IOException {
        try (x) {
            if (!"GET".equals(x.getRequestMethod()) && !"HEAD".equals(x.getRequestMethod())) {
                x.sendResponseHeaders(405, -1);
                return;
            }
            byte[] body = render(name, stats.get()).getBytes(StandardCharsets.UTF_8);
            x.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
            x.sendResponseHeaders(200, "HEAD".equals(x.getRequestMethod()) ? -1 : body.length);
            if (!"HEAD".equals(x.getRequestMethod())) {
                try (OutputStream o = x.getResponseBody()) {
                    o.write(body);
                }
            }
        }
    }

    /** The exposition text for {@code queues} of export {@code name}. */
    public static String render(String name, List<QueueStats> queues) {
        StringBuilder b = new StringBuilder(8192);
        String export = "export=\"" + escape(name) + "\"";
        List<StatsSnapshot> snaps = queues.stream().map(StatsSnapshot::of).toList();

        family(b, "vduse4j_requests_total", "counter", "Requests completed, by operation.");
        for (int q = 0; q < snaps.size(); q++) {
            for (int op = 0; op < StatsLayout.OPS; op++) {
                sample(b, "vduse4j_requests_total", export + ",queue=\"" + q + "\",op=\"" + StatsLayout.OP_NAMES.get(op)
                        + "\"", snaps.get(q).get(StatsLayout.OP_FIRST + op));
            }
        }
        family(b, "vduse4j_read_bytes_total", "counter", "Bytes read by requests that succeeded.");
        perQueue(b, "vduse4j_read_bytes_total", export, snaps, StatsLayout.READ_BYTES);
        family(b, "vduse4j_written_bytes_total", "counter", "Bytes written by requests that succeeded.");
        perQueue(b, "vduse4j_written_bytes_total", export, snaps, StatsLayout.WRITTEN_BYTES);
        family(b, "vduse4j_errors_total", "counter", "Failed requests and malformed chains, by kind.");
        for (int q = 0; q < snaps.size(); q++) {
            for (int e = 0; e < StatsLayout.ERRORS; e++) {
                sample(b, "vduse4j_errors_total", export + ",queue=\"" + q + "\",kind=\""
                        + StatsLayout.ERROR_NAMES.get(e) + "\"", snaps.get(q).get(StatsLayout.ERR_FIRST + e));
            }
        }
        family(b, "vduse4j_inflight_requests", "gauge", "Requests taken from the ring and not yet completed.");
        for (int q = 0; q < snaps.size(); q++) {
            sample(b, "vduse4j_inflight_requests", export + ",queue=\"" + q + "\"", snaps.get(q).inflight());
        }
        family(b, "vduse4j_kicks_total", "counter", "Wake-ups of the queue thread by a driver kick.");
        perQueue(b, "vduse4j_kicks_total", export, snaps, StatsLayout.KICKS);
        family(b, "vduse4j_notifications_total", "counter", "Interrupts (used-buffer notifications) sent to the driver.");
        perQueue(b, "vduse4j_notifications_total", export, snaps, StatsLayout.NOTIFICATIONS);

        family(b, "vduse4j_request_latency_seconds", "histogram", "Request latency from pop to completion.");
        for (int q = 0; q < snaps.size(); q++) {
            StatsSnapshot s = snaps.get(q);
            String labels = export + ",queue=\"" + q + "\"";
            long total = s.latencyCount();
            int bucket = 0;
            long cumulative = 0;
            for (double le : LE) {
                long limit = (long) (le * 1e9);
                while (bucket < StatsLayout.HISTOGRAM_BUCKETS && StatsLayout.bucketUpperBound(bucket) <= limit) {
                    cumulative += s.bucket(bucket++);
                }
                b.append("vduse4j_request_latency_seconds_bucket{").append(labels).append(",le=\"").append(le)
                        .append("\"} ").append(cumulative).append('\n');
            }
            b.append("vduse4j_request_latency_seconds_bucket{").append(labels).append(",le=\"+Inf\"} ").append(total)
                    .append('\n');
            b.append("vduse4j_request_latency_seconds_sum{").append(labels).append("} ")
                    .append(s.get(StatsLayout.LATENCY_SUM) / 1e9).append('\n');
            b.append("vduse4j_request_latency_seconds_count{").append(labels).append("} ").append(total).append('\n');
        }
        return b.toString();
    }

    private static void perQueue(StringBuilder b, String metric, String export, List<StatsSnapshot> snaps, int slot) {
        for (int q = 0; q < snaps.size(); q++) {
            sample(b, metric, export + ",queue=\"" + q + "\"", snaps.get(q).get(slot));
        }
    }

    private static void family(StringBuilder b, String name, String type, String help) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }

    private static void sample(StringBuilder b, String name, String labels, long value) {
        b.append(name).append('{').append(labels).append("} ").append(value).append('\n');
    }

    private static String escape(String v) {
        return v.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
