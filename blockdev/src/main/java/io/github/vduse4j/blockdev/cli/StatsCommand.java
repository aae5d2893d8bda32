package io.github.vduse4j.blockdev.cli;

import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.control.Json;
import io.github.vduse4j.engine.control.RunDirectory;
import io.github.vduse4j.engine.control.StatsFile;
import io.github.vduse4j.engine.control.StatsLayout;
import io.github.vduse4j.engine.control.StatsSnapshot;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code vduse4j stats NAME}: reads the export's shared-memory stats file (never asks the export), once or every
 * {@code --watch} seconds: IOPS, MB/s, in flight and latency percentiles per queue and in total.
 */
@Command(name = "stats", mixinStandardHelpOptions = true,
        description = "Show a running export's per-queue counters and latency percentiles (read from its stats file).")
final class StatsCommand implements Callable<Integer> {
    @Mixin
    RunDirOption run;

    @Parameters(index = "0", paramLabel = "NAME", description = "the export")
    String name;

    @Option(names = "--json", description = "one JSON object per report (counters since start, latency in ns)")
    boolean json;

    @Option(names = "--watch", paramLabel = "SECONDS", description = "refresh every SECONDS with the rates of that interval")
    Double watch;

    @Option(names = "--count", paramLabel = "N", description = "with --watch: stop after N reports")
    Integer count;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (watch != null && (watch <= 0 || watch > 3600)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--watch must be 0..3600 seconds, got " + watch);
        }
        if (count != null && count < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--count must be at least 1, got " + count);
        }
        PrintStream out = System.out;
        try (StatsFile f = StatsFile.open(run.exportDir(name).resolve(RunDirectory.STATS))) {
            List<QueueStats> queues = f.queues();
            if (watch == null) {
                if (json) {
                    out.println(Json.write(report(f)));
                } else {
                    List<StatsSnapshot> now = snapshots(queues);
                    double seconds = Math.max(1e-3, (System.currentTimeMillis() - f.startMillis()) / 1000.0);
                    print(out, f, now, seconds, "since start");
                }
                return 0;
            }
            boolean tty = System.console() != null && !json;
            List<StatsSnapshot> before = snapshots(queues);
            for (int n = 0; count == null || n < count; n++) {
                Thread.sleep((long) (watch * 1000));
                List<StatsSnapshot> now = snapshots(queues);
                if (json) {
                    out.println(Json.write(report(f)));
                } else {
                    List<StatsSnapshot> delta = new ArrayList<>();
                    for (int i = 0; i < now.size(); i++) {
                        delta.add(now.get(i).minus(before.get(i)));
                    }
                    if (tty) {
                        out.print("\033[H\033[2J");
                    }
                    double seconds = (now.getLast().nanoTime() - before.getLast().nanoTime()) / 1e9;
                    print(out, f, delta, seconds, "last " + watch + " s");
                }
                out.flush();
                before = now;
                if (f.isClosed()) {
                    out.println(name + ": the export stopped");
                    return 0;
                }
            }
            return 0;
        }
    }

    private static Map<String, Object> report(StatsFile f) {
        Map<String, Object> m = StatsSnapshot.report(f.queues());
        m.put("name", f.name());
        m.put("pid", f.pid());
        m.put("stopped", f.isClosed());
        return m;
    }

    /** One snapshot per queue, then their total last. */
    private static List<StatsSnapshot> snapshots(List<QueueStats> queues) {
        List<StatsSnapshot> s = new ArrayList<>();
        for (QueueStats q : queues) {
            s.add(StatsSnapshot.of(q));
        }
        s.add(StatsSnapshot.sum(queues));
        return s;
    }

    private static void print(PrintStream out, StatsFile f, List<StatsSnapshot> rows, double seconds, String span) {
        out.printf("%s (pid %d), %s%s%n", f.name(), f.pid(), span, f.isClosed() ? ", stopped" : "");
        String fmt = "%-6s %10s %9s %9s %8s %10s %10s %10s %8s%n";
        out.printf(fmt, "QUEUE", "IOPS", "RD MB/s", "WR MB/s", "INFLIGHT", "P50 us", "P99 us", "P99.9 us", "ERRORS");
        for (int i = 0; i < rows.size(); i++) {
            StatsSnapshot s = rows.get(i);
            long errors = 0;
            for (int e = 0; e < StatsLayout.ERRORS; e++) {
                errors += s.get(StatsLayout.ERR_FIRST + e);
            }
            out.printf(fmt, i == rows.size() - 1 ? "total" : Integer.toString(i),
                    String.format("%.0f", s.requests() / seconds),
                    String.format("%.1f", s.get(StatsLayout.READ_BYTES) / seconds / 1e6),
                    String.format("%.1f", s.get(StatsLayout.WRITTEN_BYTES) / seconds / 1e6),
                    s.inflight(), micros(s.percentile(0.5)), micros(s.percentile(0.99)), micros(s.percentile(0.999)),
                    errors);
        }
    }

    private static String micros(long nanos) {
        return String.format("%.1f", nanos / 1000.0);
    }
}
