package io.github.vduse4j.blockdev.bridge;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.blockdev.backend.MemoryBackend;
import io.github.vduse4j.blockdev.vhostuser.QemuStorageDaemon;
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
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.RegionTable;
import io.github.vduse4j.ring.VirtioRing;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.DriverMemory;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The bridge's relay without the kernel: the device side is the ring test kit's Linux-like driver (split or packed),
 * whose request buffers live in a "bounce" memfd that is also the target's memory region 0 at GPA 0 (as the VDUSE
 * bounce region is); the target is vduse4j's own vhost-user-blk back-end over a real Unix socket, reached through the
 * engine's frontend core (split target ring, indirect tables in a second region, completions by its call eventfd),
 * or qemu-storage-daemon exporting a file. Writes and reads relay with their data (reads land in the device side's
 * own buffers: the relay has none), a chain whose buffer lies outside the bounce region fails alone with IOERR, and
 * requests in flight when the target is restarted (qemu-storage-daemon: SIGKILL) are resubmitted and complete; the
 * file is checked directly afterwards.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class RelayQueueHandlerTest {
    private static final int BS = 4096, QSIZE = 64, DEPTH = 16, BLOCKS = 128, MAX_ELEMENTS = 8;
    private static final long BOUNCE = 1L << 20, RING_BYTES = 16 * 4096L + QSIZE * MAX_ELEMENTS * 16L;
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long PROTOCOL = (1L << VhostUserProtocol.PF_MQ) | (1L << VhostUserProtocol.PF_REPLY_ACK)
            | (1L << VhostUserProtocol.PF_CONFIG);
    private static final long WANTED = VirtioBlk.bit(VirtioBlk.F_VERSION_1) | (1L << VhostUserProtocol.F_PROTOCOL_FEATURES)
            | (1L << VirtioRing.F_EVENT_IDX) | (1L << VirtioRing.F_INDIRECT_DESC);

    @TempDir
    Path dir;

    /** The device side, the bounce region, the target and the relay between them. */
    private static final class Rig implements AutoCloseable {
        final VirtqueueDriver driver;
        final Virtqueue deviceQueue;
        // the bridge's layout: one memfd, the bounce part as region 0 at GPA 0 and the rings in its tail as region 1
        // at VhostUserBridge.RING_GPA (1 TiB), both regions announced with the same fd
        final int memfd = sharedMemfd();
        final MemoryRegion bounce = MemoryRegion.map(memfd, false, 0, BOUNCE, 0);
        final MemoryRegion rings = MemoryRegion.map(memfd, true, BOUNCE, RING_BYTES, VhostUserBridge.RING_GPA);
        final VhostFrontend fe;
        final FrontendQueue target;
        final RelayQueueHandler relay;
        final Poll poll = new Poll(1);
        final UsedBuffer used = new UsedBuffer();

        Rig(Path sock, boolean packed) {
            driver = DriverConfig.of(QSIZE).indirect(true).eventIdx(true).build(packed);
            DriverMemory m = driver.memory();
            // the device side sees the driver's rings and tables, and the bounce memfd as its data area
            RegionTable table = RegionTable.builder()
                    .add(DriverMemory.RING_BASE, m.ringSegment(), GuestMemory.READ | GuestMemory.WRITE)
                    .add(DriverMemory.TABLE_BASE, m.tableSegment(), GuestMemory.READ | GuestMemory.WRITE)
                    .add(DriverMemory.DATA_BASE, bounce.segment(), GuestMemory.READ | GuestMemory.WRITE).build();
            deviceQueue = driver.newDeviceQueue(table);
            fe = VhostFrontend.open(() -> VhostUserFrontend.open(sock, PROTOCOL, Duration.ofSeconds(10)), WANTED,
                    WANTED & ~(1L << VirtioRing.F_EVENT_IDX));
            target = new FrontendQueue(fe.newRing(rings, QSIZE, MAX_ELEMENTS));
            fe.start(MemoryTable.of(bounce, rings), target);
            relay = new RelayQueueHandler(target, QSIZE, MAX_ELEMENTS, bounce.segment(), DriverMemory.DATA_BASE, bounce.gpa());
            poll.add(target.callFd(), Poll.POLLIN);
        }

        private static int sharedMemfd() {
            int fd = FileIo.memfdCreate("relay-shared", FileIo.MFD_CLOEXEC);
            FileIo.ftruncate(fd, BOUNCE + RING_BYTES);
            return fd;
        }

        /** Slot k: header at k * 64, status at k * 64 + 16, data at 64 KiB + k * BS (bounce offsets). */
        long header(int slot) { return 64L * slot; }
        long data(int slot) { return (64L << 10) + (long) slot * BS; }

        void submit(int slot, int type, long block, long dataAddr) {
            MemorySegment b = bounce.segment();
            b.set(LE_INT, header(slot), type);
            b.set(LE_INT, header(slot) + 4, 0);
            b.set(LE_LONG, header(slot) + 8, block * (BS / 512));
            b.set(ValueLayout.JAVA_BYTE, header(slot) + 16, (byte) 0xff);
            var c = driver.chain().readable(DriverMemory.DATA_BASE + header(slot), 16);
            if (type == VirtioBlk.T_OUT) {
                c.readable(dataAddr, BS);
            } else {
                c.writable(dataAddr, BS);
            }
            assertTrue(c.writable(DriverMemory.DATA_BASE + header(slot) + 16, 1).add(slot) >= 0);
        }

        int status(int slot) { return bounce.segment().get(ValueLayout.JAVA_BYTE, header(slot) + 16) & 0xff; }

        /** Runs the relay as its poller would (sleeping on the target's call eventfd) until n completions reaped. */
        long[] complete(int n) {
            long[] slots = new long[n];
            int got = 0;
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (got < n) {
                assertTrue(System.nanoTime() < deadline, got + " of " + n + " completed");
                int work = relay.process(deviceQueue, 64);
                deviceQueue.publish();
                while (driver.reap(used)) {
                    slots[got++] = used.token;
                }
                if (work == 0 && got < n && relay.inflight() > 0) {
                    poll.poll(100);   // the target's call eventfd
                }
            }
            return slots;
        }

        @Override
        public void close() {
            fe.close();
            target.close();
            bounce.close();
            rings.close();   // closes the memfd
            driver.close();
        }
    }

    private static long word(long block, int i, int pattern) {
        return (block * 1_000_003L + i + pattern * 7919L) * 0x9E3779B97F4A7C15L;
    }

    private static void writeWindow(Rig r, long window, int pattern) {
        for (int slot = 0; slot < DEPTH; slot++) {
            for (int w = 0; w < BS / 8; w++) {
                r.bounce.segment().set(LE_LONG, r.data(slot) + 8L * w, word(window + slot, w, pattern));
            }
            r.submit(slot, VirtioBlk.T_OUT, window + slot, DriverMemory.DATA_BASE + r.data(slot));
        }
        r.driver.kickPrepare();
    }

    private static void checkWindow(Rig r, long window, int pattern) {
        for (int slot = 0; slot < DEPTH; slot++) {
            r.bounce.segment().asSlice(r.data(slot), BS).fill((byte) 0);
            r.submit(slot, VirtioBlk.T_IN, window + slot, DriverMemory.DATA_BASE + r.data(slot));
        }
        r.driver.kickPrepare();
        for (long s : r.complete(DEPTH)) {
            int slot = (int) s;
            assertEquals(VirtioBlk.S_OK, r.status(slot));
            for (int w = 0; w < BS / 8; w++) {
                assertEquals(word(window + slot, w, pattern), r.bounce.segment().get(LE_LONG, r.data(slot) + 8L * w),
                        "block " + (window + slot) + " word " + w);
            }
        }
    }

    /** The vhost-user-blk target: vduse4j's own back-end or qemu-storage-daemon, on one socket, restartable. */
    private final class Target implements AutoCloseable {
        final boolean qsd;
        final Path sock = dir.resolve("t.sock");
        final Path image = dir.resolve("t.img");
        final MemoryBackend disk = new MemoryBackend(BLOCKS * (long) BS, false);
        final VirtioBlkSettings settings = new VirtioBlkSettings(1, 256, 512, "relay", false);
        VhostUserServer server;
        Process process;

        Target(boolean qsd) throws Exception {
            this.qsd = qsd;
            if (qsd) {
                try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
                    f.setLength(BLOCKS * (long) BS);
                }
            }
            start();
        }

        void start() throws Exception {
            if (qsd) {
                process = QemuStorageDaemon.start(image, sock, 1, dir.resolve("qsd.log"));
            } else {
                server = VhostUserServer.start(sock, new VirtioBlkDevice(disk, settings), true);
            }
        }

        /** Stops the target now and starts it again {@code millis} later, from another thread. */
        void restartAfter(int millis) throws Exception {
            if (qsd) {
                QemuStorageDaemon.kill(process);
            } else {
                server.close();
            }
            Thread.sleep(millis);
            start();
        }

        /** Ours stops after draining; qemu-storage-daemon is killed with whatever it had in flight. */
        void restart() throws Exception {
            if (qsd) {
                QemuStorageDaemon.kill(process);
            } else {
                server.close();
            }
            start();
        }

        @Override
        public void close() throws Exception {
            if (qsd) {
                QemuStorageDaemon.kill(process);
            } else {
                server.close();
            }
        }
    }

    @ParameterizedTest(name = "packed={0} target={1}")
    @CsvSource({"false,ours", "true,ours", "false,qemu-storage-daemon", "true,qemu-storage-daemon"})
    void relaysFailsForeignBuffersAndSurvivesATargetRestart(boolean packed, String kind) throws Exception {
        boolean qsd = kind.equals("qemu-storage-daemon");
        Assumptions.assumeTrue(!qsd || QemuStorageDaemon.installed(), "qemu-storage-daemon is not installed");
        try (Target t = new Target(qsd); Rig r = new Rig(t.sock, packed)) {
            for (long window = 0; window < BLOCKS; window += DEPTH) {
                writeWindow(r, window, 1);
                for (long s : r.complete(DEPTH)) {
                    assertEquals(VirtioBlk.S_OK, r.status((int) s));
                }
            }
            // reads land where the device side's buffers are: the target wrote into the bounce memory itself
            for (long window = 0; window < BLOCKS; window += DEPTH) {
                checkWindow(r, window, 1);
            }
            assertTrue(r.target.calls() > 0, "target completions came by its call eventfd");

            // a data buffer in the device side's ring memory: mapped for the device, but not bounce memory
            r.submit(0, VirtioBlk.T_IN, 0, DriverMemory.RING_BASE);
            r.driver.kickPrepare();
            assertEquals(0, r.complete(1)[0]);
            assertEquals(VirtioBlk.S_IOERR, r.status(0), "the foreign chain failed alone");
            assertEquals(1, r.relay.outsideBounce());
            checkWindow(r, 0, 1);   // and the queue goes on

            // a chain the device side cannot walk (a buffer outside all its memory): given back with length 0,
            // counted as a chain error and never as a request in flight
            long requests = r.relay.stats().requests();
            r.driver.chain().readable(DriverMemory.DATA_BASE + r.header(1), 16).writable(0x7fff_0000_0000L, BS)
                    .writable(DriverMemory.DATA_BASE + r.header(1) + 16, 1).add(1);
            r.driver.kickPrepare();
            assertEquals(1, r.complete(1)[0]);
            assertEquals(1, r.relay.stats().chainErrors());
            assertEquals(requests, r.relay.stats().requests());
            assertEquals(0, r.relay.stats().inflight(), "in flight: " + r.relay.stats().inflight());

            // writes in flight at the target, which then goes away and comes back
            writeWindow(r, 0, 2);
            r.relay.process(r.deviceQueue, 64);
            assertEquals(DEPTH, r.relay.inflight(), "all posted to the target");
            t.restart();
            r.fe.reconnect();
            assertEquals(DEPTH, r.relay.resubmitAll(), "every outstanding request posted again");
            for (long s : r.complete(DEPTH)) {
                assertEquals(VirtioBlk.S_OK, r.status((int) s));
            }
            assertEquals(0, r.relay.inflight());
            checkWindow(r, 0, 2);
            checkWindow(r, DEPTH, 1);
            assertEquals(0, r.target.ring().deviceFaults(), r.target.ring().firstDeviceFault());
            assertEquals(0, r.deviceQueue.inflight());
            // zero copy: every payload byte went by descriptor, none through the chain's copy helpers
            assertTrue(r.relay.relayedBytes() >= 2L * BLOCKS * BS, "bytes relayed: " + r.relay.relayedBytes());
            assertEquals(0, r.relay.copiedBytes());

            // writes posted to a target that then goes away for good and leaves a used index it never wrote
            t.close();
            writeWindow(r, 0, 3);
            r.relay.process(r.deviceQueue, 64);
            assertEquals(DEPTH, r.relay.inflight());
            MemorySegment used = r.target.ring().deviceArea();
            used.set(ValueLayout.JAVA_SHORT_UNALIGNED, VirtioRing.USED_IDX,
                    (short) (used.get(ValueLayout.JAVA_SHORT_UNALIGNED, VirtioRing.USED_IDX) + DEPTH + 5));
            EventFd.signal(r.target.callFd());
            for (long s : r.complete(DEPTH)) {
                assertEquals(VirtioBlk.S_IOERR, r.status((int) s), "failed, not hung");
            }
            assertTrue(r.target.ring().broken());
            assertEquals(0, r.relay.inflight());
            t.start();   // for the closing of the try
        }
        if (qsd) {
            // the target's file itself: the second pattern in the first window, the first elsewhere
            ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(dir.resolve("t.img"))).order(ByteOrder.LITTLE_ENDIAN);
            for (int block = 0; block < BLOCKS; block++) {
                for (int w = 0; w < BS / 8; w++) {
                    assertEquals(word(block, w, block < DEPTH ? 2 : 1), b.getLong(block * BS + 8 * w),
                            "file block " + block);
                }
            }
        }
    }

    /**
     * The relay on a poller thread of its own (as the bridge runs it) while the driver keeps writes in flight; the
     * target hangs up (qemu-storage-daemon: SIGKILL) and comes back 300 ms later; the {@link TargetWatch} pauses the
     * relay, reconnects and resubmits: every write completes with OK and the disk holds all of them.
     */
    @ParameterizedTest(name = "target={0}")
    @CsvSource({"ours", "qemu-storage-daemon"})
    void aTargetWatchRidesOutARestartUnderLoad(String kind) throws Exception {
        boolean qsd = kind.equals("qemu-storage-daemon");
        Assumptions.assumeTrue(!qsd || QemuStorageDaemon.installed(), "qemu-storage-daemon is not installed");
        try (Target t = new Target(qsd); Rig r = new Rig(t.sock, false)) {
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            Thread poller = Thread.ofPlatform().name("relay-poller").start(() -> {
                Poll wait = new Poll(1);
                wait.add(r.target.callFd(), Poll.POLLIN);
                while (!stop.get()) {
                    if (r.relay.process(r.deviceQueue, 64) > 0) {
                        r.deviceQueue.publish();
                    } else if (r.relay.inflight() > 0) {
                        wait.poll(-1);   // as QueuePoller: sleep until the target calls
                    } else {
                        Thread.onSpinWait();
                    }
                }
            });
            try (TargetWatch watch = new TargetWatch(r.fe, () -> java.util.List.of(r.relay), m -> { })) {
                int inFlight = 0;
                int done = 0;
                long next = 0;
                boolean restarted = false;
                long deadline = System.nanoTime() + 40_000_000_000L;
                while (done < 4 * BLOCKS) {
                    assertTrue(System.nanoTime() < deadline, done + " writes completed, " + watch.failure());
                    while (inFlight < DEPTH && next < 4 * BLOCKS) {
                        int slot = (int) (next % DEPTH);
                        long block = next % BLOCKS;
                        for (int w = 0; w < BS / 8; w++) {
                            r.bounce.segment().set(LE_LONG, r.data(slot) + 8L * w, word(block, w, 1 + (int) (next / BLOCKS)));
                        }
                        r.submit(slot, VirtioBlk.T_OUT, block, DriverMemory.DATA_BASE + r.data(slot));
                        inFlight++;
                        next++;
                        if (inFlight == DEPTH) {
                            break;
                        }
                    }
                    if (!restarted && next >= 2 * BLOCKS) {
                        restarted = true;
                        t.restartAfter(300);
                    }
                    // a window at a time: slot k is block next - DEPTH + k
                    while (inFlight > 0) {
                        assertTrue(System.nanoTime() < deadline, done + " writes completed, " + watch.failure());
                        while (r.driver.reap(r.used)) {
                            assertEquals(VirtioBlk.S_OK, r.status((int) r.used.token), "write " + (done + 1));
                            inFlight--;
                            done++;
                        }
                        Thread.onSpinWait();
                    }
                }
                assertEquals(1, watch.reconnects(), "one reconnection");
            } finally {
                stop.set(true);
                poller.join(10_000);
            }
            // the last pass (pattern 4) is what every block holds
            checkWindow(r, 0, 4);
            checkWindow(r, BLOCKS - DEPTH, 4);
        }
        if (qsd) {
            ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(dir.resolve("t.img"))).order(ByteOrder.LITTLE_ENDIAN);
            for (int block = 0; block < BLOCKS; block++) {
                for (int w = 0; w < BS / 8; w++) {
                    assertEquals(word(block, w, 4), b.getLong(block * BS + 8 * w), "file block " + block);
                }
            }
        }
    }
}
