package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.engine.inflight.SplitInflightTracker;

import static io.github.vduse4j.engine.inflight.SplitInflightTracker.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.SplitDriver;
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
 * The split layout of the inflight buffer, driven through {@link VringQueue}: a restarted back-end resubmits the
 * heads still in flight, in counter order, and pops the avail ring from {@code used->idx + heads}, whatever order the
 * others were used in; corrupt buffers yield nothing to resubmit, never an exception.
 */
class InflightRegionSplitTest {
    private static final int SIZE = 8;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;
    private final SplitDriver driver = DriverConfig.of(SIZE).dataRegions(1, 1 << 20).split();
    private final InflightRegion region = InflightRegion.create(1, SIZE);
    private final MemorySegment s = region.queueSegment(0);
    private final EchoRequests req = new EchoRequests(driver);

    @AfterEach
    void close() {
        region.close();
        driver.close();
    }

    private TrackedBackend start(int base) {
        return TrackedBackend.split(driver, region, base);
    }

    /** QEMU's SET_VRING_BASE after losing its back-end: the used index of the ring (virtio_queue_restore_last_avail_idx). */
    private int qemuBase() {
        return driver.raw().usedIdx();
    }

    private static long desc(int i) {
        return HEADER + (long) DESC * i;
    }

    private List<Integer> inflightHeads() {
        List<Integer> heads = new ArrayList<>();
        for (int i = 0; i < SIZE; i++) {
            if (s.get(ValueLayout.JAVA_BYTE, desc(i) + D_INFLIGHT) == 1) {
                heads.add(i);
            }
        }
        return heads;
    }

    private void assertQuiet(TrackedBackend b) {
        assertEquals(List.of(), inflightHeads());
        assertEquals(driver.raw().usedIdx(), s.get(U16, USED_IDX) & 0xffff);
        assertEquals(b.ring().lastUsedIndex(), s.get(U16, USED_IDX) & 0xffff);
    }

    /** Requests 1 and 3 of 0..3 used before the crash; the driver reuses their descriptors for 4 and 5. */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void outOfOrderCompletionBeforeTheCrash(boolean frontendKnowsTheAvailIndex) {
        TrackedBackend b1 = start(0);
        long[] t = new long[4];
        for (int n = 0; n < 4; n++) {
            t[n] = req.add();
        }
        b1.popAll();
        b1.complete(req.id(t[1]));
        b1.complete(req.id(t[3]));
        b1.queue.publish();
        int popped = b1.ring().lastAvailIndex();
        assertEquals(2, req.reap());
        req.forgetOutputs();
        long t4 = req.add(), t5 = req.add();
        assertEquals(List.of(req.id(t[1]), req.id(t[3])).stream().sorted().toList(),
                List.of(req.id(t4), req.id(t5)).stream().sorted().toList(), "descriptors reused");

        TrackedBackend b2 = start(frontendKnowsTheAvailIndex ? popped : qemuBase());
        assertEquals(List.of(req.id(t[0]), req.id(t[2]), req.id(t4), req.id(t5)), b2.popAll());
        b2.completeAll();
        assertEquals(4, req.reap());
        assertEquals(6, req.done().size());
        assertQuiet(b2);
    }

    @Test
    void crashAfterTheRingShowedTheBatchClearsIt() {
        TrackedBackend b1 = start(0);
        long t0 = req.add(), t1 = req.add(), t2 = req.add();
        b1.popAll();
        b1.complete(req.id(t2));
        b1.complete(req.id(t0));
        b1.ring().publish();   // the ring's used index moved; the buffer's batch was not cleared
        assertEquals(3, inflightHeads().size());
        assertEquals(0, s.get(U16, USED_IDX));
        assertEquals(2, req.reap());
        req.forgetOutputs();

        TrackedBackend b2 = start(qemuBase());
        assertEquals(List.of(req.id(t1)), b2.popAll());
        b2.completeAll();
        assertEquals(1, req.reap());
        assertQuiet(b2);
    }

    @Test
    void crashBeforeTheRingShowedThemResubmitsThem() {
        TrackedBackend b1 = start(0);
        long t0 = req.add(), t1 = req.add();
        b1.popAll();
        b1.complete(req.id(t1));   // staged, never published
        req.forgetOutputs();

        TrackedBackend b2 = start(qemuBase());
        assertEquals(List.of(req.id(t0), req.id(t1)), b2.popAll());
        b2.completeAll();
        assertEquals(2, req.reap());
        assertQuiet(b2);
    }

    @Test
    void resubmissionFollowsTheCounterNotTheHeadIndex() {
        TrackedBackend b1 = start(0);
        long t0 = req.add(), t1 = req.add();
        b1.popAll();
        b1.complete(req.id(t0));
        b1.queue.publish();
        req.reap();
        long t2 = req.add();
        assertEquals(req.id(t0), req.id(t2), "the driver reuses request 0's head");
        b1.popAll();
        assertTrue(req.id(t2) < req.id(t1));
        req.forgetOutputs();

        TrackedBackend b2 = start(qemuBase());
        assertEquals(List.of(req.id(t1), req.id(t2)), b2.popAll());
        b2.completeAll();
        assertEquals(2, req.reap());
        assertQuiet(b2);
    }

