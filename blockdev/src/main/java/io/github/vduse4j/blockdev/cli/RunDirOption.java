package io.github.vduse4j.blockdev.cli;

import io.github.vduse4j.engine.control.ControlClient;
import io.github.vduse4j.engine.control.RunDirectory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import picocli.CommandLine.Option;

/** {@code --run-dir}: where exports publish their control socket and stats file, and how commands find them. */
final class RunDirOption {
    @Option(names = "--run-dir", paramLabel = "DIR",
            description = "where exports publish NAME/control and NAME/stats (default: /run/vduse4j as root;"
                    + " VDUSE4J_RUN_DIR overrides)")
    Path runDir;

    Path root() {
        return runDir != null ? runDir : RunDirectory.defaultRoot();
    }

    /** The directory of export {@code name}, which must exist. */
    Path exportDir(String name) {
        RunDirectory.checkedName(name);
        Path dir = root().resolve(name);
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("no export named '" + name + "' (in " + root() + "): see vduse4j list");
        }
        return dir;
    }

    /** Sends one command to export {@code name} and returns its successful reply. */
    Map<String, Object> command(String name, Map<String, Object> request) throws IOException {
        Path dir = exportDir(name);
        Map<String, Object> reply;
        try {
            reply = ControlClient.request(dir.resolve(RunDirectory.CONTROL), request, Duration.ofSeconds(10));
        } catch (ControlClient.Unreachable e) {
            throw new IOException("export '" + name + "' " + (e.stale() ? "is not running any more (stale " + dir
                    + "; it is cleaned up when an export of that name starts)" : "does not answer: " + e.getMessage()));
        }
        if (!Boolean.TRUE.equals(reply.get("ok"))) {
            throw new IOException("export '" + name + "': " + reply.get("error"));
        }
        return reply;
    }
}
