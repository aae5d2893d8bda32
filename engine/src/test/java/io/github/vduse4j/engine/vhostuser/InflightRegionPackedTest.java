package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.engine.inflight.PackedInflightTracker;

import static io.github.vduse4j.engine.inflight.PackedInflightTracker.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.VirtioRing;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.PackedDriver;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The packed layout of the inflight buffer, driven through {@link VringQueue} as a poller drives it: pops, completions
 * in any order and publications recorded; a restarted back-end (a new instance over the same ring and buffer)
 * resubmits exactly what was in flight, from the saved copies, in counter order, whatever point the crash hit;
 * corrupt buffers yield nothing to resubmit, never an exception.
 */
class InflightRegionPackedTest {
    private static final int SIZE = 8;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;
    private final PackedDriver driver = DriverConfig.of(SIZE).dataRegions(1, 1 << 20).packed();
    private final InflightRegion region = InflightRegion.create(1, SIZE);
    private final MemorySegment s = region.queueSegment(0);
    private final EchoRequests req = new EchoRequests(driver);

    @AfterEach
    void close() {
        region.close();
        driver.close();
    }

    private static int base(int avail, boolean availWrap, int used, boolean usedWrap) {
        return (avail | (availWrap ? 0x8000 : 0)) | (used | (usedWrap ? 0x8000 : 0)) << 16;
    }

    /**
     * SET_VRING_BASE of a frontend that lost its back-end: the avail position where the back-end stopped popping,
     * and a used position equal to it (stale whenever lists were in flight: only the buffer knows better).
     */
    private static int crashBase(TrackedBackend b) {
        Virtqueue r = b.ring();
        return base(r.lastAvailIndex(), r.lastAvailWrapCounter(), r.lastAvailIndex(), r.lastAvailWrapCounter());
    }

    private TrackedBackend start(int base) {
        return TrackedBackend.packed(driver, region, base);
    }

    private TrackedBackend fresh() {
        return start(base(0, true, 0, true)); // QEMU's fresh packed ring: indexes 0, wrap counters 1
    }

    private int u16(long off) {
        return s.get(U16, off) & 0xffff;
    }

    private int u8(long off) {
        return s.get(ValueLayout.JAVA_BYTE, off) & 0xff;
    }

    private static long desc(int i) {
        return HEADER + (long) DESC * i;
    }

    private List<Integer> inflightHeads() {
        List<Integer> heads = new ArrayList<>();
        for (int i = 0; i < SIZE; i++) {
            if (u8(desc(i) + D_INFLIGHT) == 1) {
                heads.add(i);
            }
        }
        return heads;
    }

    /** The buffer after everything was used: nothing in flight, committed = current, every entry free. */
    private void assertQuiet(TrackedBackend b) {
        assertEquals(List.of(), inflightHeads());
        assertEquals(u16(USED_IDX), u16(OLD_USED_IDX));
        assertEquals(u8(USED_WRAP), u8(OLD_USED_WRAP));
        assertEquals(u16(FREE_HEAD), u16(OLD_FREE_HEAD));
        assertEquals(b.ring().lastUsedIndex(), u16(OLD_USED_IDX));
        assertEquals(b.ring().lastUsedWrapCounter() ? 1 : 0, u8(OLD_USED_WRAP));
        boolean[] seen = new boolean[SIZE];
        int n = 0;
        for (int e = u16(FREE_HEAD); e < SIZE; e = u16(desc(e) + D_NEXT)) {
            assertFalse(seen[e], "free list cycle");
            seen[e] = true;
            n++;
        }
        assertEquals(SIZE, n, "every entry is free");
    }

    @Test
    void outOfOrderCompletionIsResubmittedFromTheCopiesAfterTheDriverReusedTheSlots() {
        TrackedBackend b1 = fresh();
        long t0 = req.add(), t1 = req.add(), t2 = req.add();
        assertEquals(List.of(req.id(t0), req.id(t1), req.id(t2)), b1.popAll());
        assertEquals(3, inflightHeads().size());
        b1.complete(req.id(t1));
        b1.queue.publish();
        assertEquals(2, inflightHeads().size());
        assertEquals(2, u16(OLD_USED_IDX));
        int crash = crashBase(b1);
        // the back-end dies; the driver reaps request 1 and puts 3 in slots 6-7 and 4 in slots 0-1 (request 0's)
        assertEquals(1, req.reap());
        req.forgetOutputs();
        long t3 = req.add(), t4 = req.add();
        assertEquals(2, driver.nextAvail());

        TrackedBackend b2 = start(crash);
        assertEquals(List.of(req.id(t0), req.id(t2), req.id(t3), req.id(t4)), b2.popAll());
        assertEquals(2, b2.ring().lastUsedIndex(), "used position from the buffer, not the frontend's stale one");
        b2.completeAll();
        assertEquals(4, req.reap());
        assertEquals(5, req.done().size());
        assertQuiet(b2);
    }

