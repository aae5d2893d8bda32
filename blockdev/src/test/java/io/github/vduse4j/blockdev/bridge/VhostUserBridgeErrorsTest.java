package io.github.vduse4j.blockdev.bridge;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.blockdev.backend.MemoryBackend;
import io.github.vduse4j.blockdev.cli.CliRun;
import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.blockdev.virtio.VirtioBlkDevice;
import io.github.vduse4j.blockdev.virtio.VirtioBlkSettings;
import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.engine.VirtioDevice;
import io.github.vduse4j.engine.vhostuser.VhostUserServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.locks.LockSupport;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vduse4j export --vhost-user-target} with bad input: one line, a non-zero exit, and nothing left behind (no
 * VDUSE device: every check of the target comes before one is created; the target's connection is closed again).
 */
class VhostUserBridgeErrorsTest {
    @TempDir
    Path dir;

    private static CliRun.Result run(String... args) {
        return assertTimeoutPreemptively(Duration.ofSeconds(60), () -> CliRun.run(args));
    }

    /** A virtio-blk device that does not offer VIRTIO_F_INDIRECT_DESC. */
    private static VirtioDevice withoutIndirect(VirtioBlkDevice blk) {
        return new VirtioDevice() {
            @Override public int deviceId() { return blk.deviceId(); }
            @Override public long deviceFeatures() { return blk.deviceFeatures() & ~(1L << VirtioBlk.F_INDIRECT_DESC); }
            @Override public byte[] configSpace() { return blk.configSpace(); }
            @Override public int queueCount() { return blk.queueCount(); }
            @Override public int maxQueueSize() { return blk.maxQueueSize(); }
            @Override public QueueHandler openQueue(int index, long features, int size) {
                return blk.openQueue(index, features, size);
            }
        };
    }

    private static VirtioBlkDevice blk() {
        return new VirtioBlkDevice(new MemoryBackend(1 << 20, false), new VirtioBlkSettings(1, 256, 512, "t", false));
    }

    @Test
    void optionsThatDoNotFit() {
        Path sock = dir.resolve("none.sock");
        CliRun.assertOneLine(run("export", "--vhost-user-target", sock.toString(), "--bounce", "hugepages",
                "--transport", "vhost-user", "--socket", dir.resolve("s").toString()), 2, "is for --transport vduse");
        CliRun.assertOneLine(run("export", "--vhost-user-target", sock.toString(), "--bounce", "hugepages",
                "--packed"), 2, "takes the device's settings from the target");
        CliRun.assertOneLine(run("export", "--vhost-user-target", sock.toString(), "--null", "1M"), 2, "mutually exclusive");
    }

    @Test
    void noTargetListening() {
        Path sock = dir.resolve("absent.sock");
        CliRun.assertOneLine(run("export", "--vhost-user-target", sock.toString(), "--bounce", "hugepages"), 1,
                "cannot connect to " + sock);
        // the kernel bounce (the default) checks the target the same way before any device exists
        CliRun.assertOneLine(run("export", "--vhost-user-target", sock.toString()), 1, "cannot connect to " + sock);
    }

    @Test
    void aTargetWithoutIndirectDescriptors() {
        Path sock = dir.resolve("noind.sock");
        try (VhostUserServer server = VhostUserServer.start(sock, withoutIndirect(blk()), true)) {
            CliRun.assertOneLine(run("export", "--vhost-user-target", sock.toString(), "--bounce", "hugepages"), 1,
                    "lacks required feature bits [28]");
            awaitDisconnect(server);   // the server sees the hang-up on its own thread
            assertFalse(server.isConnected(), "the bridge left the target");
        }
    }

    @Test
    void moreQueuesThanTheTargetHasOrNoHugepages() throws Exception {
        Path sock = dir.resolve("t.sock");
        try (VhostUserServer server = VhostUserServer.start(sock, blk(), true)) {
            CliRun.assertOneLine(run("export", "--vhost-user-target", sock.toString(), "--bounce", "hugepages",
                    "--queues", "2"), 1, "--queues 2 but the target has 1");
            if (free2MiBHugepages() < 32) {
                CliRun.assertOneLine(run("export", "--vhost-user-target", sock.toString(), "--bounce", "hugepages"), 1,
                        "free 2 MiB hugepages", "nr_hugepages");
            }
            awaitDisconnect(server);
            assertFalse(server.isConnected(), "the bridge left the target");
            assertTrue(Files.exists(sock), "the target's socket is left alone");
        }
    }

    private static void awaitDisconnect(VhostUserServer server) {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (server.isConnected() && System.nanoTime() < deadline) {
            LockSupport.parkNanos(10_000_000L);
        }
    }

    private static long free2MiBHugepages() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (line.startsWith("HugePages_Free:")) {
                return Long.parseLong(line.substring("HugePages_Free:".length()).trim());
            }
        }
        return 0;
    }
}
