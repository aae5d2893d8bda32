package io.github.vduse4j.engine.vduse;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.engine.TransportException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The sysfs side of the 6.12 VDUSE features, on a directory tree laid out as 6.12 and 6.1 have it. */
class VduseKernelFeaturesTest {
    @TempDir
    Path root;

    private VduseKernelFeatures features() throws IOException {
        Files.createDirectories(root.resolve("class"));
        Files.createDirectories(root.resolve("block"));
        Files.writeString(root.resolve("online"), "0-3\n");
        return new VduseKernelFeatures(root.resolve("class"), root.resolve("block"), root.resolve("online"));
    }

    /** A 6.12 device: bounce_size and vqN/irq_cb_affinity (default: every CPU), and a disk with blk-mq's map. */
    private void linux612(String name, int queues, String... cpuLists) throws IOException {
        Path d = Files.createDirectories(root.resolve("class").resolve(name));
        Files.writeString(d.resolve("bounce_size"), "67108864\n");
        for (int q = 0; q < queues; q++) {
            Files.writeString(Files.createDirectories(d.resolve("vq" + q)).resolve("irq_cb_affinity"), "f\n");
        }
        for (int q = 0; q < cpuLists.length; q++) {
            Path mq = Files.createDirectories(root.resolve("block/vda/mq/" + q));
            Files.writeString(mq.resolve("cpu_list"), cpuLists[q] + "\n");
        }
    }

    @Test
    void cpuListsAndMasks() {
        BitSet b = VduseKernelFeatures.parseCpuList("0-2,5,7-8");
        assertEquals("0-2,5,7-8", VduseKernelFeatures.toCpuList(b));
        assertEquals("1a7", VduseKernelFeatures.toCpuMask(b));
        assertEquals(b, VduseKernelFeatures.parseCpuMask("1a7"));
        BitSet high = VduseKernelFeatures.parseCpuList("1,33");
        assertEquals("2,00000002", VduseKernelFeatures.toCpuMask(high));
        assertEquals(high, VduseKernelFeatures.parseCpuMask("00000002,00000002"));
        assertEquals("0", VduseKernelFeatures.toCpuMask(new BitSet()));
    }

    @Test
    void bounceSizeIsWrittenWhereTheFileExists() throws IOException {
        VduseKernelFeatures k = features();
        linux612("d0", 1);
        assertTrue(k.bounceSizeSettable("d0"));
        assertEquals(64L << 20, k.bounceSize("d0"));
        k.setBounceSize("d0", 256L << 20);
        assertEquals(Long.toString(256L << 20), Files.readString(root.resolve("class/d0/bounce_size")));
        assertEquals(256L << 20, k.bounceSize("d0"));
    }

    @Test
    void bounceSizeIsUnavailableOnSixOne() throws IOException {
        VduseKernelFeatures k = features();
        Files.createDirectories(root.resolve("class/d0/vq0")); // 6.1: the device, no bounce_size, no irq_cb_affinity
        assertFalse(k.bounceSizeSettable("d0"));
        assertFalse(k.irqAffinitySettable("d0"));
        assertEquals(64L << 20, k.bounceSize("d0"));
        TransportException e = assertThrows(TransportException.class, () -> k.setBounceSize("d0", 256L << 20));
        assertTrue(e.getMessage().contains("unavailable"), e.getMessage());
        e = assertThrows(TransportException.class,
                () -> k.applyIrqAffinity("d0", "vda", 1, VduseKernelFeatures.IrqAffinity.BLK_MQ));
        assertTrue(e.getMessage().contains("unavailable"), e.getMessage());
    }

    @Test
    void bounceSizeOutsideTheKernelsRangeIsRefused() {
        for (long bad : new long[] {0, (1L << 20) - 4096, (1L << 30) + 4096, (64L << 20) + 1}) {
            assertThrows(TransportException.class, () -> VduseKernelFeatures.checkBounceSize(bad), "size " + bad);
        }
        VduseKernelFeatures.checkBounceSize(1L << 20);
        VduseKernelFeatures.checkBounceSize(1L << 30);
    }

    @Test
    void affinityFollowsBlkMqsMap() throws IOException {
        VduseKernelFeatures k = features();
        linux612("d0", 3, "0-1", "2-3"); // the driver uses 2 of 3 queues
        String got = k.applyIrqAffinity("d0", "vda", 3, VduseKernelFeatures.IrqAffinity.BLK_MQ);
        assertEquals("3", Files.readString(root.resolve("class/d0/vq0/irq_cb_affinity")).trim());
        assertEquals("c", Files.readString(root.resolve("class/d0/vq1/irq_cb_affinity")).trim());
        assertEquals("f", Files.readString(root.resolve("class/d0/vq2/irq_cb_affinity")).trim()); // left alone
        assertEquals("vq0=0-1 vq1=2-3 vq2=0-3", got);
    }

    @Test
    void affinityAllIsEveryOnlineCpuAndKernelLeavesIt() throws IOException {
        VduseKernelFeatures k = features();
        linux612("d0", 2, "0", "1");
        Files.writeString(root.resolve("class/d0/vq1/irq_cb_affinity"), "2\n");
        assertEquals("vq0=0-3 vq1=1", k.applyIrqAffinity("d0", "vda", 2, VduseKernelFeatures.IrqAffinity.KERNEL));
        assertEquals("vq0=0-3 vq1=0-3", k.applyIrqAffinity("d0", "vda", 2, VduseKernelFeatures.IrqAffinity.ALL));
    }

    @Test
    void affinityWithoutTheDisksMapIsAnError() throws IOException {
        VduseKernelFeatures k = features();
        linux612("d0", 1);
        assertThrows(TransportException.class,
                () -> k.applyIrqAffinity("d0", "vdz", 1, VduseKernelFeatures.IrqAffinity.BLK_MQ));
    }
}
