package io.github.vduse4j.blockdev;

import io.github.vduse4j.blockdev.virtio.VirtioBlkDevice;
import io.github.vduse4j.engine.TransportException;
import io.github.vduse4j.engine.control.ControlServer;
import io.github.vduse4j.engine.control.RunDirectory;
import io.github.vduse4j.engine.control.StatsFile;
import io.github.vduse4j.engine.control.StatsSnapshot;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An export's presence in the run directory: {@code NAME/stats} (the pollers count straight into it) and
 * {@code NAME/control} (the control socket: info, stats, resize, stop; docs/operations.md).
 */
final class Publication implements AutoCloseable {
    private final Path dir;
    private final StatsFile stats;
    private ControlServer control;

    private Publication(Path dir, StatsFile stats) {
        this.dir = dir;
        this.stats = stats;
    }

    /** Claims {@code root/name} and makes {@code device} count into a new stats file there. */
    static Publication create(Path root, String name, VirtioBlkDevice device) {
        Path dir;
        try {
            dir = RunDirectory.claim(root, name);
        } catch (IOException e) {
            throw new TransportException(e.getMessage(), e);
        }
        try {
            StatsFile f = StatsFile.create(dir.resolve(RunDirectory.STATS), name, device.queueCount());
            device.countInto(f.queues());
            return new Publication(dir, f);
        } catch (IOException | RuntimeException e) {
            RunDirectory.remove(dir);
            throw new TransportException("cannot create the stats file in " + dir + ": " + e.getMessage()
                    + " (it must be a local filesystem that supports shared mmap, e.g. tmpfs: pass --run-dir DIR)", e);
        }
    }

    Path dir() {
        return dir;
    }

    /** Opens the control socket for {@code export}; {@code stop} runs {@code onStop} once acknowledged. */
    void serve(BlockExport export, Runnable onStop) {
        try {
            control = ControlServer.start(dir.resolve(RunDirectory.CONTROL), req -> answer(export, req), req -> {
                if ("stop".equals(req.get("command"))) {
                    onStop.run();
                }
            });
            RunDirectory.open(dir);
        } catch (IOException e) {
            throw new TransportException("cannot open the control socket in " + dir + ": " + e.getMessage(), e);
        }
    }

    private static Map<String, Object> answer(BlockExport export, Map<String, Object> req) {
        String cmd = (String) req.get("command");
        return switch (cmd) {
            case "info" -> info(export);
            case "stats" -> StatsSnapshot.report(export.stats());
            case "resize" -> {
                Object size = req.get("size");
                long bytes;
                if (size == null) {
                    bytes = export.resize();
                } else if (size instanceof Long l && l > 0) {
                    bytes = export.resize(l);
                } else {
                    throw new IllegalArgumentException("\"size\" must be a positive number of bytes, got " + size);
                }
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("capacity", bytes);
                yield m;
            }
            case "stop" -> Map.of();
            default -> throw new IllegalArgumentException("unknown command '" + cmd
                    + "': use info, stats, resize or stop");
        };
    }

    static Map<String, Object> info(BlockExport export) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", export.name());
        m.put("transport", export.transport() == BlockExport.Transport.VDUSE ? "vduse" : "vhost-user");
        m.put("device", export.blockDevice().map(Path::toString)
                .orElse(export.socket().map(Path::toString).orElse("/dev/vduse/" + export.name())));
        m.put("backend", export.backendDescription());
        m.put("capacity", export.capacity());
        m.put("queues", export.queueCount());
        m.put("state", export.state());
        m.put("pid", ProcessHandle.current().pid());
        export.metricsAddress().ifPresent(a -> m.put("metrics", a.getAddress().getHostAddress() + ":" + a.getPort()));
        return m;
    }

    /** Stops taking commands (the stats file stays until {@link #close()}). */
    void closeControl() {
        if (control != null) {
            control.close();
        }
    }

    /** Marks the stats final, unmaps them and removes the directory; after the pollers stopped. */
    @Override
    public void close() {
        closeControl();
        stats.close();
        RunDirectory.remove(dir);
    }
}
