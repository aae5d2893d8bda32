package io.github.vduse4j.blockdev.cli;

import io.github.vduse4j.engine.control.ControlClient;
import io.github.vduse4j.engine.control.Json;
import io.github.vduse4j.engine.control.RunDirectory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code vduse4j list}: every export on the host, asked over its control socket; dead ones are reported as such. */
@Command(name = "list", mixinStandardHelpOptions = true, description = "List the exports running on this host.")
final class ListCommand implements Callable<Integer> {
    @Mixin
    RunDirOption run;

    @Option(names = "--json", description = "one JSON array of the exports' info objects")
    boolean json;

    @Override
    public Integer call() throws Exception {
        List<Map<String, Object>> rows = new ArrayList<>();
        for (Path dir : RunDirectory.exports(run.root())) {
            rows.add(describe(dir));
        }
        if (json) {
            System.out.println(Json.write(rows));
            return 0;
        }
        String fmt = "%-16s %-10s %-24s %-28s %6s  %s%n";
        System.out.printf(fmt, "NAME", "TRANSPORT", "DEVICE", "BACKEND", "QUEUES", "STATE");
        for (Map<String, Object> r : rows) {
            System.out.printf(fmt, r.get("name"), r.getOrDefault("transport", "-"), r.getOrDefault("device", "-"),
                    r.getOrDefault("backend", "-"), r.getOrDefault("queues", "-"), r.get("state"));
        }
        return 0;
    }

    /** The export's info, or a row that says why it has none. */
    static Map<String, Object> describe(Path dir) {
        Path sock = dir.resolve(RunDirectory.CONTROL);
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("name", dir.getFileName().toString());
        if (!Files.exists(sock)) {
            row.put("state", RunDirectory.isStarting(dir) ? "starting" : "dead (no control socket; stale " + dir + ")");
            return row;
        }
        try {
            Map<String, Object> r = ControlClient.request(sock, Map.of("command", "info"), Duration.ofSeconds(2));
            if (!Boolean.TRUE.equals(r.get("ok"))) {
                row.put("state", "error: " + r.get("error"));
                return row;
            }
            r.remove("ok");
            return r;
        } catch (ControlClient.Unreachable e) {
            row.put("state", e.stale() ? "dead (stale control socket " + sock + ")" : "not answering");
        } catch (Exception e) {
            row.put("state", "error: " + Main.oneLine(e));
        }
        return row;
    }
}
