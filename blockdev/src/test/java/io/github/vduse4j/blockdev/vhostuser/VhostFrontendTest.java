package io.github.vduse4j.blockdev.vhostuser;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.blockdev.backend.MemoryBackend;
import io.github.vduse4j.blockdev.bench.BlkQueue;
import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.blockdev.virtio.VirtioBlkDevice;
import io.github.vduse4j.blockdev.virtio.VirtioBlkSettings;
import io.github.vduse4j.engine.frontend.FrontendQueue;
import io.github.vduse4j.engine.frontend.MemoryRegion;
import io.github.vduse4j.engine.frontend.MemoryTable;
import io.github.vduse4j.engine.frontend.VhostFrontend;
import io.github.vduse4j.engine.frontend.VhostUserFrontend;
import io.github.vduse4j.engine.vhostuser.VhostUserProtocol;
import io.github.vduse4j.engine.vhostuser.VhostUserServer;
import io.github.vduse4j.ring.VirtioRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The engine's vhost frontend core against vduse4j's own vhost-user-blk back-end over a real Unix socket, laid out as
 * the vhost-user bridge lays it out: request buffers in region 0 at guest physical address 0, the frontend's rings
 * and indirect tables in a second region, both announced with their fds in one SET_MEM_TABLE; EVENT_IDX and
 * INDIRECT_DESC negotiated; completions taken by sleeping on the call eventfd (no busy polling); and a back-end that
 * is stopped and started again with requests in flight, after which the frontend reconnects and resubmits them. The
 * same against a real peer, qemu-storage-daemon's vhost-user-blk export of a file (killed and started again; the file
 * is checked directly afterwards).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class VhostFrontendTest {
    private static final int BS = 4096, DEPTH = 16, RING = 64, BLOCKS = 256;
    private static final long RING_GPA = 64L << 20;
    private static final long PROTOCOL = (1L << VhostUserProtocol.PF_MQ) | (1L << VhostUserProtocol.PF_REPLY_ACK)
            | (1L << VhostUserProtocol.PF_CONFIG);
    private static final long WANTED = VirtioBlk.bit(VirtioBlk.F_VERSION_1) | (1L << VhostUserProtocol.F_PROTOCOL_FEATURES)
            | (1L << VirtioRing.F_EVENT_IDX) | (1L << VirtioRing.F_INDIRECT_DESC) | VirtioBlk.bit(VirtioBlk.F_MQ);

    @TempDir
    Path dir;

    private static long word(long block, int i, int pass) {
        return (block * 1_000_003L + i + pass * 7919L) * 0x9E3779B97F4A7C15L;
    }

    private static VhostFrontend open(Path sock, boolean packed) {
        return VhostFrontend.open(() -> VhostUserFrontend.open(sock, PROTOCOL, Duration.ofSeconds(10)),
                WANTED | (packed ? 1L << VirtioRing.F_RING_PACKED : 0), VirtioBlk.bit(VirtioBlk.F_VERSION_1));
    }

    /** Submits a write (pass > 0: data pattern) or read of {@code block} in {@code slot}. */
    private static void submit(BlkQueue q, int slot, long block, int pass) {
        if (pass > 0) {
            MemorySegment d = q.data(slot);
            for (int i = 0; i < BS / 8; i++) {
                d.set(ValueLayout.JAVA_LONG_UNALIGNED, 8L * i, word(block, i, pass));
            }
        } else {
            q.data(slot).fill((byte) 0);
        }
        assertTrue(q.submit(slot, pass > 0 ? VirtioBlk.T_OUT : VirtioBlk.T_IN, block * (BS / 512), BS));
    }

    /**
     * Writes (pass > 0) or reads and checks (pass < 0: against the pattern of -pass) every block, a window of DEPTH
     * requests at a time (slot k holds block window + k), waiting for completions on the call eventfd.
     */
    private static void pass(BlkQueue q, int pass) {
        for (long window = 0; window < BLOCKS; window += DEPTH) {
            for (int slot = 0; slot < DEPTH; slot++) {
                submit(q, slot, window + slot, Math.max(pass, 0));
            }
            q.flush();
            completeWindow(q, window, Math.max(-pass, 0));
        }
    }

    /**
     * Waits on the call eventfd for the DEPTH requests of the window starting at block {@code window}: each must
     * succeed and, with {@code pattern > 0}, hold that pattern of its block (slot k: block window + k).
     */
    private static void completeWindow(BlkQueue q, long window, int pattern) {
        int done = 0;
        while (done < DEPTH) {
            assertTrue(q.queue().awaitUsed(10_000), "a completion within 10 s: " + done + " of " + DEPTH);
            int n = q.reap();
            for (int i = 0; i < n; i++) {
                int slot = q.completedSlot(i);
                assertEquals(VirtioBlk.S_OK, q.completedStatus(i), "block " + (window + slot));
                for (int w = 0; pattern > 0 && w < BS / 8; w++) {
                    assertEquals(word(window + slot, w, pattern), q.data(slot).get(ValueLayout.JAVA_LONG_UNALIGNED,
                            8L * w), "block " + (window + slot) + " word " + w);
                }
            }
            done += n;
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void twoRegionsIndirectTablesAndCallEventfdCompletions(boolean packed) {
        Path sock = dir.resolve("f.sock");
        VirtioBlkDevice dev = new VirtioBlkDevice(new MemoryBackend(BLOCKS * (long) BS, false),
                new VirtioBlkSettings(2, 256, 512, "fe", packed));
        try (VhostUserServer server = VhostUserServer.start(sock, dev, true);
             MemoryRegion data = MemoryRegion.memfd(2 * DEPTH * (BS + 4096L) + 4096, 0);
             MemoryRegion rings = MemoryRegion.memfd(2 * (8 * 4096L + RING * 8L * 16), RING_GPA);
             VhostFrontend fe = open(sock, packed)) {
            assertTrue(fe.hasFeature(VirtioRing.F_EVENT_IDX), "EVENT_IDX negotiated");
            assertTrue(fe.hasFeature(VirtioRing.F_INDIRECT_DESC), "INDIRECT_DESC negotiated");
            assertEquals(packed, fe.hasFeature(VirtioRing.F_RING_PACKED));
            assertEquals(2, fe.maxQueues());
            long capacity = MemorySegment.ofArray(fe.config(0, 8)).get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
            assertEquals(BLOCKS * (long) BS / 512, capacity, "config passed through");
            FrontendQueue[] fq = new FrontendQueue[2];
            BlkQueue[] q = new BlkQueue[2];
            for (int i = 0; i < 2; i++) {
                fq[i] = new FrontendQueue(fe.newRing(rings, RING, 8));
                q[i] = new BlkQueue(fq[i], data, DEPTH, BS);
            }
            try {
                fe.start(MemoryTable.of(data, rings), fq);
                pass(q[0], 1);
                pass(q[1], -1);   // the other queue reads what the first wrote
                for (int i = 0; i < 2; i++) {
                    assertEquals(0, q[i].ring().deviceFaults(), q[i].ring().firstDeviceFault());
                    assertEquals(1, q[i].ring().usedDescriptors(), "an indirect request takes one ring descriptor");
                    assertTrue(fq[i].calls() > 0, "completions came by the call eventfd");
                }
                int[] bases = fe.stop();
                assertEquals(2, bases.length);
            } finally {
                for (int i = 0; i < 2; i++) {
                    q[i].close();
                }
            }
        }
    }

    @Test
    void aRestartedBackendGetsTheOutstandingRequestsAgain() {
        Path sock = dir.resolve("r.sock");
        MemoryBackend disk = new MemoryBackend(BLOCKS * (long) BS, false);
        VirtioBlkSettings settings = new VirtioBlkSettings(1, 256, 512, "rs", false);
        VhostUserServer server = VhostUserServer.start(sock, new VirtioBlkDevice(disk, settings), true);
        try (MemoryRegion data = MemoryRegion.memfd(DEPTH * (BS + 4096L) + 4096, 0);
             MemoryRegion rings = MemoryRegion.memfd(8 * 4096L + RING * 8L * 16, RING_GPA);
             VhostFrontend fe = open(sock, false);
             BlkQueue q = new BlkQueue(new FrontendQueue(fe.newRing(rings, RING, 8)), data, DEPTH, BS)) {
            fe.start(MemoryTable.of(data, rings), q.queue());
            pass(q, 1);
            // DEPTH writes of a second pattern in flight, then the back-end goes away and comes back
            for (int slot = 0; slot < DEPTH; slot++) {
                submit(q, slot, slot, 2);
            }
            q.flush();
            server.close();
            server = VhostUserServer.start(sock, new VirtioBlkDevice(disk, settings), true);
            fe.reconnect();
            assertEquals(1, fe.reconnects());
            assertEquals(0, q.ring().inflight(), "the emptied ring");
            for (int slot = 0; slot < DEPTH; slot++) {
                submit(q, slot, slot, 2);   // resubmitted: the frontend knows what was outstanding
            }
            q.flush();
            completeWindow(q, 0, 0);
            // read the first DEPTH blocks back: the second pattern; the rest: the first
            for (int slot = 0; slot < DEPTH; slot++) {
                submit(q, slot, slot, 0);
            }
            q.flush();
            completeWindow(q, 0, 2);
            assertEquals(1, server.connections(), "one connection to the restarted back-end");
        } finally {
            server.close();
        }
    }

    @Test
    void qemuStorageDaemonKilledAndStartedAgainLosesNothing() throws Exception {
        Assumptions.assumeTrue(QemuStorageDaemon.installed(), "qemu-storage-daemon is not installed (qemu-system-common)");
        Path image = dir.resolve("disk.img");
        Path sock = dir.resolve("qsd.sock");
        Path log = dir.resolve("qsd.log");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(BLOCKS * (long) BS);
        }
        Process qsd = QemuStorageDaemon.start(image, sock, 2, log);
        try (MemoryRegion data = MemoryRegion.memfd(DEPTH * (BS + 4096L) + 4096, 0);
             MemoryRegion rings = MemoryRegion.memfd(8 * 4096L + RING * 8L * 16, RING_GPA);
             VhostFrontend fe = open(sock, false);
             BlkQueue q = new BlkQueue(new FrontendQueue(fe.newRing(rings, RING, 8)), data, DEPTH, BS)) {
            assertTrue(fe.hasFeature(VirtioRing.F_EVENT_IDX), "qemu-storage-daemon offers EVENT_IDX");
            assertTrue(fe.hasFeature(VirtioRing.F_INDIRECT_DESC), "qemu-storage-daemon offers INDIRECT_DESC");
            assertEquals(2, fe.maxQueues());
            long capacity = MemorySegment.ofArray(fe.config(0, 8)).get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
            assertEquals(BLOCKS * (long) BS / 512, capacity, "config passed through");
            fe.start(MemoryTable.of(data, rings), q.queue());
            pass(q, 1);
            pass(q, -1);
            for (int slot = 0; slot < DEPTH; slot++) {
                submit(q, slot, slot, 2);
            }
            q.flush();
            QemuStorageDaemon.kill(qsd);   // whatever it had not completed is lost with it
            qsd = QemuStorageDaemon.start(image, sock, 2, log);
            fe.reconnect();
            for (int slot = 0; slot < DEPTH; slot++) {
                submit(q, slot, slot, 2);   // resubmitted
            }
            q.flush();
            completeWindow(q, 0, 0);
            assertEquals(0, q.ring().deviceFaults(), q.ring().firstDeviceFault());
            assertTrue(q.queue().calls() > 0, "completions came by the call eventfd");
            fe.stop();
        } finally {
            QemuStorageDaemon.kill(qsd);
        }
        // the target's file itself, not read through any frontend
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(image)).order(ByteOrder.LITTLE_ENDIAN);
        for (int block = 0; block < BLOCKS; block++) {
            int pattern = block < DEPTH ? 2 : 1;
            for (int w = 0; w < BS / 8; w++) {
                assertEquals(word(block, w, pattern), b.getLong(block * BS + 8 * w), "file block " + block + " word " + w);
            }
        }
    }
}
