package io.github.vduse4j.ring;

import static io.github.vduse4j.ring.VirtioRing.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.DriverMemory;
import io.github.vduse4j.ring.testkit.SplitDriver;
import io.github.vduse4j.ring.testkit.SplitRawRing;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Each malformed split ring is reported as a typed chain error or NEEDS_RESET, never an exception. */
class SplitHostileTest {
    private static final int SIZE = 16;
    private final SplitDriver driver = DriverConfig.of(SIZE).indirect(true).dataRegions(2, 65536).split();
    private final SplitRawRing raw = driver.raw();
    private final SplitVirtqueue q = driver.newDeviceQueue();
    private final DescriptorChain chain = DescriptorChain.forQueue(q);
    private final long data = DriverMemory.DATA_BASE;
    private final long table = DriverMemory.TABLE_BASE;

    @AfterEach
    void close() { driver.close(); }

    private void expectChainError(int error, int head) {
        assertEquals(Virtqueue.CHAIN_ERROR, q.pop(chain), () -> "error " + ChainError.name(chain.error()));
        assertEquals(error, chain.error(), () -> ChainError.name(chain.error()));
        assertEquals(head, chain.id());
        assertEquals(1, q.inflight(), "an erroneous chain is in flight until completed");
        q.complete(head, 0);
        q.publish();
        assertEquals(head, raw.usedId((raw.usedIdx() - 1) & (SIZE - 1)));
        assertFalse(q.isBroken());
        // the queue keeps working
        raw.descriptor(5, data, 8, DESC_F_WRITE, 0).push(5);
        assertEquals(Virtqueue.POPPED, q.pop(chain));
        assertEquals(5, chain.id());
    }

    private void expectNeedsReset(int reason) {
        assertEquals(Virtqueue.NEEDS_RESET, q.pop(chain));
        assertEquals(reason, chain.error(), () -> ChainError.name(chain.error()));
        assertTrue(q.isBroken());
        assertEquals(reason, q.brokenReason());
        assertEquals(Virtqueue.NEEDS_RESET, q.pop(chain), "stays broken");
        assertEquals(ChainError.QUEUE_BROKEN, chain.error());
    }

    @Test
    void loopBetweenTwoDescriptors() {
        raw.descriptor(0, data, 8, DESC_F_NEXT, 1).descriptor(1, data, 8, DESC_F_NEXT, 0).push(0);
        expectChainError(ChainError.LOOP, 0);
    }

    @Test
    void selfLoop() {
        raw.descriptor(3, data, 8, DESC_F_NEXT, 3).push(3);
        expectChainError(ChainError.LOOP, 3);
    }

    @Test
    void chainLongerThanTheChainCapacity() {
        for (int i = 0; i < 4; i++) raw.descriptor(i, data + 8 * i, 8, i < 3 ? DESC_F_NEXT : 0, i + 1);
        raw.push(0);
        DescriptorChain small = new DescriptorChain(3);
        assertEquals(Virtqueue.CHAIN_ERROR, q.pop(small));
        assertEquals(ChainError.TOO_LONG, small.error());
        assertEquals(0, small.id());
    }

    @Test
    void nextOutsideTheTable() {
        raw.descriptor(0, data, 8, DESC_F_NEXT, SIZE).push(0);
        expectChainError(ChainError.BAD_INDEX, 0);
    }

    @Test
    void headOutsideTheTableBreaksTheQueue() {
        raw.push(SIZE + 3);
        expectNeedsReset(ChainError.BAD_INDEX);
        q.restore(0, true, 0, true);
        assertFalse(q.isBroken());
    }

    @Test
    void availIndexJump() {
        raw.availIdx(SIZE + 1);
        expectNeedsReset(ChainError.AVAIL_INDEX_JUMP);
    }

    @Test
    void availIndexMovingBackwards() {
        raw.availIdx(0xFFFF);   // "decremented": looks like 65535 new entries
        expectNeedsReset(ChainError.AVAIL_INDEX_JUMP);
    }

    @Test
    void unmappedBuffer() {
        raw.descriptor(0, 0x9000_0000_0000L, 8, 0, 0).push(0);
        expectChainError(ChainError.OUT_OF_MEMORY_RANGE, 0);
    }

    @Test
    void bufferRunningPastTheLastMapping() {
        long end = DriverMemory.DATA_BASE + driver.memory().dataBytes();
        raw.descriptor(0, end - 4, 8, 0, 0).push(0);
        expectChainError(ChainError.OUT_OF_MEMORY_RANGE, 0);
    }

