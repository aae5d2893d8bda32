package io.github.vduse4j.ring;

import static io.github.vduse4j.ring.VirtioRing.*;
import static io.github.vduse4j.ring.testkit.PackedRawRing.availableFlags;
import static io.github.vduse4j.ring.testkit.PackedRawRing.usedFlags;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.DriverMemory;
import io.github.vduse4j.ring.testkit.PackedDriver;
import io.github.vduse4j.ring.testkit.PackedRawRing;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link PackedVirtqueue#popCopied}: a restarted device resubmits descriptor lists from saved copies after the driver
 * reused their ring slots; malformed copies give the same result codes as pop, never an exception.
 */
class PackedPopCopiedTest {
    private static final int SIZE = 8;
    private static final int A = availableFlags(true);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private final PackedDriver driver = DriverConfig.of(SIZE).indirect(true).dataRegions(2, 65536).packed();
    private final PackedRawRing raw = driver.raw();
    private final DescriptorChain chain = new DescriptorChain(DescriptorChain.capacityFor(SIZE));
    private final long data = DriverMemory.DATA_BASE;
    private final long table = DriverMemory.TABLE_BASE;

    @AfterEach
    void close() { driver.close(); }

    /** The copies a tracker takes of ring slots [first, first + n): addr, len, flags, id. */
    record Copy(long[] addr, int[] len, int[] flags, int id) {
        int count() { return addr.length; }
    }

    private Copy copy(int first, int n) {
        MemorySegment d = driver.descSegment();
        long[] addr = new long[n];
        int[] len = new int[n];
        int[] flags = new int[n];
        int id = -1;
        for (int k = 0; k < n; k++) {
            long off = (long) DESC_SIZE * ((first + k) % SIZE);
            addr[k] = d.get(U64, off);
            len[k] = d.get(U32, off + DESC_LEN);
            id = d.get(U16, off + PACKED_DESC_ID) & 0xFFFF;
            flags[k] = d.get(U16, off + PACKED_DESC_FLAGS) & 0xFFFF;
        }
        return new Copy(addr, len, flags, id);
    }

    private int add(long token) {
        long in = driver.memory().allocate(16);
        long out = driver.memory().allocate(16);
        byte[] b = new byte[16];
        for (int i = 0; i < 16; i++) b[i] = (byte) (token * 31 + i);
        driver.memory().write(in, b);
        int id = driver.chain().readable(in, 16).writable(out, 16).indirect(false).add(token);
        assertTrue(id >= 0);
        return id;
    }

    private static void echo(Virtqueue q, DescriptorChain c) {
        MemorySegment tmp = Arena.ofAuto().allocate(Math.max(1, c.readableLength()));
        c.readTo(0, tmp, 0, c.readableLength());
        q.complete(c.id(), (int) c.writeFrom(tmp, 0, 0, c.readableLength()));
    }

    private PackedVirtqueue fresh() {
        return new PackedVirtqueue(SIZE, driver.descSegment(), driver.driverEventSegment(), driver.deviceEventSegment(),
                driver.memory().table(), false, true);
    }

    @Test
    void resubmitsSavedListsAfterTheDriverReusedTheirSlots() {
        PackedVirtqueue first = fresh();
        Copy[] saved = new Copy[3];
        for (int n = 0; n < 3; n++) {
            add(n);
            int before = first.lastAvailIndex();
            assertEquals(Virtqueue.POPPED, first.pop(chain));
            saved[n] = copy(before, 2);
            assertEquals(chain.id(), saved[n].id());
        }
        first.complete(saved[1].id(), 16);   // out of order: request 1 only
        first.publish();
        UsedBuffer u = new UsedBuffer();
        Set<Long> done = new HashSet<>();
        assertTrue(driver.reap(u));
        assertEquals(1L, u.token);
        done.add(u.token);
        // the driver goes on: request 3 in slots 6-7, request 4 in slots 0-1 of the next lap (request 0's slots)
        add(3);
        add(4);
        assertEquals(2, driver.nextAvail());
        assertEquals(availableFlags(false), raw.flags(0) & (PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED));

        PackedVirtqueue second = fresh();
        second.restore(6, true, 2, true);   // avail where the first stopped popping; used after request 1
        for (int n : new int[] {0, 2}) {
            Copy c = saved[n];
            assertEquals(Virtqueue.POPPED, second.popCopied(chain, c.id(), c.addr(), c.len(), c.flags(), c.count()));
            assertEquals(c.id(), chain.id());
            assertEquals((byte) (n * 31), chain.readByte(0), "request " + n + "'s own buffer, not the slot's new one");
            echo(second, chain);
        }
        for (int n = 3; n <= 4; n++) {
            assertEquals(Virtqueue.POPPED, second.pop(chain));
            assertEquals((byte) (n * 31), chain.readByte(0));
            echo(second, chain);
        }
        assertEquals(Virtqueue.EMPTY, second.pop(chain));
        second.publish();
        while (driver.reap(u)) {
            assertTrue(done.add(u.token), "token " + u.token + " used twice");
            assertEquals(16, u.len);
        }
        assertEquals(Set.of(0L, 1L, 2L, 3L, 4L), done);
        assertEquals(0, second.inflight());
        assertEquals(2, second.lastUsedIndex());
        assertFalse(second.lastUsedWrapCounter());
    }

