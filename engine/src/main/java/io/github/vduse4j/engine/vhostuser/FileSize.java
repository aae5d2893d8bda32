package io.github.vduse4j.engine.vhostuser;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Size of the regular file (or memfd) behind a file descriptor, through {@code /proc/self/fd}. */
final class FileSize {
    private FileSize() {}

    /** Bytes, or -1 if unknown (not a regular file, or /proc is unavailable). */
    static long of(int fd) {
        try {
            Path p = Path.of("/proc/self/fd/" + fd);
            return Files.isRegularFile(p) ? Files.size(p) : -1;
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }
}
