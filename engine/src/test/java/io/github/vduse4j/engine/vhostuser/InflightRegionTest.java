package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.engine.inflight.PackedInflightTracker;
import io.github.vduse4j.engine.inflight.SplitInflightTracker;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.bindings.FileIo;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * The inflight buffer itself: one stride for both layouts (it is created before the features are known), a fresh
 * region formatted for both, lazy formatting of an uninitialised one, and buffers that do not describe a ring.
 */
class InflightRegionTest {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    @Test
    void theStrideFitsBothLayouts() {
        for (int n : new int[] {1, 2, 7, 8, 64, 128, 256, 1000, 32768}) {
            long stride = InflightRegion.queueRegionSize(n);
            assertEquals(0, stride % InflightRegion.ALIGN);
            assertTrue(stride >= PackedInflightTracker.HEADER + (long) PackedInflightTracker.DESC * n);
            assertTrue(stride >= InflightRegion.splitQueueRegionSize(n));
            assertTrue(stride < PackedInflightTracker.HEADER + (long) PackedInflightTracker.DESC * n + 64);
        }
        assertEquals(64 + 32 * 128, InflightRegion.queueRegionSize(128));
        assertEquals(64 * 33, InflightRegion.splitQueueRegionSize(128)); // libvhost-user: 16 + 16 * 128, 64-aligned
    }

    @Test
    void aFreshBufferIsFormattedForBothLayouts() {
        try (InflightRegion r = InflightRegion.create(2, 8)) {
            assertEquals(2 * InflightRegion.queueRegionSize(8), r.mmapSize());
            for (int q = 0; q < 2; q++) {
                MemorySegment s = r.queueSegment(q);
                assertEquals(InflightRegion.VERSION, s.get(U16, InflightRegion.VERSION_OFFSET));
                assertEquals(8, s.get(U16, InflightRegion.DESC_NUM_OFFSET));
                // packed: free list 0 -> 1 -> ... -> 7 -> 8 (end), wrap counters 1, indexes 0
                for (int j = 0; j < 8; j++) {
                    assertEquals(j + 1, s.get(U16, PackedInflightTracker.HEADER + 32L * j + PackedInflightTracker.D_NEXT));
                }
                assertEquals(1, s.get(ValueLayout.JAVA_BYTE, PackedInflightTracker.USED_WRAP));
                assertEquals(1, s.get(ValueLayout.JAVA_BYTE, PackedInflightTracker.OLD_USED_WRAP));
                assertEquals(0, s.get(U16, PackedInflightTracker.FREE_HEAD));
                // split: every field it reads is still zero
                assertEquals(0, s.get(U16, SplitInflightTracker.LAST_BATCH_HEAD));
                assertEquals(0, s.get(U16, SplitInflightTracker.USED_IDX));
                for (int j = 0; j < 8; j++) {
                    long d = SplitInflightTracker.HEADER + 16L * j;
                    assertEquals(0, s.get(ValueLayout.JAVA_BYTE, d + SplitInflightTracker.D_INFLIGHT));
                    assertEquals(0, s.get(U16, d + SplitInflightTracker.D_NEXT));
                    assertEquals(0L, s.get(ValueLayout.JAVA_LONG_UNALIGNED, d + SplitInflightTracker.D_COUNTER));
                }
                assertNotNull(r.splitTracker(q, 8));
                assertNotNull(r.packedTracker(q, 8));
            }
        }
    }

    private static int memfd(long size) {
        int fd = FileIo.memfdCreate("inflight-test", FileIo.MFD_CLOEXEC);
        FileIo.ftruncate(fd, size);
        return fd;
    }

    @Test
    void aBufferWithTheSplitStrideServesSplitRingsOnly() {
        long size = 2 * InflightRegion.splitQueueRegionSize(64);
        try (InflightRegion r = InflightRegion.attach(memfd(size), size, 0, 2, 64)) {
            assertEquals(InflightRegion.splitQueueRegionSize(64), r.stride());
            assertNotNull(r.splitTracker(1, 64), "version 0: formatted for split");
            assertEquals(InflightRegion.VERSION, r.queueSegment(1).get(U16, InflightRegion.VERSION_OFFSET));
            assertNull(r.packedTracker(0, 64), "packed needs the larger stride");
        }
    }

    @Test
    void anUninitialisedBufferIsFormattedWhenFirstUsed() {
        long size = InflightRegion.queueRegionSize(16);
        try (InflightRegion r = InflightRegion.attach(memfd(size), size, 0, 1, 16)) {
            MemorySegment s = r.queueSegment(0);
            assertEquals(0, s.get(U16, InflightRegion.VERSION_OFFSET));
            assertNotNull(r.packedTracker(0, 16));
            assertEquals(InflightRegion.VERSION, s.get(U16, InflightRegion.VERSION_OFFSET));
            assertEquals(16, s.get(U16, InflightRegion.DESC_NUM_OFFSET));
            assertEquals(16, s.get(U16, PackedInflightTracker.HEADER + 32L * 15 + PackedInflightTracker.D_NEXT));
            assertEquals(1, s.get(ValueLayout.JAVA_BYTE, PackedInflightTracker.OLD_USED_WRAP));
        }
    }

    @Test
    void buffersThatDoNotDescribeTheRingGiveNoTracker() {
        try (InflightRegion r = InflightRegion.create(1, 8)) {
            assertNull(r.splitTracker(0, 16), "another ring size");
            assertNull(r.packedTracker(1, 8), "no such queue");
            assertNull(r.splitTracker(-1, 8));
            r.queueSegment(0).set(U16, InflightRegion.DESC_NUM_OFFSET, (short) 4);
            assertNull(r.splitTracker(0, 8), "desc_num differs");
            r.queueSegment(0).set(U16, InflightRegion.DESC_NUM_OFFSET, (short) 8);
            r.queueSegment(0).set(U16, InflightRegion.VERSION_OFFSET, (short) 2);
            assertNull(r.packedTracker(0, 8), "unknown version");
        }
    }

    @Test
    void attachRefusesWhatDoesNotFit() {
        long small = InflightRegion.splitQueueRegionSize(64) - 64;
        assertThrows(IllegalArgumentException.class, () -> InflightRegion.attach(memfd(small), small, 0, 1, 64));
        long size = InflightRegion.queueRegionSize(64);
        assertThrows(IllegalArgumentException.class, () -> InflightRegion.attach(memfd(size), size, 100, 1, 64));
        assertThrows(IllegalArgumentException.class, () -> InflightRegion.attach(memfd(size), 2 * size, 0, 1, 64),
                "beyond the end of the fd");
        assertThrows(IllegalArgumentException.class, () -> InflightRegion.attach(memfd(size), size, 0, 1, 40000));
    }
}
