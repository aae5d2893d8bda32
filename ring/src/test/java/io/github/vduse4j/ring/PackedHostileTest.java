package io.github.vduse4j.ring;

import static io.github.vduse4j.ring.VirtioRing.*;
import static io.github.vduse4j.ring.testkit.PackedRawRing.availableFlags;
import static io.github.vduse4j.ring.testkit.PackedRawRing.usedFlags;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.DriverMemory;
import io.github.vduse4j.ring.testkit.PackedDriver;
import io.github.vduse4j.ring.testkit.PackedRawRing;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Each malformed packed ring is reported as a typed chain error or NEEDS_RESET, never an exception. */
class PackedHostileTest {
    private static final int SIZE = 8;
    private static final int A = availableFlags(true);   // first lap
    private final PackedDriver driver = DriverConfig.of(SIZE).indirect(true).dataRegions(2, 65536).packed();
    private final PackedRawRing raw = driver.raw();
    private final PackedVirtqueue q = driver.newDeviceQueue();
    private final DescriptorChain chain = DescriptorChain.forQueue(q);
    private final long data = DriverMemory.DATA_BASE;
    private final long table = DriverMemory.TABLE_BASE;

    @AfterEach
    void close() { driver.close(); }

    private void expectChainError(int error, int id, int descriptors) {
        assertEquals(Virtqueue.CHAIN_ERROR, q.pop(chain), () -> "error " + ChainError.name(chain.error()));
        assertEquals(error, chain.error(), () -> ChainError.name(chain.error()));
        assertEquals(id, chain.id());
        assertEquals(descriptors % SIZE, q.lastAvailIndex(), "the whole list is consumed");
        q.complete(id, 0);
        q.publish();
        assertEquals(usedFlags(true), raw.flags(0) & (PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED));
        assertEquals(id, raw.id(0));
        assertEquals(descriptors % SIZE, q.lastUsedIndex(), "used skips the list's descriptors");
        assertFalse(q.isBroken());
    }

    private void expectNeedsReset(int reason) {
        assertEquals(Virtqueue.NEEDS_RESET, q.pop(chain));
        assertEquals(reason, chain.error(), () -> ChainError.name(chain.error()));
        assertTrue(q.isBroken());
        assertEquals(Virtqueue.NEEDS_RESET, q.pop(chain));
        assertEquals(ChainError.QUEUE_BROKEN, chain.error());
    }

    @Test
    void notAvailableFlagPatternsAreEmpty() {
        raw.descriptor(0, data, 8, 1, usedFlags(true));          // AVAIL == USED == 1: used, not available
        assertEquals(Virtqueue.EMPTY, q.pop(chain));
        raw.descriptor(0, data, 8, 1, availableFlags(false));    // available for the *next* lap
        assertEquals(Virtqueue.EMPTY, q.pop(chain));
        raw.descriptor(0, data, 8, 1, 0);
        assertEquals(Virtqueue.EMPTY, q.pop(chain));
        raw.descriptor(0, data, 8, 1, A);
        assertEquals(Virtqueue.POPPED, q.pop(chain));
        assertEquals(1, chain.id());
    }

    @Test
    void laterDescriptorNotAvailable() {
        raw.descriptor(1, data, 8, 0, availableFlags(false));    // wrong lap
        raw.descriptor(0, data, 8, 0, A | DESC_F_NEXT);
        expectNeedsReset(ChainError.INCONSISTENT_FLAGS);
    }

    @Test
    void listThatNeverEnds() {
        for (int i = SIZE - 1; i >= 0; i--) raw.descriptor(i, data, 8, 0, A | DESC_F_NEXT);
        expectNeedsReset(ChainError.UNTERMINATED_CHAIN);
    }

    @Test
    void listWrappingTheRingMustFlipTheWrapCounter() {
        // a 3-descriptor list starting at SIZE - 1: descriptors 0 and 1 belong to the next lap
        PackedVirtqueue q2 = driver.newDeviceQueue();
        q2.restore(SIZE - 1, true, SIZE - 1, true);
        raw.descriptor(0, data, 8, 0, A | DESC_F_NEXT);   // same-lap flags where next-lap flags are required
        raw.descriptor(1, data, 8, 9, A);
        raw.descriptor(SIZE - 1, data, 8, 0, A | DESC_F_NEXT);
        assertEquals(Virtqueue.NEEDS_RESET, q2.pop(chain));
        assertEquals(ChainError.INCONSISTENT_FLAGS, chain.error());
        PackedVirtqueue q3 = driver.newDeviceQueue();
        q3.restore(SIZE - 1, true, SIZE - 1, true);
        raw.descriptor(0, data, 8, 0, availableFlags(false) | DESC_F_NEXT);
        raw.descriptor(1, data, 8, 9, availableFlags(false));
        raw.descriptor(SIZE - 1, data, 8, 0, A | DESC_F_NEXT);
        assertEquals(Virtqueue.POPPED, q3.pop(chain));
        assertEquals(9, chain.id());
        assertEquals(2, q3.lastAvailIndex());
        assertFalse(q3.lastAvailWrapCounter());
    }

    @Test
    void duplicateBufferIdInFlight() {
        raw.descriptor(0, data, 8, 4, A);
        raw.descriptor(1, data, 8, 4, A);
        assertEquals(Virtqueue.POPPED, q.pop(chain));
        expectNeedsReset(ChainError.DUPLICATE_ID);
    }