    @Test
    void staleUsedFlagsAheadOfTheUsedPositionAreCleared() {
        PackedVirtqueue q = fresh();
        q.restore(2, false, 5, true);   // slots 5, 6, 7 and 0, 1 of the next lap are in flight
        raw.descriptor(5, data, 8, 1, usedFlags(true) | DESC_F_WRITE);     // stale used element, this lap
        raw.descriptor(6, data, 8, 2, availableFlags(true) | DESC_F_NEXT); // a list the driver made available
        raw.descriptor(7, data, 8, 2, availableFlags(true));
        raw.descriptor(0, data, 8, 3, usedFlags(false));                   // stale, next lap
        raw.descriptor(1, data, 8, 3, usedFlags(true));                    // an old lap's used element: left alone
        raw.descriptor(2, data, 8, 4, usedFlags(false));                   // beyond the count: left alone
        assertEquals(2, q.forgetStaleUsed(5));
        assertEquals(availableFlags(true) | DESC_F_WRITE, raw.flags(5));
        assertEquals(availableFlags(true) | DESC_F_NEXT, raw.flags(6));
        assertEquals(availableFlags(false), raw.flags(0));
        assertEquals(usedFlags(true), raw.flags(1));
        assertEquals(usedFlags(false), raw.flags(2));
        assertEquals(0, q.forgetStaleUsed(-3));
        assertEquals(0, q.forgetStaleUsed(Integer.MAX_VALUE), "only the 5 device-owned slots, nothing stale left");
        assertEquals(usedFlags(false), raw.flags(2));
        PackedVirtqueue broken = fresh();
        broken.restore(2, true, 5, true);   // used ahead of avail: broken (USED_INDEX_JUMP)
        assertTrue(broken.isBroken());
        assertEquals(0, broken.forgetStaleUsed(SIZE));
        assertEquals(usedFlags(false), raw.flags(2));
    }

    // ---- malformed copies ----

    private PackedVirtqueue withRoom(int descriptors) {
        PackedVirtqueue q = fresh();
        q.restore(descriptors % SIZE, descriptors < SIZE, 0, true);
        return q;
    }

    private void expectNeedsReset(PackedVirtqueue q, int reason, int id, long[] addr, int[] len, int[] flags, int n) {
        assertEquals(Virtqueue.NEEDS_RESET, q.popCopied(chain, id, addr, len, flags, n));
        assertEquals(reason, chain.error(), () -> ChainError.name(chain.error()));
        assertTrue(q.isBroken());
        assertEquals(Virtqueue.NEEDS_RESET, q.popCopied(chain, 0, new long[] {data}, new int[] {8}, new int[] {A}, 1));
        assertEquals(ChainError.QUEUE_BROKEN, chain.error());
        assertEquals(Virtqueue.NEEDS_RESET, q.pop(chain));
    }

    private void expectChainError(PackedVirtqueue q, int error, int id, long[] addr, int[] len, int[] flags) {
        assertEquals(Virtqueue.CHAIN_ERROR, q.popCopied(chain, id, addr, len, flags, addr.length),
                () -> ChainError.name(chain.error()));
        assertEquals(error, chain.error(), () -> ChainError.name(chain.error()));
        assertEquals(id, chain.id());
        assertEquals(1, q.inflight());
        q.complete(id, 0);   // in flight with its descriptor count: the used element skips them
        q.publish();
        assertEquals(addr.length % SIZE, q.lastUsedIndex());
        assertEquals(usedFlags(true), raw.flags(0) & (PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED));
        assertEquals(id, raw.id(0));
        assertFalse(q.isBroken());
    }

