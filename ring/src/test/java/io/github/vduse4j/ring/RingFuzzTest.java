package io.github.vduse4j.ring;

import static io.github.vduse4j.ring.VirtioRing.*;
import static org.junit.jupiter.api.Assertions.*;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Coverage-guided fuzzing (Jazzer) of the split and packed device queues: the fuzzer is the driver. It writes
 * descriptors, indirect tables, avail entries/idx, packed flags and event suppression areas into memory mapped by a
 * {@link RegionTable} of 13 mappings with holes (read-only, write-only, adjacent-but-discontiguous, top of the
 * 64-bit space), interleaved with device calls (pop, complete, publish, needsNotification, enable/disable, restore).
 *
 * <p>Invariants checked after every call: pop returns one of the four results; a broken queue stays broken until
 * restore; every buffer lies inside one mapping with the access its direction needs; translations per pop are
 * bounded by the chain's capacity; pop writes no memory at all, and complete/publish/notification calls write only
 * the device's own ring parts (split: used ring; packed: descriptor ring and device event area); in-flight counts
 * match what was popped and never exceed the queue size; split publish stores exactly the device's used index.
 *
 * <p>{@code mvn test} replays the committed corpus under {@code src/test/resources/.../RingFuzzTestInputs/};
 * {@code JAZZER_FUZZ=1} (scripts/fuzz ring-split / ring-packed) fuzzes.
 */
class RingFuzzTest {
    private static final long MEM_BYTES = 0x8000;
    private static final MemorySegment MEM = Arena.global().allocate(MEM_BYTES, 4096);
    private static final MemorySegment BEFORE = Arena.global().allocate(MEM_BYTES, 4096);
    /** The rings: descriptor table/ring at 0, avail/driver event at 0x400, used/device event at 0x600 of R0. */
    private static final long DESC = 0, AVAIL = 0x400, USED = 0x600;
    /** Guest bases of the mappings the fuzzer aims at (plus raw 64-bit values). */
    private static final long[] BASES = {0x1000, 0x10000, 0x13000, 0x14000, 0x15000, 0xFFFF_FFFF_FFFF_F000L};
    private static final long[] SIZES = {0x1000, 0x2000, 0x1000, 0x1000, 0x1000, 0x1000};
    private static final RegionTable TABLE;

    static {
        RegionTable.Builder b = RegionTable.builder()
                .add(0x1000, 0x1000, MEM, 0x0000, GuestMemory.READ | GuestMemory.WRITE)      // rings
                .add(0x10000, 0x2000, MEM, 0x1000, GuestMemory.READ | GuestMemory.WRITE)     // data, tables
                .add(0x13000, 0x1000, MEM, 0x3000, GuestMemory.READ)                         // read-only
                .add(0x14000, 0x1000, MEM, 0x6000, GuestMemory.READ | GuestMemory.WRITE)     // adjacent in guest,
                .add(0x15000, 0x1000, MEM, 0x4000, GuestMemory.WRITE)                        // write-only
                .add(0xFFFF_FFFF_FFFF_F000L, 0x1000, MEM, 0x5000, GuestMemory.READ | GuestMemory.WRITE);
        for (int i = 0; i < 7; i++) {  // > 8 mappings: the binary-search path; 256-byte pieces with holes
            b.add(0x40000 + 0x200L * i, 0x100, MEM, 0x7000 + 0x100L * i, GuestMemory.READ | GuestMemory.WRITE);
        }
        TABLE = b.build();
    }

    /** Counts translations and answers from the table. */
    private static final class CountingMemory implements GuestMemory {
        long calls;

        @Override
        public boolean translate(long addr, long len, int access, Translation out) {
            calls++;
            return TABLE.translate(addr, len, access, out);
        }
    }

    @FuzzTest(maxDuration = "30s")
    void split(FuzzedDataProvider data) {
        run(data, false);
    }