    @Test
    void addressPlusLengthOverflows() {
        raw.descriptor(0, 0xFFFF_FFFF_FFFF_FFF0L, 0x20, 0, 0).push(0);
        expectChainError(ChainError.ADDRESS_OVERFLOW, 0);
    }

    @Test
    void lengthOfFourGigabytesOverflowsNearTheTop() {
        raw.descriptor(0, 0xFFFF_FFFF_0000_0002L, -1, DESC_F_WRITE, 0).push(0);
        expectChainError(ChainError.ADDRESS_OVERFLOW, 0);
    }

    @Test
    void rangeEndingExactlyAtTwoToThe64IsUnmappedNotOverflow() {
        raw.descriptor(0, 0xFFFF_FFFF_FFFF_FFF0L, 0x10, 0, 0).push(0);
        expectChainError(ChainError.OUT_OF_MEMORY_RANGE, 0);
    }

    @Test
    void writableBufferInAReadOnlyMapping() {
        RegionTable readOnlyData = RegionTable.builder()
                .add(DriverMemory.DATA_BASE, driver.memory().dataBytes() / 2,
                        driver.memory().table().segment(2), 0, GuestMemory.READ)
                .build();
        SplitVirtqueue ro = driver.newDeviceQueue(readOnlyData);
        raw.descriptor(0, data, 8, 0, 0).push(0);
        raw.descriptor(1, data, 8, DESC_F_WRITE, 0).push(1);
        assertEquals(Virtqueue.POPPED, ro.pop(chain), "reading is allowed");
        assertEquals(Virtqueue.CHAIN_ERROR, ro.pop(chain));
        assertEquals(ChainError.OUT_OF_MEMORY_RANGE, chain.error());
        assertEquals(1, chain.id());
    }

    @Test
    void readableAfterWritable() {
        raw.descriptor(0, data, 8, DESC_F_WRITE | DESC_F_NEXT, 1).descriptor(1, data, 8, 0, 0).push(0);
        expectChainError(ChainError.READABLE_AFTER_WRITABLE, 0);
    }

    @Test
    void nestedIndirect() {
        raw.indirectEntry(table, 0, data, 8, DESC_F_NEXT, 1).indirectEntry(table, 1, table + 64, 32, DESC_F_INDIRECT, 0);
        raw.descriptor(0, table, 32, DESC_F_INDIRECT, 0).push(0);
        expectChainError(ChainError.NESTED_INDIRECT, 0);
    }

    @Test
    void indirectTableOfBadSize() {
        int[] bad = {0, 15, 17, 24, (maxIndirectEntries(SIZE) + 1) * 16};
        for (int i = 0; i < bad.length; i++) {
            raw.descriptor(i, table, bad[i], DESC_F_INDIRECT, 0).push(i);
            assertEquals(Virtqueue.CHAIN_ERROR, q.pop(chain));
            assertEquals(ChainError.BAD_INDIRECT_SIZE, chain.error(), "len " + bad[i]);
            assertEquals(i, chain.id());
        }
    }

    @Test
    void indirectTableLargerThanTheRingIsAcceptedAsLinuxBuildsThem() {
        // Linux sizes indirect tables by seg_max, not by the ring: 2 x SIZE entries on a SIZE ring.
        int n = 2 * SIZE;
        for (int e = 0; e < n; e++) {
            raw.indirectEntry(table, e, data + 8L * e, 8, e + 1 < n ? DESC_F_NEXT : DESC_F_WRITE, e + 1);
        }
        raw.descriptor(0, table, n * 16, DESC_F_INDIRECT, 0).push(0);
        assertEquals(Virtqueue.POPPED, q.pop(chain), () -> ChainError.name(chain.error()));
        assertEquals(n, chain.bufferCount());
        assertEquals(8L * (n - 1), chain.readableLength());
    }

    @Test
    void indirectNotNegotiated() {
        SplitVirtqueue plain = new SplitVirtqueue(SIZE, driver.descSegment(), driver.availSegment(),
                driver.usedSegment(), driver.memory().table(), false, false);
        raw.indirectEntry(table, 0, data, 8, 0, 0);
        raw.descriptor(0, table, 16, DESC_F_INDIRECT, 0).push(0);
        assertEquals(Virtqueue.CHAIN_ERROR, plain.pop(chain));
        assertEquals(ChainError.INDIRECT_NOT_NEGOTIATED, chain.error());
    }

    @Test
    void indirectWithNext() {
        raw.indirectEntry(table, 0, data, 8, 0, 0);
        raw.descriptor(0, table, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1).descriptor(1, data, 8, 0, 0).push(0);
        expectChainError(ChainError.INDIRECT_WITH_NEXT, 0);
    }