    @Test
    void resubmissionFollowsTheCounterNotTheEntryIndex() {
        TrackedBackend b1 = fresh();
        long t0 = req.add(), t1 = req.add();
        b1.popAll();
        b1.complete(req.id(t0));
        b1.queue.publish();
        req.reap();
        long t2 = req.add();
        assertEquals(List.of(req.id(t2)), b1.popAll());
        // request 2 reused request 0's entries: its head has a lower index but a higher counter than request 1's
        List<Integer> heads = inflightHeads();
        assertEquals(2, heads.size());
        long c0 = s.get(U64, desc(heads.get(0)) + D_COUNTER);
        long c1 = s.get(U64, desc(heads.get(1)) + D_COUNTER);
        assertTrue(c0 > c1, "the lower entry holds the later request");
        int crash = crashBase(b1);
        req.forgetOutputs();

        TrackedBackend b2 = start(crash);
        assertEquals(List.of(req.id(t1), req.id(t2)), b2.popAll());
        b2.completeAll();
        assertEquals(2, req.reap());
        assertQuiet(b2);
    }

    /** Completes {@code ids}, then runs the publication of the poller only up to {@code stage}. */
    private static void publishUpTo(TrackedBackend b, int stage, int... ids) {
        for (int id : ids) {
            b.complete(id);
        }
        Virtqueue r = b.ring();
        if (stage >= 3) {
            b.queue.publish();
            return;
        }
        b.tracker.publishing(r.lastUsedIndex(), r.lastUsedWrapCounter());
        if (stage >= 2) {
            r.publish();
        }
    }

    @Test
    void crashAfterTheRingShowedTheUsedElementsCommitsThem() {
        TrackedBackend b1 = fresh();
        long t0 = req.add(), t1 = req.add(), t2 = req.add();
        b1.popAll();
        publishUpTo(b1, 2, req.id(t0));
        assertNotEquals(u16(USED_IDX), u16(OLD_USED_IDX), "a publication was under way");
        int crash = crashBase(b1);
        assertEquals(1, req.reap());
        req.forgetOutputs();

        TrackedBackend b2 = start(crash);
        assertEquals(List.of(req.id(t1), req.id(t2)), b2.popAll(), "request 0 reached the driver: not again");
        b2.completeAll();
        assertEquals(2, req.reap());
        assertQuiet(b2);
    }

    @Test
    void crashAfterTheRingShowedThemAndTheDriverReusedTheSlotCommitsThem() {
        TrackedBackend b1 = fresh();
        long t0 = req.add(), t1 = req.add(), t2 = req.add();
        b1.popAll();
        publishUpTo(b1, 2, req.id(t0));
        int crash = crashBase(b1);
        assertEquals(1, req.reap());
        req.forgetOutputs();
        long t3 = req.add(), t4 = req.add();   // 4 lands in slot 0: available for the next lap now
        assertEquals(VirtioRing.PACKED_DESC_F_USED,
                driver.raw().flags(0) & (VirtioRing.PACKED_DESC_F_AVAIL | VirtioRing.PACKED_DESC_F_USED));

        TrackedBackend b2 = start(crash);
        assertEquals(List.of(req.id(t1), req.id(t2), req.id(t3), req.id(t4)), b2.popAll());
        b2.completeAll();
        assertEquals(4, req.reap());
        assertEquals(5, req.done().size());
        assertQuiet(b2);
    }

    @Test
    void usedElementsTheCrashedBackEndStagedAreNotSeenBehindNewOnes() {
        TrackedBackend b1 = fresh();
        long t0 = req.add(), t1 = req.add(), t2 = req.add();
        b1.popAll();
        b1.complete(req.id(t1));   // staged first: no flags yet
        b1.complete(req.id(t2));   // staged second: written whole, used flags included (slot 2)
        assertEquals(VirtioRing.PACKED_DESC_F_AVAIL | VirtioRing.PACKED_DESC_F_USED,
                driver.raw().flags(2) & (VirtioRing.PACKED_DESC_F_AVAIL | VirtioRing.PACKED_DESC_F_USED));
        int crash = crashBase(b1);   // dies before publishing
        req.forgetOutputs();

        TrackedBackend b2 = start(crash);
        assertEquals(List.of(req.id(t0), req.id(t1), req.id(t2)), b2.popAll());
        b2.complete(req.id(t0));
        b2.queue.publish();
        assertEquals(1, req.reap(), "only request 0: the stale element behind it is gone");
        b2.completeAll();
        assertEquals(2, req.reap());
        assertQuiet(b2);
    }

