package io.github.vduse4j.engine.vduse;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.engine.TransportException;
import io.github.vduse4j.engine.inflight.TrackedVirtqueue;
import io.github.vduse4j.engine.vhostuser.EchoRequests;
import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.PackedDriver;
import io.github.vduse4j.ring.testkit.SplitDriver;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The VDUSE takeover without a kernel: a ring-test-kit driver, a {@link ReconnectLog} in a memfd, and device
 * instances built as {@link VduseDevice} builds them ({@link QueueRecovery}) that "crash" (are abandoned, nothing
 * drained) after a pop, after a completion, or between the ring's used-index store and its log record; the next
 * instance recovers from the rings and the log alone. Every request must come back exactly once with its own bytes.
 */
class ReconnectLogTest {
    private static final ReconnectLog.Identity ID = new ReconnectLog.Identity(0x1_3000_0000L, 1, 16, 512, 1 << 20,
            "file dev 2049 ino 12");

    private static ReconnectLog memfdLog(ReconnectLog.Identity id) {
        return ReconnectLog.create(null, FileIo.memfdCreate("reconnect-test", FileIo.MFD_CLOEXEC), id);
    }

    /** One device instance: the recovered queue plus the requests it holds (popped, not completed). */
    private static final class Instance {
        final TrackedVirtqueue q;
        final int resubmitted;
        final Map<Integer, Integer> held = new LinkedHashMap<>();
        final List<Integer> staged = new ArrayList<>();
        final DescriptorChain chain;
        final MemorySegment scratch = Arena.ofAuto().allocate(1 << 12);

        Instance(VirtqueueDriver d, ReconnectLog log, boolean packed) {
            QueueRecovery.Result r = packed
                    ? QueueRecovery.packed(0, d.size(), ((PackedDriver) d).descSegment(),
                            ((PackedDriver) d).driverEventSegment(), ((PackedDriver) d).deviceEventSegment(),
                            d.memory().table(), d.eventIdx(), d.indirect(), log.region(0), null)
                    : QueueRecovery.split(0, d.size(), ((SplitDriver) d).descSegment(),
                            ((SplitDriver) d).availSegment(), ((SplitDriver) d).usedSegment(), d.memory().table(),
                            d.eventIdx(), d.indirect(), log.region(0), null);
            q = r.queue();
            resubmitted = r.resubmitted();
            chain = new DescriptorChain(DescriptorChain.capacityFor(d.size()));
        }

        /** Pops up to {@code max} chains, echoing each at once; returns how many. */
        int pop(int max) {
            int n = 0;
            while (n < max) {
                int r = q.pop(chain);
                assertNotEquals(Virtqueue.NEEDS_RESET, r, "queue broken: " + q.brokenReason());
                assertNotEquals(Virtqueue.CHAIN_ERROR, r, "chain error " + chain.error());
                if (r == Virtqueue.EMPTY) {
                    break;
                }
                long len = Math.min(chain.readableLength(), scratch.byteSize());
                chain.readTo(0, scratch, 0, len);
                int written = (int) chain.writeFrom(scratch, 0, 0, len);
                assertNull(held.put(chain.id(), written), "id " + chain.id() + " handed out twice");
                n++;
            }
            return n;
        }

        /** Completes (stages) up to {@code max} held requests, chosen at random. */
        void complete(Random rnd, int max) {
            List<Integer> ids = new ArrayList<>(held.keySet());
            java.util.Collections.shuffle(ids, rnd);
            for (int k = 0; k < Math.min(max, ids.size()); k++) {
                int id = ids.get(k);
                q.complete(id, held.remove(id));
                staged.add(id);
            }
        }

        void publish() {
            q.publish();
            staged.clear();
        }

        /** The crash between the used-index store and its log record: the ring shows the batch, the log does not. */
        void publishWithoutLogRecord() {
            q.tracker().publishing(q.ring().lastUsedIndex(), q.ring().lastUsedWrapCounter());
            q.ring().publish();
        }
    }

    enum Crash { AFTER_POP, AFTER_COMPLETE, BETWEEN_USED_INDEX_AND_LOG, AFTER_PUBLISH }

