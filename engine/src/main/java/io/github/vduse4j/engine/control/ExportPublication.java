package io.github.vduse4j.engine.control;

import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.TransportException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An export's presence in the run directory, whatever kind of export it is (a {@code BlockExport} over VDUSE or
 * vhost-user, the VDUSE-to-vhost-user bridge): {@code NAME/stats} (the pollers count straight into its records) and
 * {@code NAME/control} (the control socket: info, stats, resize, stop; docs/operations.md). {@code vduse4j list}
 * finds every export by these two files.
 */
public final class ExportPublication implements AutoCloseable {
    /** What the control socket's commands ask of the export. */
    public interface Commands {
        /**
         * The {@code info} reply.
         *
         * @return the fields {@link #info} builds
         */
        Map<String, Object> info();

        /**
         * The live per-queue counters, for {@code stats}.
         *
         * @return one entry per queue
         */
        List<QueueStats> stats();

        /**
         * {@code resize}: sets the size, or re-reads it when {@code bytes} is null.
         *
         * @param bytes the new size in bytes, or null
         * @return the new size in bytes
         * @throws IllegalArgumentException (or another RuntimeException) with the one-line reason for a refusal
         */
        long resize(Long bytes);
    }

    private final Path dir;
    private final StatsFile stats;
    private ControlServer control;

    private ExportPublication(Path dir, StatsFile stats) {
        this.dir = dir;
        this.stats = stats;
    }

    /**
     * Claims {@code root/name} and creates the stats file there, with one record per queue.
     *
     * @param root the run directory ({@link RunDirectory#defaultRoot()} unless told otherwise)
     * @param name the export's name ({@link RunDirectory#checkedName})
     * @param queueCount records in the stats file
     * @return the publication; make the export's pollers count into {@link #queues()}, then {@link #serve}
     * @throws TransportException when the directory is taken by a live export or the file cannot be made
     */
    public static ExportPublication create(Path root, String name, int queueCount) {
        Path dir;
        try {
            dir = RunDirectory.claim(root, name);
        } catch (IOException e) {
            throw new TransportException(e.getMessage(), e);
        }
        try {
            return new ExportPublication(dir, StatsFile.create(dir.resolve(RunDirectory.STATS), name, queueCount));
        } catch (IOException | RuntimeException e) {
            RunDirectory.remove(dir);
            throw new TransportException("cannot create the stats file in " + dir + ": " + e.getMessage()
                    + " (it must be a local filesystem that supports shared mmap, e.g. tmpfs: pass --run-dir DIR)", e);
        }
    }

    /**
     * The export's own directory.
     *
     * @return {@code root/name}
     */
    public Path dir() {
        return dir;
    }

    /**
     * The stats file's records, for the export's queue handlers to count into.
     *
     * @return one record per queue
     */
    public List<QueueStats> queues() {
        return stats.queues();
    }

    /**
     * Opens the control socket; {@code stop} runs {@code onStop} once it has been acknowledged.
     *
     * @param export what the commands act on
     * @param onStop what {@code stop} does
     * @throws TransportException when the socket cannot be made
     */
    public void serve(Commands export, Runnable onStop) {
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

    private static Map<String, Object> answer(Commands export, Map<String, Object> req) {
        String cmd = (String) req.get("command");
        return switch (cmd) {
            case "info" -> export.info();
            case "stats" -> StatsSnapshot.report(export.stats());
            case "resize" -> {
                Object size = req.get("size");
                if (size != null && !(size instanceof Long l && l > 0)) {
                    throw new IllegalArgumentException("\"size\" must be a positive number of bytes, got " + size);
                }
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("capacity", export.resize((Long) size));
                yield m;
            }
            case "stop" -> Map.of();
            default -> throw new IllegalArgumentException("unknown command '" + cmd
                    + "': use info, stats, resize or stop");
        };
    }

    /**
     * The {@code info} reply's fields, in the order {@code vduse4j list} shows them (docs/operations.md).
     *
     * @param name the export's name
     * @param transport {@code vduse} or {@code vhost-user}
     * @param device the block device, socket or {@code /dev/vduse/NAME}
     * @param backend what serves the data
     * @param capacity bytes
     * @param queues queue count
     * @param state {@code running}, {@code waiting} or {@code stopped}
     * @param metrics the metrics endpoint, or null
     * @return the fields, plus this process's pid
     */
    public static Map<String, Object> info(String name, String transport, String device, String backend,
            long capacity, int queues, String state, InetSocketAddress metrics) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", name);
        m.put("transport", transport);
        m.put("device", device);
        m.put("backend", backend);
        m.put("capacity", capacity);
        m.put("queues", queues);
        m.put("state", state);
        m.put("pid", ProcessHandle.current().pid());
        if (metrics != null) {
            m.put("metrics", metrics.getAddress().getHostAddress() + ":" + metrics.getPort());
        }
        return m;
    }

    /** Stops taking commands (the stats file stays until {@link #close()}). */
    public void closeControl() {
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