    @Test
    void crashBeforeTheRingShowedThemRollsBack() {
        TrackedBackend b1 = fresh();
        long t0 = req.add(), t1 = req.add(), t2 = req.add();
        b1.popAll();
        publishUpTo(b1, 1, req.id(t1), req.id(t0));
        assertNotEquals(u16(USED_IDX), u16(OLD_USED_IDX), "a publication was under way");
        int crash = crashBase(b1);
        assertEquals(0, req.reap(), "the driver saw nothing");
        req.forgetOutputs();

        TrackedBackend b2 = start(crash);
        assertEquals(List.of(req.id(t0), req.id(t1), req.id(t2)), b2.popAll());
        assertEquals(0, b2.ring().lastUsedIndex());
        b2.completeAll();
        assertEquals(3, req.reap());
        assertQuiet(b2);
    }

    /** The crash hit before the last store (0), the last two (1) or all three (2) of a publication's commit. */
    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2})
    void crashBetweenTheCommitStoresOfABatchAcrossTheRingEnd(int variant) {
        // three 2-descriptor requests used, so the next batch (requests 3, 4) crosses the ring end
        TrackedBackend b1 = fresh();
        for (int n = 0; n < 3; n++) {
            req.add();
        }
        b1.popAll();
        b1.completeAll();
        req.reap();
        long t3 = req.add(), t4 = req.add(), t5 = req.add();
        b1.popAll();
        int oldFree = u16(OLD_FREE_HEAD);
        publishUpTo(b1, 3, req.id(t3), req.id(t4));
        assertEquals(2, u16(OLD_USED_IDX));
        assertEquals(0, u8(OLD_USED_WRAP));
        s.set(ValueLayout.JAVA_BYTE, OLD_USED_WRAP, (byte) 1);
        if (variant >= 1) {
            s.set(U16, OLD_USED_IDX, (short) 6);
        }
        if (variant >= 2) {
            s.set(U16, OLD_FREE_HEAD, (short) oldFree);
        }
        int crash = crashBase(b1);
        assertEquals(2, req.reap());
        req.forgetOutputs();

        TrackedBackend b2 = start(crash);
        assertEquals(List.of(req.id(t5)), b2.popAll(), "requests 3 and 4 reached the driver: not again");
        assertEquals(2, b2.ring().lastUsedIndex());
        assertFalse(b2.ring().lastUsedWrapCounter());
        b2.completeAll();
        assertEquals(1, req.reap());
        assertQuiet(b2);
        // no entry leaked: a full ring of requests still fits
        for (int n = 0; n < SIZE / 2; n++) {
            assertTrue(req.add() >= 0);
        }
        assertEquals(SIZE / 2, b2.popAll().size());
        assertFalse(((PackedInflightTracker) b2.tracker).disabled());
        b2.completeAll();
        assertEquals(SIZE / 2, req.reap());
        assertQuiet(b2);
    }

    @Test
    void aListAsLongAsTheRingIsSavedAndResubmitted() {
        driver.startAt(3, true);
        TrackedBackend b1 = start(base(3, true, 3, true));   // the list wraps past the ring end
        long t = req.add(SIZE);
        assertEquals(-1, req.add());
        assertEquals(List.of(req.id(t)), b1.popAll());
        int crash = crashBase(b1);
        req.forgetOutputs();

        TrackedBackend b2 = start(crash);
        assertEquals(List.of(req.id(t)), b2.popAll());
        b2.completeAll();
        assertEquals(1, req.reap());
        assertQuiet(b2);
    }

    /**
     * Random streams of 2- and 3-descriptor requests over many laps of the ring, completed in random order, with
     * crashes between publications and in the middle of them (tracker updated but ring not, ring updated but
     * buffer not committed); the driver keeps reaping and adding between a crash and the restart. Every request is
     * used exactly once, with its own data.
     */
    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4, 5, 6, 7, 8})
    void everyRequestIsUsedOnceAcrossRandomCrashes(long seed) {
        Random rnd = new Random(seed);
        TrackedBackend b = fresh();
        int crashes = 0;
        for (int round = 0; round < 300; round++) {
            for (int n = rnd.nextInt(4); n > 0; n--) {
                if (req.add(2 + rnd.nextInt(2)) < 0) {
                    break;
                }
            }
            b.popAll();
            TrackedBackend cur = b;
            int r0 = round;
            assertNotEquals(Virtqueue.NEEDS_RESET, b.lastResult, () -> "round " + r0 + ": "
                    + io.github.vduse4j.ring.ChainError.name(cur.lastError) + " " + cur.ring());
            List<Integer> held = b.held();
            Collections.shuffle(held, rnd);
            int[] done = held.subList(0, rnd.nextInt(held.size() + 1)).stream().mapToInt(Integer::intValue).toArray();
            int stage = rnd.nextInt(10) == 0 ? 1 + rnd.nextInt(2) : 3; // base 0 (lap 0) is a real position too
            publishUpTo(b, stage, done);
            req.reap();
            if (stage < 3 || rnd.nextInt(6) == 0) {
                int crash = crashBase(b);
                req.forgetOutputs();
                for (int n = rnd.nextInt(3); n > 0; n--) {
                    req.add(2 + rnd.nextInt(2));
                }
                b = start(crash);
                crashes++;
            }
        }
        b.popAll();
        b.completeAll();
        req.reap();
        TrackedBackend last = b;
        assertEquals(req.added(), req.done().size(), () -> "every request used; driver avail " + driver.nextAvail()
                + "/" + driver.availWrapCounter() + " used " + driver.lastUsedIdx() + "/" + driver.usedWrapCounter()
                + " inflight " + driver.inflight() + ", device " + last.ring());
        assertTrue(crashes > 20, "crashes: " + crashes);
        assertQuiet(b);
    }

    /**
     * Two lists in flight (a third used), then {@code corrupt}: recovery reports a problem and resubmits nothing; the
     * queue goes on from the frontend's base over a freshly formatted buffer, and tracking works again.
     */
    @ParameterizedTest
    @ValueSource(strings = {"used_idx", "wrap", "free cycle", "num too big", "num zero", "link to a free entry",
            "link outside", "last", "duplicate id", "duplicate counter", "inflight byte", "shared entry"})
    void corruptBuffersAreNotResubmitted(String what) {
        TrackedBackend b1 = fresh();
        req.add();
        long t1 = req.add(3);
        req.add();
        b1.popAll();
        b1.complete(req.id(t1));
        b1.queue.publish();
        req.reap();
        int crash = crashBase(b1);
        corrupt(what, s);
        byte[] corrupted = s.toArray(ValueLayout.JAVA_BYTE);
        PackedInflightTracker.Recovered r = region.packedTracker(0, SIZE).recover(driver.descSegment(), 7, true, 7, true);
        assertNotNull(r.problem(), what);
        assertEquals(List.of(), r.lists(), what);
        MemorySegment.copy(corrupted, 0, s, ValueLayout.JAVA_BYTE, 0, corrupted.length);

        TrackedBackend b2 = start(crash);
        assertEquals(List.of(), b2.popAll(), what + ": nothing resubmitted");
        assertNotEquals(Virtqueue.NEEDS_RESET, b2.lastResult);
        long t3 = req.add();
        assertEquals(List.of(req.id(t3)), b2.popAll());
        TrackedBackend b3 = start(crashBase(b2));
        assertEquals(List.of(req.id(t3)), b3.popAll(), what + ": tracking works again");
        b3.completeAll();
        assertQuiet(b3);   // (the driver still waits for the two requests lost with the buffer)
    }

    /** The first in-flight head (lowest counter). */
    private int firstHead() {
        List<Integer> heads = inflightHeads();
        heads.sort((a, b) -> Long.compare(s.get(U64, desc(a) + D_COUNTER), s.get(U64, desc(b) + D_COUNTER)));
        return heads.get(0);
    }

    private void corrupt(String what, MemorySegment seg) {
        List<Integer> heads = inflightHeads();
        int h = firstHead();
        int other = heads.get(0) == h ? heads.get(1) : heads.get(0);
        switch (what) {
            case "used_idx" -> seg.set(U16, OLD_USED_IDX, (short) SIZE);
            case "wrap" -> seg.set(ValueLayout.JAVA_BYTE, OLD_USED_WRAP, (byte) 7);
            case "free cycle" -> {
                int f = u16(OLD_FREE_HEAD);
                seg.set(U16, desc(f) + D_NEXT, (short) f);
            }
            case "num too big" -> seg.set(U16, desc(h) + D_NUM, (short) (SIZE + 1));
            case "num zero" -> seg.set(U16, desc(h) + D_NUM, (short) 0);
            case "link to a free entry" -> seg.set(U16, desc(h) + D_NEXT, (short) u16(OLD_FREE_HEAD));
            case "link outside" -> seg.set(U16, desc(h) + D_NEXT, (short) 0xfff0);
            case "last" -> seg.set(U16, desc(h) + D_LAST, (short) h);
            case "duplicate id" -> seg.set(U16, desc(u16(desc(other) + D_LAST)) + D_ID,
                    seg.get(U16, desc(u16(desc(h) + D_LAST)) + D_ID));
            case "duplicate counter" -> seg.set(U64, desc(other) + D_COUNTER, seg.get(U64, desc(h) + D_COUNTER));
            case "inflight byte" -> seg.set(ValueLayout.JAVA_BYTE, desc(h) + D_INFLIGHT, (byte) 9);
            case "shared entry" -> seg.set(U16, desc(other) + D_NEXT, (short) h);
            default -> throw new IllegalArgumentException(what);
        }
    }

    /** Random bytes in every field (version and desc_num kept): recovery and resubmission never throw. */
    @Test
    void garbageNeverThrows() {
        Random rnd = new Random(42);
        byte[] junk = new byte[(int) s.byteSize()];
        for (int round = 0; round < 300; round++) {
            rnd.nextBytes(junk);
            MemorySegment.copy(junk, 0, s, ValueLayout.JAVA_BYTE, 0, junk.length);
            if (round % 2 == 0) {   // plausible small values in the fields that steer recovery
                for (int j = 0; j < SIZE; j++) {
                    s.set(ValueLayout.JAVA_BYTE, desc(j) + D_INFLIGHT, (byte) rnd.nextInt(2));
                    s.set(U16, desc(j) + D_NEXT, (short) rnd.nextInt(SIZE + 1));
                    s.set(U16, desc(j) + D_LAST, (short) rnd.nextInt(SIZE));
                    s.set(U16, desc(j) + D_NUM, (short) rnd.nextInt(4));
                    s.set(U64, desc(j) + D_COUNTER, rnd.nextInt(4));
                    s.set(U16, desc(j) + D_FLAGS, (short) (rnd.nextInt(4) << 7 * rnd.nextInt(3)));
                }
                s.set(U16, FREE_HEAD, (short) rnd.nextInt(SIZE + 1));
                s.set(U16, OLD_FREE_HEAD, (short) rnd.nextInt(SIZE + 1));
                s.set(U16, USED_IDX, (short) rnd.nextInt(SIZE));
                s.set(U16, OLD_USED_IDX, (short) rnd.nextInt(SIZE));
                s.set(ValueLayout.JAVA_BYTE, USED_WRAP, (byte) rnd.nextInt(2));
                s.set(ValueLayout.JAVA_BYTE, OLD_USED_WRAP, (byte) rnd.nextInt(2));
            }
            s.set(U16, InflightRegion.VERSION_OFFSET, (short) InflightRegion.VERSION);
            s.set(U16, InflightRegion.DESC_NUM_OFFSET, (short) SIZE);
            TrackedBackend b = start(base(rnd.nextInt(SIZE), rnd.nextBoolean(), rnd.nextInt(SIZE), rnd.nextBoolean()));
            b.popAll();   // resubmissions may be chain errors or break the queue: never an exception
            for (int id : b.held()) {
                b.complete(id);
            }
            b.queue.publish();
        }
    }

    /** A frontend scribbling over the buffer while the queue runs cannot make the poller fail. */
    @Test
    void scribblingOverTheBufferWhileRunningNeverThrows() {
        Random rnd = new Random(7);
        byte[] junk = new byte[(int) s.byteSize()];
        TrackedBackend b = fresh();
        for (int round = 0; round < 200; round++) {
            for (int n = rnd.nextInt(4); n > 0; n--) {
                req.add(2 + rnd.nextInt(2));
            }
            b.popAll();
            rnd.nextBytes(junk);
            MemorySegment.copy(junk, 0, s, ValueLayout.JAVA_BYTE, 0, junk.length);
            List<Integer> held = b.held();
            Collections.shuffle(held, rnd);
            for (int id : held.subList(0, rnd.nextInt(held.size() + 1))) {
                b.complete(id);
            }
            b.queue.publish();
            req.reap();
        }
        b.completeAll();
        req.reap();
        assertEquals(req.added(), req.done().size(), "the ring itself is unaffected");
    }
}
