package io.github.vduse4j.blockdev.vhostuser;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.blockdev.backend.FaultInjectingBackend;
import io.github.vduse4j.blockdev.backend.MemoryBackend;
import io.github.vduse4j.blockdev.bench.BlkQueue;
import io.github.vduse4j.engine.frontend.MemoryRegion;
import io.github.vduse4j.ring.driver.SplitDriverRing;
import io.github.vduse4j.engine.frontend.VhostUserFrontend;
import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.blockdev.virtio.VirtioBlkDevice;
import io.github.vduse4j.blockdev.virtio.VirtioBlkSettings;
import io.github.vduse4j.engine.vhostuser.VhostUserProtocol;
import io.github.vduse4j.engine.vhostuser.VhostUserServer;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The frontend drops the connection with writes in flight, reconnects (keeping its memory and ring, as QEMU
 * keeps guest memory) and restarts the vring at the used index it sees, with the inflight buffer handed back:
 * every write completes exactly once and every block reads back what was written.
 */
class VhostUserReconnectTest {
    @TempDir
    Path dir;

    private static final int BS = 4096, DEPTH = 16, RING = 64, WRITES = 400;
    private static final long PROTOCOL = (1L << VhostUserProtocol.PF_MQ) | (1L << VhostUserProtocol.PF_REPLY_ACK)
            | (1L << VhostUserProtocol.PF_CONFIG) | (1L << VhostUserProtocol.PF_INFLIGHT_SHMFD);

    private static VhostUserFrontend connect(Path sock, MemoryRegion mem, BlkQueue q, long[] inflight, int base) {
        VhostUserFrontend fe = VhostUserFrontend.connect(sock);
        long offered = fe.negotiateProtocol(PROTOCOL);
        fe.setOwner();
        if (inflight[1] < 0) {
            long[] got = fe.getInflightFd(1, RING);
            inflight[0] = got[0];
            inflight[1] = got[1];
        }
        fe.setInflightFd((int) inflight[1], inflight[0], 1, RING);
        fe.setFeatures(offered & (VirtioBlk.bit(VirtioBlk.F_VERSION_1) | (1L << VhostUserProtocol.F_PROTOCOL_FEATURES)));
        fe.setMemTable(mem);
        fe.startVring(0, q.ring(), base, q.queue().kickFd(), q.queue().callFd());
        return fe;
    }

    private static long word(int block, int i) {
        return (block * 1_000_003L + i) * 0x9E3779B97F4A7C15L;
    }

    @Test
    void reconnectingMidIoLosesNothing() {
        Path sock = dir.resolve("r.sock");
        VirtioBlkDevice dev = new VirtioBlkDevice(new MemoryBackend(WRITES * (long) BS, false),
                new VirtioBlkSettings(1, 256, 512, "rc", false));
        long[] inflight = {0, -1};
        try (VhostUserServer server = VhostUserServer.start(sock, dev, true);
             MemoryRegion mem = MemoryRegion.memfd(BlkQueue.memoryBytes(RING, DEPTH, BS), 0);
             BlkQueue q = new BlkQueue(mem, RING, DEPTH, BS)) {
            VhostUserFrontend fe = connect(sock, mem, q, inflight, 0);
            int[] slotBlock = new int[DEPTH];
            int[] free = new int[DEPTH];
            int freeCount = DEPTH;
            for (int i = 0; i < DEPTH; i++) {
                free[i] = i;
            }
            int next = 0;
            int completed = 0;
            boolean[] done = new boolean[WRITES];
            int reconnects = 0;
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (completed < WRITES) {
                assertTrue(System.nanoTime() < deadline, completed + " of " + WRITES + " writes completed");
                while (freeCount > 0 && next < WRITES) {
                    int slot = free[--freeCount];
                    for (int i = 0; i < BS / 8; i++) {
                        q.data(slot).set(ValueLayout.JAVA_LONG_UNALIGNED, 8L * i, word(next, i));
                    }
                    slotBlock[slot] = next;
                    assertTrue(q.submit(slot, VirtioBlk.T_OUT, (long) next * (BS / 512), BS));
                    next++;
                }
                q.flush();
                if (next >= 100 * (reconnects + 1) && reconnects < 3) {
                    // drop the connection with writes in flight; the back-end drains and waits for us
                    fe.close();
                    reconnects++;
                    long wait = System.nanoTime() + 5_000_000_000L;
                    while (server.isConnected() && System.nanoTime() < wait) {
                        Thread.onSpinWait();
                    }
                    // as QEMU after losing its back-end: restart the ring from the used index in memory
                    fe = connect(sock, mem, q, inflight, ((SplitDriverRing) q.ring()).usedIndexInRing());
                    q.flush();
                }
                int n = q.reap();
                for (int i = 0; i < n; i++) {
                    int slot = q.completedSlot(i);
                    assertEquals(VirtioBlk.S_OK, q.completedStatus(i));
                    assertFalse(done[slotBlock[slot]], "block " + slotBlock[slot] + " completed twice");
                    done[slotBlock[slot]] = true;
                    completed++;
                    free[freeCount++] = slot;
                }
            }
            assertEquals(3, reconnects);
            assertEquals(4, server.connections());
            // read everything back
            for (int b = 0; b < WRITES; b++) {
                q.data(0).fill((byte) 0);
                assertTrue(q.submit(0, VirtioBlk.T_IN, (long) b * (BS / 512), BS));
                q.flush();
                long wait = System.nanoTime() + 5_000_000_000L;
                while (q.reap() == 0) {
                    assertTrue(System.nanoTime() < wait, "read of block " + b);
                }
                assertEquals(VirtioBlk.S_OK, q.completedStatus(0));
                for (int i = 0; i < BS / 8; i++) {
                    assertEquals(word(b, i), q.data(0).get(ValueLayout.JAVA_LONG_UNALIGNED, 8L * i), "block " + b);
                }
            }
            fe.close();
        } finally {
            if (inflight[1] >= 0) {
                io.github.vduse4j.bindings.FileIo.close((int) inflight[1]);
            }
        }
    }