    /** Random out-of-order streams with crashes between and inside publications: every request used once. */
    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4, 5, 6})
    void everyRequestIsUsedOnceAcrossRandomCrashes(long seed) {
        Random rnd = new Random(seed);
        TrackedBackend b = start(0);
        int crashes = 0;
        for (int round = 0; round < 300; round++) {
            for (int n = rnd.nextInt(4); n > 0; n--) {
                if (req.add(2 + rnd.nextInt(2)) < 0) {
                    break;
                }
            }
            b.popAll();
            assertNotEquals(Virtqueue.NEEDS_RESET, b.lastResult);
            List<Integer> held = b.held();
            Collections.shuffle(held, rnd);
            for (int id : held.subList(0, rnd.nextInt(held.size() + 1))) {
                b.complete(id);
            }
            int stage = rnd.nextInt(8) == 0 ? rnd.nextInt(2) : 2;   // 0: staged only, 1: ring published only
            if (stage == 1) {
                b.ring().publish();
            } else if (stage == 2) {
                b.queue.publish();
            }
            req.reap();
            if (stage < 2 || rnd.nextInt(6) == 0) {
                req.forgetOutputs();
                for (int n = rnd.nextInt(3); n > 0; n--) {
                    req.add(2 + rnd.nextInt(2));
                }
                b = start(rnd.nextBoolean() ? qemuBase() : b.ring().lastAvailIndex());
                crashes++;
            }
        }
        b.popAll();
        b.completeAll();
        req.reap();
        assertEquals(req.added(), req.done().size(), "every request used");
        assertTrue(crashes > 40, "crashes: " + crashes);
        assertQuiet(b);
    }

    @ParameterizedTest
    @ValueSource(strings = {"inflight byte", "duplicate counter"})
    void corruptBuffersAreNotResubmitted(String what) {
        TrackedBackend b1 = start(0);
        req.add();
        req.add();
        req.add();
        b1.popAll();
        List<Integer> heads = inflightHeads();
        if (what.equals("inflight byte")) {
            s.set(ValueLayout.JAVA_BYTE, desc(heads.get(1)) + D_INFLIGHT, (byte) 3);
        } else {
            s.set(U64, desc(heads.get(2)) + D_COUNTER, s.get(U64, desc(heads.get(0)) + D_COUNTER));
        }
        byte[] corrupted = s.toArray(ValueLayout.JAVA_BYTE);
        SplitInflightTracker.Recovered r = region.splitTracker(0, SIZE).recover(0);
        assertNotNull(r.problem());
        assertEquals(0, r.heads().length);
        MemorySegment.copy(corrupted, 0, s, ValueLayout.JAVA_BYTE, 0, corrupted.length);

        // nothing resubmitted: the avail ring is popped from the frontend's base (QEMU: the used index), which
        // here, with the descriptors not reused yet, finds the three chains again
        TrackedBackend b2 = start(qemuBase());
        assertEquals(heads, b2.popAll());
        b2.completeAll();
        assertEquals(3, req.reap());
        assertQuiet(b2);
    }

    @Test
    void aLastBatchListGoingNowhereIsBounded() {
        TrackedBackend b1 = start(0);
        req.add();
        b1.popAll();
        // a used index far ahead of used_idx, a batch list that loops on itself
        s.set(U16, USED_IDX, (short) 40000);
        s.set(U16, LAST_BATCH_HEAD, (short) 1);
        s.set(U16, desc(1) + D_NEXT, (short) 1);
        TrackedBackend b2 = start(qemuBase());
        assertEquals(1, b2.popAll().size(), "the head the loop did not reach is still resubmitted");
    }

    /** Random bytes (version and desc_num kept): recovery and resubmission never throw. */
    @Test
    void garbageNeverThrows() {
        Random rnd = new Random(42);
        byte[] junk = new byte[(int) s.byteSize()];
        for (int round = 0; round < 300; round++) {
            rnd.nextBytes(junk);
            MemorySegment.copy(junk, 0, s, ValueLayout.JAVA_BYTE, 0, junk.length);
            if (round % 2 == 0) {
                for (int j = 0; j < SIZE; j++) {
                    s.set(ValueLayout.JAVA_BYTE, desc(j) + D_INFLIGHT, (byte) rnd.nextInt(2));
                    s.set(U16, desc(j) + D_NEXT, (short) rnd.nextInt(SIZE + 1));
                }
            }
            s.set(U16, InflightRegion.VERSION_OFFSET, (short) InflightRegion.VERSION);
            s.set(U16, InflightRegion.DESC_NUM_OFFSET, (short) SIZE);
            TrackedBackend b = start(rnd.nextInt(1 << 16));
            b.popAll();
            for (int id : b.held()) {
                b.complete(id);
            }
            b.queue.publish();
        }
    }
}
