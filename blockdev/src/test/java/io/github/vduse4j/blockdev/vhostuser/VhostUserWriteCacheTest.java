package io.github.vduse4j.blockdev.vhostuser;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.blockdev.backend.FileBackend;
import io.github.vduse4j.blockdev.bench.BlkQueue;
import io.github.vduse4j.engine.frontend.MemoryRegion;
import io.github.vduse4j.engine.frontend.VhostUserFrontend;
import io.github.vduse4j.engine.frontend.VhostUserFrontend.VhostUserException;
import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.blockdev.virtio.VirtioBlkDevice;
import io.github.vduse4j.blockdev.virtio.VirtioBlkSettings;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.vhostuser.VhostUserProtocol;
import io.github.vduse4j.engine.vhostuser.VhostUserServer;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * VIRTIO_BLK_F_CONFIG_WCE over vhost-user, as QEMU's vhost-user-blk drives it: the driver's write of
 * {@code writeback} arrives as SET_CONFIG (1 byte at offset 32), GET_CONFIG reads the new mode back, and in
 * writethrough mode the file backend is flushed for the writes; refused writes change nothing.
 */
class VhostUserWriteCacheTest {
    @TempDir
    Path dir;

    private static final int BS = 4096, DEPTH = 8, RING = 64, BLOCKS = 64;
    private static final int WB = VirtioBlk.CONFIG_WRITEBACK_OFFSET;
    private static final long PROTOCOL = (1L << VhostUserProtocol.PF_MQ) | (1L << VhostUserProtocol.PF_REPLY_ACK)
            | (1L << VhostUserProtocol.PF_CONFIG);
    private static final long FEATURES = VirtioBlk.bit(VirtioBlk.F_VERSION_1) | (1L << VhostUserProtocol.F_PROTOCOL_FEATURES)
            | VirtioBlk.bit(VirtioBlk.F_FLUSH);

    private static long word(int block, int i, int pass) {
        return ((block * 1_000_003L + i) * 0x9E3779B97F4A7C15L) ^ pass;
    }

    /** Writes every block once (pattern {@code pass}), DEPTH at a time; all must complete OK. */
    private static void writeAll(BlkQueue q, int pass) {
        int next = 0, completed = 0, inFlight = 0;
        int[] free = new int[DEPTH];
        int freeCount = DEPTH;
        for (int i = 0; i < DEPTH; i++) {
            free[i] = i;
        }
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (completed < BLOCKS) {
            assertTrue(System.nanoTime() < deadline, completed + " of " + BLOCKS + " writes completed");
            while (freeCount > 0 && next < BLOCKS) {
                int slot = free[--freeCount];
                for (int i = 0; i < BS / 8; i++) {
                    q.data(slot).set(ValueLayout.JAVA_LONG_UNALIGNED, 8L * i, word(next, i, pass));
                }
                assertTrue(q.submit(slot, VirtioBlk.T_OUT, (long) next * (BS / 512), BS));
                next++;
                inFlight++;
            }
            q.flush();
            int n = q.reap();
            for (int i = 0; i < n; i++) {
                assertEquals(VirtioBlk.S_OK, q.completedStatus(i));
                free[freeCount++] = q.completedSlot(i);
                completed++;
                inFlight--;
            }
        }
        assertEquals(0, inFlight);
    }

    private static void assertFileHolds(Path img, int pass) throws IOException {
        MemorySegment f = MemorySegment.ofArray(Files.readAllBytes(img));
        for (int b = 0; b < BLOCKS; b++) {
            for (int i = 0; i < BS / 8; i++) {
                assertEquals(word(b, i, pass), f.get(ValueLayout.JAVA_LONG_UNALIGNED, (long) b * BS + 8L * i),
                        "block " + b + " word " + i);
            }
        }
    }