    @Test
    void loopInsideAnIndirectTable() {
        raw.indirectEntry(table, 0, data, 8, DESC_F_NEXT, 1).indirectEntry(table, 1, data, 8, DESC_F_NEXT, 0);
        raw.descriptor(0, table, 32, DESC_F_INDIRECT, 0).push(0);
        expectChainError(ChainError.LOOP, 0);
    }

    @Test
    void nextOutsideTheIndirectTable() {
        raw.indirectEntry(table, 0, data, 8, DESC_F_NEXT, 2);
        raw.descriptor(0, table, 32, DESC_F_INDIRECT, 0).push(0);
        expectChainError(ChainError.BAD_INDEX, 0);
    }

    @Test
    void unmappedIndirectTable() {
        raw.descriptor(0, 0x7000_0000L, 32, DESC_F_INDIRECT, 0).push(0);
        expectChainError(ChainError.OUT_OF_MEMORY_RANGE, 0);
    }

    @Test
    void indirectTableAcrossTwoMappings() {
        long boundary = DriverMemory.DATA_BASE + driver.memory().dataRegionBytes();
        raw.descriptor(0, boundary - 16, 32, DESC_F_INDIRECT, 0).push(0);
        expectChainError(ChainError.INDIRECT_TABLE_NOT_CONTIGUOUS, 0);
    }

    @Test
    void misalignedIndirectTableIsReadSafely() {
        raw.indirectEntry(table + 3, 0, data, 8, DESC_F_NEXT, 1).indirectEntry(table + 3, 1, data + 8, 4, DESC_F_WRITE, 0);
        raw.descriptor(0, table + 3, 32, DESC_F_INDIRECT, 0).push(0);
        assertEquals(Virtqueue.POPPED, q.pop(chain));
        assertEquals(8, chain.readableLength());
        assertEquals(4, chain.writableLength());
    }

    @Test
    void directDescriptorsFollowedByAnIndirectTableAreValid() {
        // §2.7.5.3.2: the device MUST handle zero or more chained descriptors followed by one INDIRECT descriptor.
        raw.indirectEntry(table, 0, data + 100, 50, DESC_F_NEXT, 1).indirectEntry(table, 1, data + 200, 1, DESC_F_WRITE, 0);
        raw.descriptor(2, data, 16, DESC_F_NEXT, 7).descriptor(7, table, 32, DESC_F_INDIRECT | DESC_F_WRITE, 0).push(2);
        assertEquals(Virtqueue.POPPED, q.pop(chain));
        assertEquals(2, chain.id());
        assertEquals(3, chain.bufferCount());
        assertEquals(66, chain.readableLength());
        assertEquals(1, chain.writableLength());
    }

    @Test
    void inconsistentRestoreLeavesTheQueueBroken() {
        q.restore(100, true, 0, true);
        assertTrue(q.isBroken());
        assertEquals(ChainError.USED_INDEX_JUMP, q.brokenReason());
        assertEquals(Virtqueue.NEEDS_RESET, q.pop(chain));
        q.restore(0x1_0000, true, 0, true);
        assertEquals(ChainError.BAD_INDEX, q.brokenReason());
        q.restore(0xFFFF, true, 0xFFF8, true);
        assertFalse(q.isBroken(), "across the u16 wrap, 7 in flight");
    }

    @Test
    void constructorValidatesTheRingParts() {
        var m = driver.memory().table();
        assertThrows(IllegalArgumentException.class, () -> new SplitVirtqueue(12, driver.descSegment(),
                driver.availSegment(), driver.usedSegment(), m, false, false));
        assertThrows(IllegalArgumentException.class, () -> new SplitVirtqueue(SIZE * 2, driver.descSegment(),
                driver.availSegment(), driver.usedSegment(), m, false, false));
        assertThrows(IllegalArgumentException.class, () -> new SplitVirtqueue(SIZE, driver.descSegment().asSlice(8),
                driver.availSegment(), driver.usedSegment(), m, false, false));
        assertThrows(IllegalArgumentException.class, () -> new SplitVirtqueue(SIZE, driver.descSegment(),
                driver.availSegment().asSlice(1), driver.usedSegment(), m, false, false));
        assertThrows(IllegalArgumentException.class, () -> new SplitVirtqueue(SIZE, driver.descSegment(),
                driver.availSegment(), driver.usedSegment().asSlice(0, 4 + 8 * SIZE), m, true, false),
                "EVENT_IDX needs avail_event");
        assertThrows(IllegalArgumentException.class, () -> new SplitVirtqueue(SIZE,
                java.lang.foreign.MemorySegment.ofArray(new byte[16 * SIZE]), driver.availSegment(),
                driver.usedSegment(), m, false, false));
    }
}