    @ParameterizedTest(name = "packed={0} seed={1}")
    @CsvSource({"false,1", "false,2", "false,3", "true,1", "true,2", "true,3"})
    void randomCrashesLoseNothingAndCompleteEveryRequestOnce(boolean packed, long seed) {
        Random rnd = new Random(seed);
        VirtqueueDriver d = DriverConfig.of(16).dataRegions(1, 1 << 20).build(packed);
        try (ReconnectLog log = memfdLog(ID)) {
            EchoRequests req = new EchoRequests(d);
            log.formatQueue(0, 16, packed, 0, true);
            Instance dev = new Instance(d, log, packed);
            int crashes = 0;
            int resubmitted = 0;
            for (int step = 0; step < 3000; step++) {
                for (int k = rnd.nextInt(6); k > 0; k--) {
                    if (req.add(2 + rnd.nextInt(3)) < 0) {
                        break; // ring full
                    }
                }
                dev.pop(1 + rnd.nextInt(8));
                dev.complete(rnd, rnd.nextInt(6));
                int c = rnd.nextInt(10);
                if (c < 6) {
                    dev.publish();
                    req.reap();
                    continue;
                }
                Crash crash = Crash.values()[c - 6];
                switch (crash) {
                    case AFTER_POP -> dev.pop(2);
                    case AFTER_COMPLETE -> dev.complete(rnd, 3);
                    case BETWEEN_USED_INDEX_AND_LOG -> dev.publishWithoutLogRecord();
                    case AFTER_PUBLISH -> dev.publish();
                }
                req.reap(); // the driver sees whatever the crashed instance published
                dev = new Instance(d, log, packed); // kill -9 and restart: nothing drained
                crashes++;
                resubmitted += dev.resubmitted;
            }
            // drain: the last instance completes everything
            for (int k = 0; k < 100 && req.done().size() < req.added(); k++) {
                dev.pop(16);
                dev.complete(rnd, 16);
                dev.publish();
                req.reap();
            }
            assertEquals(req.added(), req.done().size(), "every request used exactly once");
            assertTrue(crashes > 500 && resubmitted > 100, crashes + " crashes, " + resubmitted + " resubmitted");
        } finally {
            d.close();
        }
    }

    /** Kill after pops: a new instance resubmits exactly the popped requests, oldest first, and pops on after them. */
    @ParameterizedTest(name = "packed={0}")
    @CsvSource({"false", "true"})
    void crashAfterPopResubmitsOldestFirst(boolean packed) {
        VirtqueueDriver d = DriverConfig.of(16).dataRegions(1, 1 << 20).build(packed);
        try (ReconnectLog log = memfdLog(ID)) {
            EchoRequests req = new EchoRequests(d);
            log.formatQueue(0, 16, packed, 0, true);
            Instance a = new Instance(d, log, packed);
            for (int k = 0; k < 5; k++) {
                req.add();
            }
            assertEquals(5, a.pop(5));
            List<Integer> order = new ArrayList<>(a.held.keySet());
            a.complete(new Random(1), 0);
            Instance b = new Instance(d, log, packed);
            assertEquals(5, b.resubmitted);
            req.add(); // a new request after the restart comes after the resubmitted ones
            assertEquals(6, b.pop(16));
            assertEquals(order, new ArrayList<>(b.held.keySet()).subList(0, 5));
            b.complete(new Random(2), 6);
            b.publish();
            assertEquals(6, req.reap());
        } finally {
            d.close();
        }
    }

    /** An upgrade stop drains: the next instance resubmits nothing and continues at the same positions. */
    @ParameterizedTest(name = "packed={0}")
    @CsvSource({"false", "true"})
    void drainedLogResubmitsNothing(boolean packed) {
        VirtqueueDriver d = DriverConfig.of(16).dataRegions(1, 1 << 20).build(packed);
        try (ReconnectLog log = memfdLog(ID)) {
            EchoRequests req = new EchoRequests(d);
            log.formatQueue(0, 16, packed, 0, true);
            Instance a = new Instance(d, log, packed);
            for (int round = 0; round < 7; round++) { // wrap the ring a few times
                for (int k = 0; k < 5; k++) {
                    req.add();
                }
                a.pop(16);
                a.complete(new Random(round), 16);
                a.publish();
                assertEquals(5, req.reap());
            }
            log.upgradeStop();
            Instance b = new Instance(d, log, packed);
            assertEquals(0, b.resubmitted);
            assertEquals(a.q.lastAvailIndex(), b.q.lastAvailIndex());
            assertEquals(a.q.lastUsedIndex(), b.q.lastUsedIndex());
            assertEquals(a.q.lastUsedWrapCounter(), b.q.lastUsedWrapCounter());
            req.add();
            assertEquals(1, b.pop(16));
            b.complete(new Random(9), 1);
            b.publish();
            assertEquals(1, req.reap());
        } finally {
            d.close();
        }
    }

