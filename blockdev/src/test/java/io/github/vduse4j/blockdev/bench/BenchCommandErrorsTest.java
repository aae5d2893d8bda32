package io.github.vduse4j.blockdev.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.UnixSocket;
import io.github.vduse4j.blockdev.backend.MemoryBackend;
import io.github.vduse4j.blockdev.cli.CliRun;
import io.github.vduse4j.blockdev.virtio.VirtioBlkDevice;
import io.github.vduse4j.blockdev.virtio.VirtioBlkSettings;
import io.github.vduse4j.engine.vhostuser.VhostUserServer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vduse4j bench} with bad input: one line on stderr that names the problem, a non-zero exit (2 for bad
 * options, 1 for what only shows when connecting), no load run, and the back-end's socket left alone.
 */
class BenchCommandErrorsTest {
    @TempDir
    Path dir;

    /** A path that exists (a regular file): option checks come before the socket check. */
    private String anyFile() throws IOException {
        Path p = dir.resolve("file");
        if (!Files.exists(p)) {
            Files.createFile(p);
        }
        return p.toString();
    }

    @Test
    void socketIsRequired() {
        CliRun.assertOneLine(CliRun.run("bench"), 2, "--socket");
    }

    @Test
    void missingSocket() {
        CliRun.assertOneLine(CliRun.run("bench", "--socket", dir.resolve("none.sock").toString()), 2, "no socket at",
                "start the back-end first");
    }

    @Test
    void aRegularFileIsNotASocket() throws IOException {
        CliRun.assertOneLine(CliRun.run("bench", "--socket", anyFile()), 2, "is not a socket");
    }

    @Test
    void aStaleSocketFile() {
        Path sock = dir.resolve("stale.sock");
        FileIo.close(UnixSocket.listen(sock.toString(), 1)); // the file stays, nobody listens
        CliRun.assertOneLine(CliRun.run("bench", "--socket", sock.toString(), "--runtime", "0.1"), 1, "cannot connect to", "ECONNREFUSED",
                "no back-end listens there");
        assertTrue(Files.exists(sock), "bench does not remove sockets");
    }

    @Test
    void badPatternAndNumbers() throws IOException {
        String s = anyFile();
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--rw", "randomread"), 2, "--rw must be", "randomread");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--bs", "1000"), 2, "--bs must be a multiple of 512", "1000");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--bs", "2M"), 2, "--bs must be", "up to 1M");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--bs", "0"), 2, "must be positive");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--bs", "4kb4"), 2, "is not a size");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--iodepth", "0"), 2, "--iodepth must be 1..1024");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--qd", "5000"), 2, "--iodepth must be 1..1024");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--rate-iops", "-5"), 2, "--rate-iops must be 0..");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--qd", "4", "--iodepth-batch", "5"), 2,
                "--iodepth-batch must be 0..--iodepth (4), got 5");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--iodepth-batch", "-1"), 2, "--iodepth-batch must be");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--completions", "sleep"), 2, "--completions must be poll or call", "sleep");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--queues", "65"), 2, "--queues must be 1..64");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--queues", "two"), 2, "two");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--runtime", "0"), 2, "--runtime must be in (0, 86400]");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--runtime", "NaN"), 2, "--runtime must be");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--runtime", "1e9"), 2, "--runtime must be");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--rwmixread", "101"), 2, "--rwmixread must be 0..100");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--ring-size", "100"), 2, "--ring-size must be a power of two");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--qd", "32", "--ring-size", "64"), 2, "--ring-size", "(96)");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--size", "1K", "--bs", "4k"), 2, "--size");
        CliRun.assertOneLine(CliRun.run("bench", "--socket", s, "--verify", "--extra"), 2, "--extra");
    }

    @Test
    void whatOnlyTheBackEndCanTell() {
        Path sock = dir.resolve("ro.sock");
        VirtioBlkDevice ro = new VirtioBlkDevice(new MemoryBackend(1 << 20, true),
                new VirtioBlkSettings(1, 64, 512, "ro", false));
        try (VhostUserServer server = VhostUserServer.start(sock, ro, true)) {
            CliRun.assertOneLine(CliRun.run("bench", "--socket", sock.toString(), "--queues", "2", "--runtime", "0.1"), 1,
                    "--queues 2 but the back-end has 1");
            CliRun.assertOneLine(CliRun.run("bench", "--socket", sock.toString(), "--rw", "randwrite", "--runtime", "0.1"), 1,
                    "read-only");
            // this back-end was built without packed rings (VirtioBlkSettings.packed false)
            CliRun.assertOneLine(CliRun.run("bench", "--socket", sock.toString(), "--packed", "--runtime", "0.1"), 1,
                    "--packed", "does not offer VIRTIO_F_RING_PACKED");
            assertTrue(Files.exists(sock), "the back-end's socket stays");
            assertEquals(3, server.connections(), "each attempt connected, and the back-end serves on");
        }
    }
}
