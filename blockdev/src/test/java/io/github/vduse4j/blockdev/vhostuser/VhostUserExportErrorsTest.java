package io.github.vduse4j.blockdev.vhostuser;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.UnixSocket;
import io.github.vduse4j.blockdev.backend.NullBackend;
import io.github.vduse4j.blockdev.cli.CliRun;
import io.github.vduse4j.blockdev.virtio.VirtioBlkDevice;
import io.github.vduse4j.blockdev.virtio.VirtioBlkSettings;
import io.github.vduse4j.engine.vhostuser.VhostUserServer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vduse4j export --transport vhost-user} with bad input: one line, a non-zero exit, and no socket file
 * left behind (nor anything else at that path touched).
 */
class VhostUserExportErrorsTest {
    @TempDir
    Path dir;

    /** Runs the CLI in-process; the guard only turns a regression (an export that starts and waits) into a failure. */
    static CliRun.Result run(String... args) {
        return assertTimeoutPreemptively(Duration.ofSeconds(60), () -> CliRun.run(args));
    }

    private CliRun.Result export(Path sock, String... more) {
        String[] args = new String[5 + more.length];
        args[0] = "export";
        args[1] = "--transport";
        args[2] = "vhost-user";
        args[3] = "--socket";
        args[4] = sock.toString();
        System.arraycopy(more, 0, args, 5, more.length);
        return run(args);
    }

    @Test
    void transportAndSocketOptions() {
        Path sock = dir.resolve("t.sock");
        CliRun.assertOneLine(run("export", "--transport", "vhost-user", "--null", "1M"), 2, "--transport vhost-user needs --socket");
        CliRun.assertOneLine(run("export", "--transport", "vhostuser", "--socket", sock.toString(), "--null", "1M"), 2,
                "--transport must be vduse or vhost-user", "vhostuser");
        CliRun.assertOneLine(run("export", "--socket", sock.toString(), "--null", "1M"), 2, "--socket is for --transport vhost-user");
        CliRun.assertOneLine(export(sock, "--null", "1M", "--bounce", "hugepages"), 2, "--bounce is for --transport vduse");
        assertTrue(Files.notExists(sock), "no socket file");
    }

    @Test
    void badNumbersCreateNoSocket() {
        Path sock = dir.resolve("n.sock");
        CliRun.assertOneLine(export(sock), 2, "--null", "--file", "--memory");
        CliRun.assertOneLine(export(sock, "--null", "1000"), 2, "not a multiple of the block size 512");
        CliRun.assertOneLine(export(sock, "--memory", "1M", "--queues", "0"), 2, "--queues must be 1..64");
        CliRun.assertOneLine(export(sock, "--null", "1M", "--queue-size", "48"), 2, "--queue-size must be a power of two");
        CliRun.assertOneLine(export(sock, "--null", "1M", "--poll", "spin"), 2, "--poll must be busy, adaptive, inflight, event or coalesce");
        CliRun.assertOneLine(export(sock, "--null", "1M", "--direct"), 2, "--io-engine and --direct are for --file");
        assertTrue(Files.notExists(sock), "no socket file");
    }

    @Test
    void missingFileCreatesNoSocket() {
        Path sock = dir.resolve("f.sock");
        Path missing = dir.resolve("nope.img");
        CliRun.assertOneLine(export(sock, "--file", missing.toString()), 1, "does not exist", missing.toString());
        assertTrue(Files.notExists(sock), "no socket file");
        assertTrue(Files.notExists(missing), "no image created");
    }

    @Test
    void socketInAMissingDirectory() {
        Path sock = dir.resolve("no/such/dir/x.sock");
        CliRun.assertOneLine(export(sock, "--null", "1M"), 1, "cannot listen on", sock.toString(), "ENOENT");
        assertTrue(Files.notExists(sock.getParent()), "nothing created");
    }

    @Test
    void socketPathTooLong() {
        Path sock = dir.resolve("x".repeat(120) + ".sock");
        CliRun.assertOneLine(export(sock, "--null", "1M"), 1, "cannot listen on", "1.." + UnixSocket.MAX_PATH_BYTES + " bytes");
        assertTrue(Files.notExists(sock), "no socket file");
    }

    @Test
    void aTakenMetricsPortLeavesNoSocketAndNoRunDirectory() throws IOException {
        Path sock = dir.resolve("m.sock");
        Path runDir = dir.resolve("run");
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            CliRun.assertOneLine(export(sock, "--null", "1M", "--name", "m", "--run-dir", runDir.toString(),
                    "--metrics", "127.0.0.1:" + taken.getLocalPort()), 1,
                    "metrics: cannot listen on", String.valueOf(taken.getLocalPort()), "pick another address or port");
        }
        assertTrue(Files.notExists(sock), "no socket file");
        assertTrue(Files.notExists(runDir.resolve("m")), "no run directory left for the export");
    }

    @Test
    void aRegularFileAtTheSocketPathIsLeftAlone() throws IOException {
        Path file = dir.resolve("important.img");
        byte[] data = {1, 2, 3, 4};
        Files.write(file, data);
        CliRun.assertOneLine(export(file, "--null", "1M"), 1, "exists and is not a socket");
        assertArrayEquals(data, Files.readAllBytes(file), "the file is untouched");
    }

    @Test
    void theSocketOfARunningBackEndIsNotTakenOver() {
        Path sock = dir.resolve("live.sock");
        VirtioBlkDevice dev = new VirtioBlkDevice(new NullBackend(1 << 20, false),
                new VirtioBlkSettings(1, 64, 512, "live", false));
        try (VhostUserServer live = VhostUserServer.start(sock, dev, true)) {
            CliRun.assertOneLine(export(sock, "--null", "1M"), 1, "in use by a running back-end");
            assertTrue(Files.exists(sock), "the running back-end keeps its socket");
            FileIo.close(UnixSocket.connect(sock.toString())); // and still accepts on it
        }
    }

    @Test
    void aStaleSocketIsReplaced() {
        Path sock = dir.resolve("stale.sock");
        FileIo.close(UnixSocket.listen(sock.toString(), 1)); // a back-end that died without removing its socket
        VirtioBlkDevice dev = new VirtioBlkDevice(new NullBackend(1 << 20, false),
                new VirtioBlkSettings(1, 64, 512, "stale", false));
        try (VhostUserServer s = VhostUserServer.start(sock, dev, true)) {
            FileIo.close(UnixSocket.connect(sock.toString()));
        }
        assertTrue(Files.notExists(sock), "removed on close");
    }
}