    /**
     * QEMU takes {@code used->idx} as the next SET_VRING_BASE when it notices the back-end is gone, and this
     * back-end goes on completing what it had popped until it has drained: the base the frontend sends can lag what
     * was used. Here the used index is read while a batch of slow writes is being executed, before the disconnect,
     * as a frontend that noticed first would. The reconnected ring must pop from where the used ring ended, not from
     * that base: each write completes once and the ring goes on. (This forces the race that made
     * {@link #reconnectingMidIoLosesNothing} stall now and then: "208 of 400 writes completed".)
     */
    @Test
    void aBaseReadBeforeTheDrainEndedExecutesNothingTwice() {
        Path sock = dir.resolve("s.sock");
        MemoryBackend memory = new MemoryBackend(64L * BS, false);
        VirtioBlkDevice dev = new VirtioBlkDevice(
                new FaultInjectingBackend(memory, FaultInjectingBackend.parse("delay:write:time=20ms"), 1),
                new VirtioBlkSettings(1, 256, 512, "rc", false));
        long[] inflight = {0, -1};
        try (VhostUserServer server = VhostUserServer.start(sock, dev, true);
             MemoryRegion mem = MemoryRegion.memfd(BlkQueue.memoryBytes(RING, DEPTH, BS), 0);
             BlkQueue q = new BlkQueue(mem, RING, DEPTH, BS)) {
            VhostUserFrontend fe = connect(sock, mem, q, inflight, 0);
            for (int slot = 0; slot < DEPTH; slot++) {
                for (int i = 0; i < BS / 8; i++) {
                    q.data(slot).set(ValueLayout.JAVA_LONG_UNALIGNED, 8L * i, word(slot, i));
                }
                assertTrue(q.submit(slot, VirtioBlk.T_OUT, (long) slot * (BS / 512), BS));
            }
            q.flush();
            long wait = System.nanoTime() + 5_000_000_000L;
            while (server.stats().isEmpty() || server.stats().get(0).inflight() == 0) {
                assertTrue(System.nanoTime() < wait, "the back-end never popped");
                Thread.onSpinWait();
            }
            int staleBase = ((SplitDriverRing) q.ring()).usedIndexInRing();
            assertTrue(staleBase < DEPTH, "read while writes were still being executed: " + staleBase);
            fe.close();
            while (server.isConnected()) {
                assertTrue(System.nanoTime() < wait, "the back-end never saw the disconnect");
                Thread.onSpinWait();
            }
            fe = connect(sock, mem, q, inflight, staleBase);
            q.flush();
            boolean[] done = new boolean[DEPTH];
            int completed = 0;
            wait = System.nanoTime() + 10_000_000_000L;
            while (completed < DEPTH) {
                assertTrue(System.nanoTime() < wait, completed + " of " + DEPTH + " writes completed");
                int n = q.reap();
                for (int i = 0; i < n; i++) {
                    int slot = q.completedSlot(i);
                    assertEquals(VirtioBlk.S_OK, q.completedStatus(i));
                    assertFalse(done[slot], "write " + slot + " completed twice");
                    done[slot] = true;
                    completed++;
                }
            }
            // the ring goes on: one more write, one used element for it and none besides
            for (int i = 0; i < BS / 8; i++) {
                q.data(0).set(ValueLayout.JAVA_LONG_UNALIGNED, 8L * i, word(DEPTH, i));
            }
            assertTrue(q.submit(0, VirtioBlk.T_OUT, (long) DEPTH * (BS / 512), BS));
            q.flush();
            int n;
            while ((n = q.reap()) == 0) {
                assertTrue(System.nanoTime() < wait, "the write after the reconnect");
            }
            assertEquals(1, n, "one used element for one write");
            assertEquals(0, q.completedSlot(0));
            assertEquals(DEPTH + 1, ((SplitDriverRing) q.ring()).usedIndexInRing(), "one used element per chain");
            for (int b = 0; b <= DEPTH; b++) {
                for (int i = 0; i < BS / 8; i++) {
                    assertEquals(word(b, i), memory.contents().get(ValueLayout.JAVA_LONG_UNALIGNED,
                            (long) b * BS + 8L * i), "block " + b);
                }
            }
            fe.close();
        } finally {
            if (inflight[1] >= 0) {
                io.github.vduse4j.bindings.FileIo.close((int) inflight[1]);
            }
        }
    }
}
