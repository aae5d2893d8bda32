package io.github.vduse4j.blockdev.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.github.vduse4j.engine.vduse.VduseControl;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * Bad user input gets one line that says what to do and a non-zero exit, before anything is created.
 * (The same cases run against the real kernel in the VDUSE guest: scripts/e2e.)
 */
class ExportCommandErrorsTest {

    @Test
    void noBackendChosen() {
        CliRun.assertOneLine(CliRun.run("export"), 2, "--null", "--file", "--memory");
    }

    @Test
    void twoBackendsChosen() {
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--memory", "1G"), 2, "mutually exclusive");
    }

    @Test
    void sizeThatIsNotANumber() {
        CliRun.assertOneLine(CliRun.run("export", "--null", "12X"), 2, "'12X' is not a size");
    }

    @Test
    void sizeNotAMultipleOfTheBlockSize() {
        CliRun.assertOneLine(CliRun.run("export", "--null", "1000"), 2, "not a multiple of the block size 512");
        CliRun.assertOneLine(CliRun.run("export", "--null", "6K", "--block-size", "4096"), 2, "block size 4096");
    }

    @Test
    void badNumbers() {
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--block-size", "1024"), 2, "--block-size must be 512 or 4096");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--queue-size", "100"), 2, "--queue-size must be a power of two");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--queue-size", "65536"), 2, "in 4..32768, got 65536");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--queues", "0"), 2, "--queues must be 1..64");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--queues", "two"), 2, "two");
    }

    @Test
    void badVdpaDriver() {
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--vdpa-driver", "vhost-vdpa"), 2,
                "--vdpa-driver must be virtio_vdpa or vhost_vdpa, got vhost-vdpa");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--vdpa-driver", "vhost_vdpa", "--no-attach"), 2,
                "--vdpa-driver is for a VDUSE export attached to the vdpa bus");
    }

    @Test
    void badFaultSpec() {
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--inject-faults", "eio:sideways"), 2,
                "--inject-faults: unknown op 'sideways'");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--inject-faults", "delay:read"), 2,
                "--inject-faults: delay rule 'delay:read' needs time=DUR");
    }

    /** picocli must hand the whole list to the converter (an int[] option would be split into elements). */
    @Test
    void aValidCpuListReachesThePollerSettings() {
        ExportCommand c = new ExportCommand();
        new CommandLine(c).parseArgs("--null", "1G", "--cpus", "0,0-0");
        assertArrayEquals(new int[] {0, 0}, c.pollerSettings().cpus());
        ExportCommand none = new ExportCommand();
        new CommandLine(none).parseArgs("--null", "1G");
        assertEquals(0, none.pollerSettings().cpus().length, "not pinned");
        assertEquals(0, none.pollerSettings().spinBreakEvenNanos(), "no CPU gate by default");
        ExportCommand gated = new ExportCommand();
        new CommandLine(gated).parseArgs("--null", "1G", "--spin-break-even-us", "16");
        assertEquals(16_000, gated.pollerSettings().spinBreakEvenNanos());
        assertEquals(32_000, none.pollerSettings().notifyHoldNanos(), "notifications held up to 32 us by default");
        ExportCommand unheld = new ExportCommand();
        new CommandLine(unheld).parseArgs("--null", "1G", "--notify-hold-us", "0");
        assertEquals(0, unheld.pollerSettings().notifyHoldNanos(), "0 turns the hold off");
        ExportCommand held = new ExportCommand();
        new CommandLine(held).parseArgs("--null", "1G", "--notify-hold-us", "16");
        assertEquals(16_000, held.pollerSettings().notifyHoldNanos());
    }

    @Test
    void badDatapathOptions(@TempDir Path dir) throws IOException {
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--poll", "spin"), 2, "--poll must be busy, adaptive, inflight, event or coalesce");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--max-spin-us", "-1"), 2, "--max-spin-us must be 0..1000000");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--poll", "coalesce", "--coalesce-us", "0"), 2,
                "--coalesce-us must be 1..10000, got 0");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--coalesce-us", "20"), 2,
                "--coalesce-us is for --poll coalesce");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--spin-break-even-us", "-1"), 2,
                "--spin-break-even-us must be 0..1000000");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--notify-hold-us", "10001"), 2,
                "--notify-hold-us must be 0..10000, got 10001");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--poll", "event", "--notify-hold-us", "16"), 2,
                "--notify-hold-us is not for --poll event");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--cpus", "1-x"), 2, "is not a CPU list");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--cpus", "4000"), 2, "CPU 4000 is not available to this process");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--bounce", "ram"), 2, "--bounce must be kernel, hugepages");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--bounce", "hugepages:3M"), 2, "multiple of 2M");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--io-engine", "aio"), 2, "--io-engine must be pread or io_uring");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--direct"), 2, "--io-engine and --direct are for --file");
        Path f = dir.resolve("d.img");
        Files.write(f, new byte[4096]);
        CliRun.assertOneLine(CliRun.run("export", "--file", f.toString(), "--io-engine", "pread", "--direct"), 1,
                "--direct needs --io-engine io_uring");
    }

    /** The kernel-dependent options (Linux 6.12's bounce_size and irq_cb_affinity) checked before any VDUSE call. */
    @Test
    void badKernelFeatureOptions() {
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--bounce-size", "2G"), 2,
                "--bounce-size must be a multiple of 4 KiB from 1 MiB to 1 GiB");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--bounce-size", "512K"), 2,
                "--bounce-size must be a multiple of 4 KiB from 1 MiB to 1 GiB");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--bounce", "hugepages", "--bounce-size", "3M"), 2,
                "must be a multiple of 2M");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--bounce", "hugepages:64M", "--bounce-size", "128M"),
                2, "--bounce-size and --bounce hugepages:SIZE differ");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--irq-affinity", "cpu0"), 2,
                "--irq-affinity must be blk-mq, all or kernel");
    }

    @Test
    void missingFile(@TempDir Path dir) {
        Path missing = dir.resolve("nope.img");
        CliRun.assertOneLine(CliRun.run("export", "--file", missing.toString()), 1, "does not exist", missing.toString());
        assertTrue(Files.notExists(missing), "nothing created");
    }

    @Test
    void fileSizeNotAMultipleOfTheBlockSize(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("odd.img");
        Files.write(f, new byte[1000]);
        CliRun.assertOneLine(CliRun.run("export", "--file", f.toString()), 2, "1000 bytes", "not a positive multiple");
    }

    @Test
    void directoryInsteadOfFile(@TempDir Path dir) {
        CliRun.assertOneLine(CliRun.run("export", "--file", dir.toString()), 1, "is a directory");
    }

    @Test
    void badDeviceName() {
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--name", "a/b"), 1, "invalid device name");
    }

    @Test
    void hostWithoutVduseSaysWhichModulesToLoad() {
        assumeFalse(Files.exists(VduseControl.CONTROL), "this host has VDUSE; the guest tests cover it");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G"), 1, "/dev/vduse/control", "modprobe vduse virtio_vdpa");
    }

    /**
     * A RAM disk the kernel will not map (99999 TiB is beyond the 128 TiB of user address space) gets one line with
     * the size and what to do, on both transports, before anything is created (issue 19: it was an
     * OutOfMemoryError stack trace).
     */
    @Test
    void ramDiskTooLargeToMap(@TempDir Path dir) {
        CliRun.assertOneLine(CliRun.run("export", "--memory", "99999T"), 1,
                "cannot map a RAM disk of 97.7 PiB", "ENOMEM", "smaller --memory SIZE", "--file");
        Path sock = dir.resolve("m.sock");
        CliRun.assertOneLine(CliRun.run("export", "--memory", "99999T", "--transport", "vhost-user", "--socket",
                sock.toString()), 1, "cannot map a RAM disk of 97.7 PiB", "smaller --memory SIZE", "--file");
        assertTrue(Files.notExists(sock), "no socket left behind");
    }

    /** A hugepage bounce buffer without free hugepages: one line naming the sysctl, before any VDUSE call. */
    @Test
    void hugepageBounceWithoutHugepages() throws IOException {
        assumeTrue(freeHugepages() < 32, "this host has 32 free hugepages");
        CliRun.assertOneLine(CliRun.run("export", "--null", "1G", "--bounce", "hugepages"), 1,
                "needs 32 free 2 MiB hugepages", "echo 32 > /proc/sys/vm/nr_hugepages");
    }

    static long freeHugepages() throws IOException {
        return Files.readAllLines(Path.of("/proc/meminfo")).stream().filter(l -> l.startsWith("HugePages_Free:"))
                .mapToLong(l -> Long.parseLong(l.replaceAll("[^0-9]", ""))).findFirst().orElse(0);
    }
}
