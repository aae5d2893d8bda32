package io.github.vduse4j.blockdev.vhostuser;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.blockdev.BlockExport;
import io.github.vduse4j.blockdev.backend.FaultInjectingBackend;
import io.github.vduse4j.blockdev.backend.MemoryBackend;
import io.github.vduse4j.blockdev.bench.BlkQueue;
import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.engine.frontend.FrontendQueue;
import io.github.vduse4j.engine.frontend.MemoryRegion;
import io.github.vduse4j.engine.frontend.MemoryTable;
import io.github.vduse4j.engine.frontend.VhostFrontend;
import io.github.vduse4j.engine.frontend.VhostUserFrontend;
import io.github.vduse4j.engine.vhostuser.VhostUserProtocol;
import io.github.vduse4j.ring.VirtioRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A resize while the datapath is stalled in the backend (the guest check of scripts/e2e/faults.sh, on the host over
 * vhost-user): an export whose backend is wrapped in {@link FaultInjectingBackend} with a {@code delay} rule holds its
 * queue thread inside {@code submit}; {@link BlockExport#resize(long)} must take effect at once (backend capacity and
 * the config space the frontend reads), and the stalled request must complete after about the delay asked for.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FaultStallResizeTest {
    private static final int BS = 4096, DEPTH = 4, RING = 64;
    private static final long SIZE = 1 << 20, SMALLER = 512 << 10, RING_GPA = 64L << 20, STALL_MS = 2000;
    private static final long PROTOCOL = (1L << VhostUserProtocol.PF_MQ) | (1L << VhostUserProtocol.PF_REPLY_ACK)
            | (1L << VhostUserProtocol.PF_CONFIG);
    private static final long WANTED = VirtioBlk.bit(VirtioBlk.F_VERSION_1) | (1L << VhostUserProtocol.F_PROTOCOL_FEATURES)
            | (1L << VirtioRing.F_EVENT_IDX) | VirtioBlk.bit(VirtioBlk.F_MQ);

    @TempDir
    Path dir;

    private static long capacitySectors(VhostFrontend fe) {
        return MemorySegment.ofArray(fe.config(0, 8)).get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
    }

    @Test
    void aResizeDuringABackendStallTakesEffectAtOnceAndTheStallEndsOnTime() throws Exception {
        Path sock = dir.resolve("stall.sock");
        MemoryBackend memory = new MemoryBackend(SIZE, false);
        FaultInjectingBackend faulty = new FaultInjectingBackend(memory,
                FaultInjectingBackend.parse("delay:read:range=0-4K:time=" + STALL_MS + "ms:count=1"), 7);
        try (BlockExport export = BlockExport.builder().transport(BlockExport.Transport.VHOST_USER).socket(sock)
                     .backend(faulty).name("stall").queues(1).runDirectory(dir.resolve("run")).start();
             MemoryRegion data = MemoryRegion.memfd(DEPTH * (BS + 4096L) + 4096, 0);
             MemoryRegion rings = MemoryRegion.memfd(8 * 4096L + RING * 8L * 16, RING_GPA);
             VhostFrontend fe = VhostFrontend.open(() -> VhostUserFrontend.open(sock, PROTOCOL, Duration.ofSeconds(10)),
                     WANTED, VirtioBlk.bit(VirtioBlk.F_VERSION_1));
             BlkQueue q = new BlkQueue(new FrontendQueue(fe.newRing(rings, RING, 8)), data, DEPTH, BS)) {
            assertEquals(SIZE / 512, capacitySectors(fe));
            fe.start(MemoryTable.of(data, rings), q.queue());

            // a read of block 0: the queue thread stalls inside the backend's submit
            long t0 = System.nanoTime();
            assertTrue(q.submit(0, VirtioBlk.T_IN, 0, BS));
            q.flush();
            while (faulty.delaysInjected() == 0) {
                assertTrue(System.nanoTime() - t0 < 10_000_000_000L, "the stalled read reached the backend");
                Thread.sleep(5);
            }

            // resize while the stall lasts: backend, device and the config space the frontend reads
            assertEquals(SMALLER, export.resize(SMALLER));
            assertEquals(SMALLER, export.capacity());
            assertEquals(SMALLER, faulty.capacity());
            assertEquals(SMALLER, memory.capacity(), "the wrapped backend was resized, not only the wrapper asked");
            assertEquals(SMALLER / 512, capacitySectors(fe), "GET_CONFIG answered with the new size during the stall");
            long resized = System.nanoTime() - t0;
            assertTrue(resized < STALL_MS * 1_000_000L, "everything above happened while the read was stalled ("
                    + resized / 1_000_000 + " ms of a " + STALL_MS + " ms stall)");
            assertEquals(0, q.reap(), "the stalled read is still outstanding");

            // the stall ends after the delay asked for, not a restarted or added one
            assertTrue(q.queue().awaitUsed(10_000), "the stalled read completed");
            long took = System.nanoTime() - t0;
            assertEquals(1, q.reap());
            assertEquals(VirtioBlk.S_OK, q.completedStatus(0));
            assertTrue(took >= STALL_MS * 1_000_000L, "stalled " + took / 1_000_000 + " ms");
            assertTrue(took < (STALL_MS + 3000) * 1_000_000L, "a " + STALL_MS + " ms stall took " + took / 1_000_000 + " ms");
            assertEquals(1, faulty.delaysInjected());
            assertEquals(STALL_MS * 1_000_000L, faulty.delayNanos());

            // the device serves the new size: a read past it is refused, one inside it succeeds
            assertTrue(q.submit(1, VirtioBlk.T_IN, SMALLER / 512, BS));
            assertTrue(q.submit(2, VirtioBlk.T_IN, (SMALLER - BS) / 512, BS));
            q.flush();
            int done = 0, ioerr = 0, ok = 0;
            while (done < 2) {
                assertTrue(q.queue().awaitUsed(10_000));
                int n = q.reap();
                for (int i = 0; i < n; i++) {
                    if (q.completedSlot(i) == 1 && q.completedStatus(i) == VirtioBlk.S_IOERR) ioerr++;
                    if (q.completedSlot(i) == 2 && q.completedStatus(i) == VirtioBlk.S_OK) ok++;
                }
                done += n;
            }
            assertEquals(1, ioerr, "a read past the new end fails");
            assertEquals(1, ok, "a read inside the new size succeeds");
            fe.stop();
        }
    }
}
