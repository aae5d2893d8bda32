package io.github.vduse4j.engine.control;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Where exports publish themselves: {@code ROOT/NAME/control} (the control socket) and {@code ROOT/NAME/stats} (the
 * live stats file). ROOT is {@code /run/vduse4j} for root; the system property {@code vduse4j.run.dir} or the
 * environment variable {@code VDUSE4J_RUN_DIR} override it (tests, unprivileged users), and without root and either
 * of them it is {@code $XDG_RUNTIME_DIR/vduse4j} or {@code /tmp/vduse4j-UID}.
 */
public final class RunDirectory {
    public static final String CONTROL = "control";
    public static final String STATS = "stats";

    private RunDirectory() {}

    /** The run directory every command uses unless told otherwise. */
    public static Path defaultRoot() {
        String p = System.getProperty("vduse4j.run.dir");
        if (p == null || p.isEmpty()) {
            p = System.getenv("VDUSE4J_RUN_DIR");
        }
        if (p != null && !p.isEmpty()) {
            return Path.of(p);
        }
        Object uid = uid();
        if (Integer.valueOf(0).equals(uid)) {
            return Path.of("/run/vduse4j");
        }
        String xdg = System.getenv("XDG_RUNTIME_DIR");
        if (xdg != null && !xdg.isEmpty()) {
            return Path.of(xdg, "vduse4j");
        }
        return Path.of("/tmp", "vduse4j-" + uid);
    }

    private static Object uid() {
        try {
            return Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        } catch (IOException | UnsupportedOperationException e) {
            return System.getProperty("user.name");
        }
    }

    /** Export names are file names: letters, digits, '.', '_', '-', at most 63 characters, not starting with '.'. */
    public static String checkedName(String name) {
        if (name == null || !name.matches("[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}")) {
            throw new IllegalArgumentException("bad export name '" + name + "': use up to 63 letters, digits, '.', '_'"
                    + " or '-' (not starting with '.')");
        }
        return name;
    }

    /**
     * Creates {@code root/name} for a new export, owner-only until the caller has bound its socket. A directory left by
     * a dead export (its control socket answers nobody) is taken over; a live one, or one whose export is still
     * starting ({@link #isStarting}), is an error.
     */
    public static Path claim(Path root, String name) throws IOException {
        checkedName(name);
        Files.createDirectories(root);
        Path dir = root.resolve(name);
        try {
            Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            return dir;
        } catch (FileAlreadyExistsException e) {
            Path sock = dir.resolve(CONTROL);
            if (Files.exists(sock)) {
                try {
                    ControlClient.request(sock, Map.of("command", "info"), Duration.ofSeconds(2));
                    throw new IOException("an export named '" + name + "' is already running (" + dir
                            + "): choose another --name or stop it (vduse4j stop " + name + ")");
                } catch (ControlClient.Unreachable u) {
                    if (!u.stale()) {
                        throw new IOException("an export named '" + name + "' exists but does not answer (" + dir
                                + "): choose another --name, or stop its process", u);
                    }
                }
            } else if (isStarting(dir)) {
                throw new IOException("an export named '" + name + "' is starting (" + dir + "): choose another"
                        + " --name or stop it (vduse4j stop " + name + ")");
            }
            remove(dir); // left behind by a dead export
            if (Files.isDirectory(dir)) { // it holds files that are not ours (the VDUSE reconnect log): keep them
                Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
            } else {
                Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            }
            return dir;
        }
    }

    /**
     * Whether the export in {@code dir} is between claiming its name and serving its control socket: no socket yet,
     * but a stats file not marked final whose process is alive.
     */
    public static boolean isStarting(Path dir) {
        if (Files.exists(dir.resolve(CONTROL))) {
            return false;
        }
        try (StatsFile f = StatsFile.open(dir.resolve(STATS))) {
            return !f.isClosed() && ProcessHandle.of(f.pid()).map(ProcessHandle::isAlive).orElse(false);
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** Lets other users read the stats file (the control socket itself stays 0600). */
    public static void open(Path dir) throws IOException {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    /**
     * Deletes an export's control socket and stats file, and its directory if nothing else is left in it (another
     * file there, such as the VDUSE reconnect log, belongs to someone else and outlives the process on purpose).
     */
    public static void remove(Path dir) {
        try {
            Files.deleteIfExists(dir.resolve(CONTROL));
            Files.deleteIfExists(dir.resolve(STATS));
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            // nothing to remove, not ours, or not empty
        }
    }

    /** The directory of every export published under {@code root}, sorted by name. */
    public static List<Path> exports(Path root) throws IOException {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(root)) {
            return out;
        }
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(root, Files::isDirectory)) {
            ds.forEach(out::add);
        }
        out.sort(null);
        return out;
    }
}