    @Test
    void noDescriptors() {
        expectNeedsReset(withRoom(2), ChainError.UNTERMINATED_CHAIN, 1, new long[0], new int[0], new int[0], 0);
    }

    @Test
    void moreDescriptorsThanTheQueue() {
        int n = SIZE + 1;
        long[] addr = new long[n];
        int[] len = new int[n];
        int[] flags = new int[n];
        java.util.Arrays.fill(flags, A | DESC_F_NEXT);
        flags[n - 1] = A;
        expectNeedsReset(withRoom(SIZE), ChainError.UNTERMINATED_CHAIN, 1, addr, len, flags, n);
    }

    @Test
    void lastCopyStillHasNext() {
        expectNeedsReset(withRoom(2), ChainError.UNTERMINATED_CHAIN, 1, new long[] {data, data}, new int[] {8, 8},
                new int[] {A | DESC_F_NEXT, A | DESC_F_NEXT}, 2);
    }

    @Test
    void copyBeforeTheLastWithoutNext() {
        expectNeedsReset(withRoom(2), ChainError.INCONSISTENT_FLAGS, 1, new long[] {data, data}, new int[] {8, 8},
                new int[] {A, A}, 2);
    }

    @Test
    void aListCrossingTheRingEndChangesLapOnce() {
        PackedVirtqueue q = withRoom(2);
        assertEquals(Virtqueue.POPPED, q.popCopied(chain, 1, new long[] {data, data}, new int[] {8, 8},
                new int[] {A | DESC_F_NEXT, availableFlags(false)}, 2));
    }

    @Test
    void copiesChangingLapTwice() {
        expectNeedsReset(withRoom(3), ChainError.INCONSISTENT_FLAGS, 1, new long[] {data, data, data},
                new int[] {8, 8, 8}, new int[] {A | DESC_F_NEXT, availableFlags(false) | DESC_F_NEXT, A}, 3);
    }

    @Test
    void usedCopyInsideTheList() {
        expectNeedsReset(withRoom(2), ChainError.INCONSISTENT_FLAGS, 1, new long[] {data, data}, new int[] {8, 8},
                new int[] {A | DESC_F_NEXT, usedFlags(true)}, 2);
    }

    @Test
    void copyThatWasNeverAvailable() {
        expectNeedsReset(withRoom(1), ChainError.INCONSISTENT_FLAGS, 1, new long[] {data}, new int[] {8},
                new int[] {usedFlags(true)}, 1);
    }

    @Test
    void idBeyondSixteenBits() {
        expectNeedsReset(withRoom(1), ChainError.BAD_INDEX, 0x10000, new long[] {data}, new int[] {8}, new int[] {A}, 1);
        expectNeedsReset(withRoom(1), ChainError.BAD_INDEX, -1, new long[] {data}, new int[] {8}, new int[] {A}, 1);
    }

    @Test
    void idAlreadyInFlight() {
        PackedVirtqueue q = withRoom(2);
        assertEquals(Virtqueue.POPPED, q.popCopied(chain, 5, new long[] {data}, new int[] {8}, new int[] {A}, 1));
        expectNeedsReset(q, ChainError.DUPLICATE_ID, 5, new long[] {data}, new int[] {8}, new int[] {A}, 1);
    }

    @Test
    void moreDescriptorsThanBetweenUsedAndAvail() {
        PackedVirtqueue q = withRoom(3);
        assertEquals(Virtqueue.POPPED, q.popCopied(chain, 1, new long[] {data, data}, new int[] {8, 8},
                new int[] {A | DESC_F_NEXT, A}, 2));
        expectNeedsReset(q, ChainError.USED_INDEX_JUMP, 2, new long[] {data, data}, new int[] {8, 8},
                new int[] {A | DESC_F_NEXT, A}, 2);
    }