    @FuzzTest(maxDuration = "30s")
    void packed(FuzzedDataProvider data) {
        run(data, true);
    }

    private static void run(FuzzedDataProvider data, boolean packed) {
        MEM.fill((byte) 0);
        BEFORE.fill((byte) 0);   // BEFORE mirrors MEM as the driver left it (driverWrite copies what it wrote)
        int size = packed ? data.consumeInt(1, 64) : 1 << data.consumeInt(0, 6);
        boolean eventIdx = data.consumeBoolean(), indirect = data.consumeBoolean();
        CountingMemory memory = new CountingMemory();
        Virtqueue q = packed
                ? new PackedVirtqueue(size, MEM.asSlice(DESC, 16L * size), MEM.asSlice(AVAIL, 4), MEM.asSlice(USED, 4),
                        memory, eventIdx, indirect)
                : new SplitVirtqueue(size, MEM.asSlice(DESC, 16L * size), MEM.asSlice(AVAIL, availRingBytes(size)),
                        MEM.asSlice(USED, usedRingBytes(size)), memory, eventIdx, indirect);
        DescriptorChain chain = new DescriptorChain(data.consumeInt(1, 2 * size + 4));
        long deviceLo = packed ? DESC : USED, deviceHi = packed ? DESC + 16L * size : USED + usedRingBytes(size);
        List<Integer> inflight = new ArrayList<>();
        boolean broken = false;
        boolean completedSinceRestore = false;   // restore() takes used->idx as the driver left it, unpublished
        for (int op = 0; op < 400 && data.remainingBytes() > 0; op++) {
            int kind = data.consumeInt(0, 15);
            if (kind <= 5) {   // the driver writes its memory
                driverWrite(data, kind, packed, size);
                continue;
            }
            boolean mayWriteDeviceArea = true;
            switch (kind) {
                case 6, 7, 8, 9 -> {
                    mayWriteDeviceArea = false;
                    long before = memory.calls;
                    int res = q.pop(chain);
                    assertTrue(memory.calls - before <= chain.capacity() + 2L, "translations per pop are bounded");
                    assertTrue(res >= Virtqueue.NEEDS_RESET && res <= Virtqueue.POPPED, "result " + res);
                    if (broken) assertEquals(Virtqueue.NEEDS_RESET, res, "a broken queue stays broken");
                    assertEquals(res == Virtqueue.NEEDS_RESET, q.isBroken());
                    if (res == Virtqueue.NEEDS_RESET) {
                        broken = true;
                        assertNotEquals(ChainError.NONE, chain.error());
                        assertNotEquals(ChainError.NONE, q.brokenReason());
                    } else if (res != Virtqueue.EMPTY) {
                        assertEquals(res == Virtqueue.POPPED, chain.error() == ChainError.NONE);
                        assertTrue(packed ? chain.id() >= 0 && chain.id() <= 0xFFFF : chain.id() >= 0 && chain.id() < size,
                                "id " + chain.id());
                        if (res == Virtqueue.POPPED) assertBuffersInsideMappings(chain);
                        inflight.add(chain.id());
                    }
                }
                case 10, 11 -> {
                    if (!inflight.isEmpty()) {
                        int id = inflight.remove(data.consumeInt(0, inflight.size() - 1));
                        q.complete(id, data.consumeInt());
                        completedSinceRestore = true;
                    }
                }
                case 12 -> {
                    q.publish();
                    if (!packed && completedSinceRestore) {
                        assertEquals(q.lastUsedIndex(), MEM.get(ValueLayout.JAVA_SHORT, USED + USED_IDX) & 0xFFFF,
                                "used->idx is the device's used index");
                    }
                    q.needsNotification();
                }
                case 13 -> q.disableNotifications();
                case 14 -> q.enableNotifications();
                default -> {
                    int avail = data.consumeInt(0, 0xFFFF), used = data.consumeInt(0, 0xFFFF);
                    q.restore(packed ? avail % (size + 1) : avail, data.consumeBoolean(), packed ? used % (size + 1) : used,
                            data.consumeBoolean());
                    broken = q.isBroken();
                    inflight.clear();
                    completedSinceRestore = false;
                    assertEquals(0, q.inflight(), "restore forgets in-flight chains");
                }
            }
            assertEquals(inflight.size(), q.inflight(), "in-flight count");
            assertTrue(q.inflight() <= size, "in flight " + q.inflight() + " > size " + size);
            assertDeviceWroteOnly(mayWriteDeviceArea ? deviceLo : 0, mayWriteDeviceArea ? deviceHi : 0,
                    packed && mayWriteDeviceArea);
            if (mayWriteDeviceArea) {   // what the device wrote is the starting point of the next check
                MemorySegment.copy(MEM, deviceLo, BEFORE, deviceLo, deviceHi - deviceLo);
                if (packed) MemorySegment.copy(MEM, USED, BEFORE, USED, 4);
            }
        }
    }