    @Test
    void headerIsCheckedFieldByField() {
        int fd = FileIo.memfdCreate("reconnect-test", FileIo.MFD_CLOEXEC);
        ReconnectLog log = ReconnectLog.create(null, fd, ID);
        log.running(0x1_0000_0000L, 15);
        MemorySegment m = java.lang.foreign.Arena.ofAuto().allocate(ReconnectLog.fileSize(1, 16));
        assertEquals(ReconnectLog.fileSize(1, 16), FileIo.pread(fd, m, 0, m.byteSize(), 0));
        long size = m.byteSize();
        assertNull(ReconnectLog.mismatch(m, size, ID));
        assertTrue(ReconnectLog.mismatch(m, size, new ReconnectLog.Identity(0x1_3000_0000L | (1L << 34), 1, 16, 512,
                1 << 20, ID.backend())).contains("features"));
        assertTrue(ReconnectLog.mismatch(m, size, new ReconnectLog.Identity(ID.offeredFeatures(), 2, 16, 512,
                1 << 20, ID.backend())).contains("queues"));
        assertTrue(ReconnectLog.mismatch(m, size, new ReconnectLog.Identity(ID.offeredFeatures(), 1, 32, 512,
                1 << 20, ID.backend())).contains("queue size"));
        assertTrue(ReconnectLog.mismatch(m, size, new ReconnectLog.Identity(ID.offeredFeatures(), 1, 16, 4096,
                1 << 20, ID.backend())).contains("block size"));
        assertTrue(ReconnectLog.mismatch(m, size, new ReconnectLog.Identity(ID.offeredFeatures(), 1, 16, 512,
                2 << 20, ID.backend())).contains("capacity"));
        assertTrue(ReconnectLog.mismatch(m, size, new ReconnectLog.Identity(ID.offeredFeatures(), 1, 16, 512,
                1 << 20, "file dev 2049 ino 13")).contains("backend"));
        m.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 0, 0L);
        assertTrue(ReconnectLog.mismatch(m, size, ID).contains("magic"));
        log.close();
    }

    @Test
    void openRefusesAnotherConfigurationAndLeavesTheLogAlone() throws Exception {
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("reconnect-log");
        java.nio.file.Path p = dir.resolve("inflight");
        try {
            ReconnectLog.create(p, ID).close();
            byte[] before = java.nio.file.Files.readAllBytes(p);
            ReconnectLog.Identity other = new ReconnectLog.Identity(ID.offeredFeatures(), 2, 16, 512, 1 << 20,
                    ID.backend());
            TransportException e = assertThrows(TransportException.class, () -> ReconnectLog.open(p, other));
            assertTrue(e.getMessage().contains("1 queues logged, 2 now"), e.getMessage());
            // another queue count offers VIRTIO_BLK_F_MQ as well: the count is named, not the feature bits
            ReconnectLog.Identity mq = new ReconnectLog.Identity(ID.offeredFeatures() | (1L << 12), 2, 16, 512,
                    1 << 20, ID.backend());
            e = assertThrows(TransportException.class, () -> ReconnectLog.open(p, mq));
            assertTrue(e.getMessage().contains("1 queues logged, 2 now"), e.getMessage());
            assertArrayEquals(before, java.nio.file.Files.readAllBytes(p));
            try (ReconnectLog same = ReconnectLog.open(p, ID)) {
                assertEquals(ReconnectLog.STATE_CREATED, same.state());
            }
        } finally {
            java.nio.file.Files.deleteIfExists(p);
            java.nio.file.Files.deleteIfExists(dir);
        }
    }

    /** After a resize the log holds the new capacity: a takeover at the new size opens it, one at the old is refused. */
    @Test
    void resizeRecordsTheNewCapacityForTheNextProcess() throws Exception {
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("reconnect-log");
        java.nio.file.Path p = dir.resolve("inflight");
        ReconnectLog.Identity grown = new ReconnectLog.Identity(ID.offeredFeatures(), 1, 16, 512, 2 << 20,
                ID.backend());
        try {
            try (ReconnectLog log = ReconnectLog.create(p, ID)) {
                assertThrows(TransportException.class, () -> ReconnectLog.open(p, grown));
                log.capacity(2 << 20);
            }
            TransportException e = assertThrows(TransportException.class, () -> ReconnectLog.open(p, ID));
            assertTrue(e.getMessage().contains("capacity 2097152 bytes logged, 1048576 now"), e.getMessage());
            try (ReconnectLog same = ReconnectLog.open(p, grown)) {
                assertEquals(ReconnectLog.STATE_CREATED, same.state());
            }
        } finally {
            java.nio.file.Files.deleteIfExists(p);
            java.nio.file.Files.deleteIfExists(dir);
        }
    }

    /** A region whose packed free list loops is refused, not repaired (that would invent a ring position). */
    @Test
    void corruptPackedRegionIsRefused() {
        PackedDriver d = DriverConfig.of(16).dataRegions(1, 1 << 20).packed();
        try (ReconnectLog log = memfdLog(ID)) {
            log.formatQueue(0, 16, true, 0, true);
            MemorySegment r = log.region(0);
            r.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED,
                    io.github.vduse4j.engine.inflight.PackedInflightTracker.HEADER + 32L * 3
                            + io.github.vduse4j.engine.inflight.PackedInflightTracker.D_NEXT, (short) 1);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> new Instance(d, log, true));
            assertTrue(e.getMessage().contains("cycle"), e.getMessage());
        } finally {
            d.close();
        }
    }
}