    @Test
    void roomAcrossTheRingEnd() {
        PackedVirtqueue q = fresh();
        q.restore(1, false, 6, true);   // 3 descriptors in flight: 6, 7, then 0 of the next lap
        assertEquals(Virtqueue.POPPED, q.popCopied(chain, 4, new long[] {data, data, data}, new int[] {8, 8, 8},
                new int[] {A | DESC_F_NEXT, A | DESC_F_NEXT, A}, 3));
        q.complete(4, 0);
        q.publish();
        assertEquals(1, q.lastUsedIndex());
        assertFalse(q.lastUsedWrapCounter());
        assertEquals(4, raw.id(6));
    }

    @Test
    void arraysShorterThanTheCountAreADeviceBug() {
        assertThrows(IllegalArgumentException.class,
                () -> withRoom(2).popCopied(chain, 1, new long[] {data}, new int[] {8}, new int[] {A}, 2));
        assertThrows(IllegalArgumentException.class, () -> withRoom(2).popCopied(chain, 1, null, null, null, 1));
    }

    @Test
    void unmappedBuffer() {
        expectChainError(withRoom(1), ChainError.OUT_OF_MEMORY_RANGE, 3, new long[] {0x9000_0000_0000L},
                new int[] {8}, new int[] {A});
    }

    @Test
    void addressOverflow() {
        expectChainError(withRoom(1), ChainError.ADDRESS_OVERFLOW, 3, new long[] {0xFFFF_FFFF_FFFF_FFF0L},
                new int[] {0x20}, new int[] {A});
    }

    @Test
    void readableAfterWritable() {
        expectChainError(withRoom(2), ChainError.READABLE_AFTER_WRITABLE, 3, new long[] {data, data + 8},
                new int[] {8, 8}, new int[] {A | DESC_F_NEXT | DESC_F_WRITE, A});
    }

    @Test
    void indirectInsideTheList() {
        raw.indirectEntry(table, 0, data, 8, 0);
        expectChainError(withRoom(2), ChainError.INDIRECT_IN_CHAIN, 3, new long[] {data, table}, new int[] {8, 16},
                new int[] {A | DESC_F_NEXT, A | DESC_F_INDIRECT});
    }

    @Test
    void indirectTableOfBadSize() {
        expectChainError(withRoom(1), ChainError.BAD_INDIRECT_SIZE, 3, new long[] {table}, new int[] {24},
                new int[] {A | DESC_F_INDIRECT});
    }

    @Test
    void nestedIndirect() {
        raw.indirectEntry(table, 0, table + 64, 16, DESC_F_INDIRECT);
        expectChainError(withRoom(1), ChainError.NESTED_INDIRECT, 3, new long[] {table}, new int[] {16},
                new int[] {A | DESC_F_INDIRECT});
    }

    @Test
    void indirectNotNegotiated() {
        PackedDriver plain = DriverConfig.of(SIZE).indirect(false).packed();
        try {
            PackedVirtqueue q = new PackedVirtqueue(SIZE, plain.descSegment(), plain.driverEventSegment(),
                    plain.deviceEventSegment(), plain.memory().table(), false, false);
            q.restore(1, true, 0, true);
            assertEquals(Virtqueue.CHAIN_ERROR, q.popCopied(chain, 2, new long[] {DriverMemory.DATA_BASE},
                    new int[] {16}, new int[] {A | DESC_F_INDIRECT}, 1));
            assertEquals(ChainError.INDIRECT_NOT_NEGOTIATED, chain.error());
        } finally {
            plain.close();
        }
    }

    @Test
    void indirectTableIsFollowed() {
        raw.indirectEntry(table, 0, data, 8, 0).indirectEntry(table, 1, data + 64, 4, DESC_F_WRITE);
        PackedVirtqueue q = withRoom(1);
        assertEquals(Virtqueue.POPPED, q.popCopied(chain, 3, new long[] {table}, new int[] {32},
                new int[] {A | DESC_F_INDIRECT}, 1));
        assertEquals(8, chain.readableLength());
        assertEquals(4, chain.writableLength());
    }

    @Test
    void lengthIsUnsigned() {
        // a copied le32 length of 0xFFFFFFF0 is 4 GiB - 16, not negative: unmapped, not an exception
        expectChainError(withRoom(1), ChainError.OUT_OF_MEMORY_RANGE, 3, new long[] {data}, new int[] {0xFFFF_FFF0},
                new int[] {A | DESC_F_WRITE});
    }
}
