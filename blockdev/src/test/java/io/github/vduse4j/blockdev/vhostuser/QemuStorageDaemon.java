package io.github.vduse4j.blockdev.vhostuser;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** qemu-storage-daemon (Debian: qemu-system-common) as a real vhost-user-blk target for host-side tests. */
public final class QemuStorageDaemon {
    public static final Path BINARY = Path.of("/usr/bin/qemu-storage-daemon");

    private QemuStorageDaemon() {}

    public static boolean installed() {
        return Files.isExecutable(BINARY);
    }

    /** Exports {@code image} over vhost-user-blk at {@code sock} ({@code queues} queues); waits for the socket. */
    public static Process start(Path image, Path sock, int queues, Path log) throws IOException, InterruptedException {
        Files.deleteIfExists(sock);
        Process p = new ProcessBuilder(List.of(BINARY.toString(),
                "--blockdev", "driver=file,node-name=disk,filename=" + image + ",cache.direct=off",
                "--export", "type=vhost-user-blk,id=exp,node-name=disk,addr.type=unix,addr.path=" + sock
                        + ",writable=on,num-queues=" + queues))
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!Files.exists(sock)) {
            assertTrue(p.isAlive(), "qemu-storage-daemon exited: " + Files.readString(log));
            assertTrue(System.nanoTime() < deadline, "no socket from qemu-storage-daemon");
            Thread.sleep(20);
        }
        return p;
    }

    /** SIGKILL, as a crash: whatever it had not completed is lost. */
    public static void kill(Process p) throws InterruptedException {
        p.destroyForcibly();
        assertTrue(p.waitFor(10, TimeUnit.SECONDS), "qemu-storage-daemon did not die");
    }
}