    /**
     * Every byte outside {@code [lo, hi)} (and the packed device event area if allowed) is as before the call: as
     * BEFORE, which holds MEM as the driver and the previous device calls left it.
     */
    private static void assertDeviceWroteOnly(long lo, long hi, boolean deviceEvent) {
        long from = 0;
        long[][] allowed = deviceEvent ? new long[][] {{lo, hi}, {USED, USED + 4}} : new long[][] {{lo, hi}};
        java.util.Arrays.sort(allowed, (a, b) -> Long.compare(a[0], b[0]));
        for (long[] r : allowed) {
            assertEquals(-1, MEM.asSlice(from, Math.max(0, r[0] - from)).mismatch(BEFORE.asSlice(from, Math.max(0, r[0] - from))),
                    "device wrote outside its ring parts, below 0x" + Long.toHexString(r[0]));
            from = Math.max(from, r[1]);
        }
        assertEquals(-1, MEM.asSlice(from).mismatch(BEFORE.asSlice(from)), "device wrote outside its ring parts");
    }

    private static void assertBuffersInsideMappings(DescriptorChain c) {
        assertTrue(c.bufferCount() <= c.capacity());
        long readable = 0, writable = 0;
        for (int b = 0; b < c.bufferCount(); b++) {
            MemorySegment seg = c.segment(b);
            long off = c.offset(b), len = c.length(b);
            assertTrue(len > 0, "empty buffer");
            int need = c.isWritable(b) ? GuestMemory.WRITE : GuestMemory.READ;
            boolean inside = false;
            for (int i = 0; i < TABLE.size(); i++) {
                if (TABLE.segment(i) == seg && off >= TABLE.segmentOffset(i)
                        && off + len <= TABLE.segmentOffset(i) + TABLE.regionSize(i) && (TABLE.access(i) & need) != 0) {
                    inside = true;
                }
            }
            assertTrue(inside, "buffer " + b + " at +0x" + Long.toHexString(off) + " len " + len
                    + " outside every mapping with access " + need);
            if (c.isWritable(b)) writable += len; else readable += len;
        }
        assertEquals(readable, c.readableLength());
        assertEquals(writable, c.writableLength());
    }

    private static long address(FuzzedDataProvider data) {
        int pick = data.consumeInt(0, BASES.length);
        if (pick == BASES.length) return data.consumeLong();
        return BASES[pick] + data.consumeLong(-32, SIZES[pick] + 32);
    }

    private static int length(FuzzedDataProvider data) {
        return switch (data.consumeInt(0, 3)) {
            case 0 -> data.consumeInt();
            case 1 -> data.consumeInt(0, 0x2100);
            default -> 16 * data.consumeInt(0, 66);   // indirect table sizes
        };
    }