    @Test
    void indirectInsideALinkedList() {
        raw.indirectEntry(table, 0, data, 8, 0);
        raw.descriptor(1, table, 16, 6, A | DESC_F_INDIRECT);
        raw.descriptor(0, data, 8, 0, A | DESC_F_NEXT);
        expectChainError(ChainError.INDIRECT_IN_CHAIN, 6, 2);
    }

    @Test
    void indirectWithNext() {
        raw.indirectEntry(table, 0, data, 8, 0);
        raw.descriptor(1, data, 8, 6, A);
        raw.descriptor(0, table, 16, 0, A | DESC_F_INDIRECT | DESC_F_NEXT);
        expectChainError(ChainError.INDIRECT_WITH_NEXT, 6, 2);
    }

    @Test
    void nestedIndirect() {
        raw.indirectEntry(table, 0, data, 8, 0).indirectEntry(table, 1, table + 64, 16, DESC_F_INDIRECT);
        raw.descriptor(0, table, 32, 3, A | DESC_F_INDIRECT);
        expectChainError(ChainError.NESTED_INDIRECT, 3, 1);
    }

    @Test
    void nextFlagInsideATableIsIgnored() {
        // §2.8.7: only WRITE is valid in a table; others are reserved and ignored (entries are sequential).
        raw.indirectEntry(table, 0, data, 8, DESC_F_NEXT).indirectEntry(table, 1, data + 8, 8, DESC_F_WRITE);
        raw.descriptor(0, table, 32, 3, A | DESC_F_INDIRECT);
        assertEquals(Virtqueue.POPPED, q.pop(chain));
        assertEquals(2, chain.bufferCount());
    }

    @Test
    void indirectTableOfBadSize() {
        int[] bad = {0, 8, 33, (maxIndirectEntries(SIZE) + 1) * 16};
        for (int i = 0; i < bad.length; i++) {
            raw.descriptor(i, table, bad[i], i, A | DESC_F_INDIRECT);
            assertEquals(Virtqueue.CHAIN_ERROR, q.pop(chain));
            assertEquals(ChainError.BAD_INDIRECT_SIZE, chain.error(), "len " + bad[i]);
            q.complete(i, 0);
        }
    }

    @Test
    void indirectNotNegotiated() {
        PackedVirtqueue plain = new PackedVirtqueue(SIZE, driver.descSegment(), driver.driverEventSegment(),
                driver.deviceEventSegment(), driver.memory().table(), false, false);
        raw.indirectEntry(table, 0, data, 8, 0);
        raw.descriptor(0, table, 16, 2, A | DESC_F_INDIRECT);
        assertEquals(Virtqueue.CHAIN_ERROR, plain.pop(chain));
        assertEquals(ChainError.INDIRECT_NOT_NEGOTIATED, chain.error());
        assertEquals(2, chain.id());
    }

    @Test
    void unmappedAndOverflowingBuffers() {
        raw.descriptor(0, 0x9000_0000_0000L, 8, 1, A);
        expectChainError(ChainError.OUT_OF_MEMORY_RANGE, 1, 1);
        raw.descriptor(1, -16L, 32, 2, A);
        assertEquals(Virtqueue.CHAIN_ERROR, q.pop(chain));
        assertEquals(ChainError.ADDRESS_OVERFLOW, chain.error());
    }

    @Test
    void errorInTheFirstDescriptorStillConsumesTheWholeList() {
        raw.descriptor(2, data, 8, 5, A);
        raw.descriptor(1, data, 8, 0, A | DESC_F_NEXT);
        raw.descriptor(0, 0x9000_0000_0000L, 8, 0, A | DESC_F_NEXT);
        expectChainError(ChainError.OUT_OF_MEMORY_RANGE, 5, 3);
    }

    @Test
    void readableAfterWritable() {
        raw.descriptor(1, data, 8, 7, A);
        raw.descriptor(0, data, 8, 0, A | DESC_F_NEXT | DESC_F_WRITE);
        expectChainError(ChainError.READABLE_AFTER_WRITABLE, 7, 2);
    }

    @Test
    void inconsistentRestoreLeavesTheQueueBroken() {
        q.restore(SIZE, true, 0, true);
        assertEquals(ChainError.BAD_INDEX, q.brokenReason());
        q.restore(2, true, 3, true);   // used ahead of avail by 2*SIZE-1 positions
        assertEquals(ChainError.USED_INDEX_JUMP, q.brokenReason());
        q.restore(2, false, 3, true);  // avail in the next lap: used trails by SIZE - 1
        assertFalse(q.isBroken());
    }

    @Test
    void constructorValidatesTheRingParts() {
        var m = driver.memory().table();
        assertThrows(IllegalArgumentException.class, () -> new PackedVirtqueue(0, driver.descSegment(),
                driver.driverEventSegment(), driver.deviceEventSegment(), m, false, false));
        assertThrows(IllegalArgumentException.class, () -> new PackedVirtqueue(SIZE + 1, driver.descSegment(),
                driver.driverEventSegment(), driver.deviceEventSegment(), m, false, false));
        assertThrows(IllegalArgumentException.class, () -> new PackedVirtqueue(SIZE, driver.descSegment(),
                driver.driverEventSegment().asSlice(2), driver.deviceEventSegment(), m, false, false));
        new PackedVirtqueue(SIZE - 1, driver.descSegment(), driver.driverEventSegment(), driver.deviceEventSegment(),
                m, false, false);   // any size works for packed
    }
}