    @Test
    void setConfigSwitchesToWritethroughAndGetConfigReadsItBack() throws IOException {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[BLOCKS * BS]);
        Path sock = dir.resolve("wce.sock");
        VirtioBlkDevice dev = new VirtioBlkDevice(new FileBackend(img, false), new VirtioBlkSettings(1, 256, 512, "wce", false));
        try (FileBackend backend = (FileBackend) dev.backend();
             VhostUserServer server = VhostUserServer.start(sock, dev, true);
             MemoryRegion mem = MemoryRegion.memfd(BlkQueue.memoryBytes(RING, DEPTH, BS), 0);
             BlkQueue q = new BlkQueue(mem, RING, DEPTH, BS);
             VhostUserFrontend fe = VhostUserFrontend.connect(sock)) {
            long offered = fe.negotiateProtocol(PROTOCOL);
            assertNotEquals(0, offered & VirtioBlk.bit(VirtioBlk.F_CONFIG_WCE), "offered over vhost-user");
            fe.setOwner();
            assertEquals(VirtioBlk.WRITEBACK, fe.config(WB, 1)[0], "the device starts in writeback mode");
            // before SET_FEATURES (QEMU sends it at device start) CONFIG_WCE is not negotiated: refused
            assertThrows(VhostUserException.class, () -> fe.setConfig(WB, new byte[] {0}));
            fe.setFeatures(FEATURES | VirtioBlk.bit(VirtioBlk.F_CONFIG_WCE));
            fe.setMemTable(mem);
            fe.startVring(0, q.ring(), 0, q.queue().kickFd(), q.queue().callFd());

            writeAll(q, 1);
            QueueStats st = server.stats().get(0);
            assertEquals(0, st.writeThroughFlushes(), "writeback: the driver flushes when it wants to");

            // what QEMU sends when the guest writes "write through" to /sys/block/vdX/cache_type
            fe.setConfig(WB, new byte[] {VirtioBlk.WRITETHROUGH});
            assertEquals(VirtioBlk.WRITETHROUGH, fe.config(WB, 1)[0]);
            assertFalse(dev.writeback());
            writeAll(q, 2);
            long wt = server.stats().get(0).writeThroughFlushes();
            assertTrue(wt > 0 && wt <= BLOCKS, "writethrough flushes: " + wt);
            assertEquals(wt, server.stats().get(0).flushes());
            assertFileHolds(img, 2);

            // refused: read-only fields, a bad value, more than the field; nothing changes
            byte[] before = fe.config(0, 60);
            assertThrows(VhostUserException.class, () -> fe.setConfig(0, new byte[] {1}));
            assertThrows(VhostUserException.class, () -> fe.setConfig(WB, new byte[] {2}));
            assertThrows(VhostUserException.class, () -> fe.setConfig(WB, new byte[] {1, 0}));
            assertThrows(VhostUserException.class, () -> fe.setConfig(60, new byte[] {1})); // max_secure_erase_sectors
            int end = dev.configSpace().length;
            assertThrows(VhostUserException.class, () -> fe.setConfig(end, new byte[] {1}), "past the config space");
            assertThrows(VhostUserException.class, () -> fe.setConfig(end - 1, new byte[] {0, 0}), "straddling its end");
            assertArrayEquals(before, fe.config(0, 60));
            assertFalse(dev.writeback());

            fe.setConfig(WB, new byte[] {VirtioBlk.WRITEBACK});
            assertEquals(VirtioBlk.WRITEBACK, fe.config(WB, 1)[0]);
            writeAll(q, 3);
            assertEquals(wt, server.stats().get(0).writeThroughFlushes(), "no more flushes of our own in writeback mode");
            assertFileHolds(img, 3);
        }
    }

    @Test
    void aFrontendThatDidNotNegotiateConfigWceCannotChangeTheMode() throws IOException {
        Path img = dir.resolve("disk2.img");
        Files.write(img, new byte[BLOCKS * BS]);
        Path sock = dir.resolve("wce2.sock");
        VirtioBlkDevice dev = new VirtioBlkDevice(new FileBackend(img, false), new VirtioBlkSettings(1, 256, 512, "wce", false));
        try (FileBackend backend = (FileBackend) dev.backend();
             VhostUserServer server = VhostUserServer.start(sock, dev, true);
             VhostUserFrontend fe = VhostUserFrontend.connect(sock)) {
            fe.negotiateProtocol(PROTOCOL);
            fe.setOwner();
            fe.setFeatures(FEATURES);
            assertThrows(VhostUserException.class, () -> fe.setConfig(WB, new byte[] {0}));
            assertEquals(VirtioBlk.WRITEBACK, fe.config(WB, 1)[0]);
            assertTrue(dev.writeback());
            assertTrue(server.refusedMessages() >= 1);
        }
    }
}