    private static void descriptor(FuzzedDataProvider data, MemorySegment s, boolean packed, int size) {
        s.set(ValueLayout.JAVA_LONG_UNALIGNED, DESC_ADDR, address(data));
        s.set(ValueLayout.JAVA_INT_UNALIGNED, DESC_LEN, length(data));
        if (packed) {
            s.set(ValueLayout.JAVA_SHORT_UNALIGNED, PACKED_DESC_ID, (short) data.consumeInt(0, size + 1));
            s.set(ValueLayout.JAVA_SHORT_UNALIGNED, PACKED_DESC_FLAGS, data.consumeShort());
        } else {
            s.set(ValueLayout.JAVA_SHORT_UNALIGNED, DESC_FLAGS, (short) data.consumeInt(0, 7));
            s.set(ValueLayout.JAVA_SHORT_UNALIGNED, DESC_NEXT, (short) data.consumeInt(0, size + 1));
        }
    }

    /** The driver writes its memory; the bytes written are copied to BEFORE too. */
    private static void driverWrite(FuzzedDataProvider data, int kind, boolean packed, int size) {
        switch (kind) {
            case 0, 1 -> {
                long at = DESC + 16L * data.consumeInt(0, size - 1);
                descriptor(data, MEM.asSlice(at, 16), packed, size);
                written(at, 16);
            }
            case 2 -> {   // an indirect table entry (the data region, 16-aligned)
                long at = 0x1000 + 16L * data.consumeInt(0, 0x1FF);
                descriptor(data, MEM.asSlice(at, 16), false, size);
                if (packed && data.consumeBoolean()) {
                    MEM.set(ValueLayout.JAVA_SHORT_UNALIGNED, at + DESC_FLAGS, (short) data.consumeInt(0, 7));
                }
                written(at, 16);
            }
            case 3 -> {
                if (packed) {   // driver event suppression: off_wrap, flags
                    MEM.set(ValueLayout.JAVA_INT, AVAIL, data.consumeInt());
                    written(AVAIL, 4);
                } else {        // avail entry
                    long at = AVAIL + AVAIL_RING + 2L * data.consumeInt(0, size - 1);
                    MEM.set(ValueLayout.JAVA_SHORT, at, (short) data.consumeInt(0, size + 1));
                    written(at, 2);
                }
            }
            case 4 -> {
                if (packed) {   // make a descriptor available (or used) for one lap or the other
                    long f = DESC + 16L * data.consumeInt(0, size - 1) + PACKED_DESC_FLAGS;
                    int flags = MEM.get(ValueLayout.JAVA_SHORT, f) & ~(PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED);
                    int lap = data.consumeInt(0, 3);
                    MEM.set(ValueLayout.JAVA_SHORT, f, (short) (flags | (lap & 1) * PACKED_DESC_F_AVAIL
                            | (lap >> 1) * PACKED_DESC_F_USED));
                    written(f, 2);
                } else {        // avail idx: forward by a few, or anywhere
                    int idx = MEM.get(ValueLayout.JAVA_SHORT, AVAIL + AVAIL_IDX) & 0xFFFF;
                    idx = data.consumeBoolean() ? idx + data.consumeInt(0, size + 1) : data.consumeInt(0, 0xFFFF);
                    MEM.set(ValueLayout.JAVA_SHORT, AVAIL + AVAIL_IDX, (short) idx);
                    if (data.consumeBoolean()) MEM.set(ValueLayout.JAVA_SHORT, AVAIL + AVAIL_FLAGS, data.consumeShort());
                    written(AVAIL, 4);   // flags and idx
                }
            }
            default -> {   // raw bytes anywhere the driver may write (rings and data, not the device's areas)
                long at = data.consumeLong(0, MEM_BYTES - 1);
                if (at >= USED && at < USED + 0x300) at = AVAIL + (at & 0xFF);
                MEM.set(ValueLayout.JAVA_BYTE, at, data.consumeByte());
                written(at, 1);
            }
        }
    }

    private static void written(long at, long len) {
        MemorySegment.copy(MEM, at, BEFORE, at, len);
    }
}
