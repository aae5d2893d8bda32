package io.github.vduse4j.ring;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class RegionTableTest {
    private final Arena arena = Arena.ofConfined();
    private final Translation t = new Translation();

    @AfterEach
    void close() { arena.close(); }

    @Test
    void translatesInsideOneRegion() {
        MemorySegment a = arena.allocate(4096);
        RegionTable table = RegionTable.builder().add(0x1000, a, GuestMemory.READ | GuestMemory.WRITE).build();
        assertTrue(table.translate(0x1010, 100, GuestMemory.READ, t));
        assertSame(a, t.segment);
        assertEquals(0x10, t.offset);
        assertEquals(100, t.length);
    }

    @Test
    void clipsAtTheEndOfAMappingAndContinuesInTheNext() {
        MemorySegment a = arena.allocate(4096), b = arena.allocate(4096);
        RegionTable table = RegionTable.builder().add(0x1000, a, GuestMemory.READ).add(0x2000, b, GuestMemory.READ).build();
        assertTrue(table.translate(0x1ff0, 64, GuestMemory.READ, t));
        assertSame(a, t.segment);
        assertEquals(0xff0, t.offset);
        assertEquals(16, t.length);
        assertTrue(table.translate(0x2000, 48, GuestMemory.READ, t));
        assertSame(b, t.segment);
        assertEquals(0, t.offset);
        assertEquals(48, t.length);
    }

    @Test
    void subRangeOfASegment() {
        MemorySegment a = arena.allocate(8192);
        RegionTable table = RegionTable.builder().add(0x10_0000, 4096, a, 1024, GuestMemory.READ).build();
        assertTrue(table.translate(0x10_0004, 8, GuestMemory.READ, t));
        assertEquals(1028, t.offset);
        assertFalse(table.translate(0x10_1000, 1, GuestMemory.READ, t));
        assertFalse(table.translate(0x0f_ffff, 1, GuestMemory.READ, t));
    }

    @Test
    void rejectsUnmappedForbiddenAndEmpty() {
        MemorySegment a = arena.allocate(4096);
        RegionTable table = RegionTable.builder().add(0x1000, a, GuestMemory.READ).build();
        assertFalse(table.translate(0x0fff, 1, GuestMemory.READ, t));
        assertFalse(table.translate(0x2000, 1, GuestMemory.READ, t));
        assertFalse(table.translate(0x1000, 1, GuestMemory.WRITE, t), "read-only mapping");
        assertFalse(table.translate(0x1000, 1, GuestMemory.READ | GuestMemory.WRITE, t));
        assertFalse(table.translate(0x1000, 0, GuestMemory.READ, t));
        assertFalse(table.translate(0x1000, -5, GuestMemory.READ, t));
        assertFalse(RegionTable.builder().build().translate(0, 1, GuestMemory.READ, t));
    }

    @Test
    void handlesAddressesAboveTwoToThe63() {
        MemorySegment a = arena.allocate(4096);
        long base = 0xFFFF_FFFF_FFFF_F000L;   // last page of the 64-bit space
        RegionTable table = RegionTable.builder().add(base, a, GuestMemory.READ).add(0, a, GuestMemory.READ).build();
        assertTrue(table.translate(0xFFFF_FFFF_FFFF_FFFFL, 100, GuestMemory.READ, t));
        assertEquals(4095, t.offset);
        assertEquals(1, t.length);
        assertTrue(table.translate(0x10, 1, GuestMemory.READ, t));
        assertEquals(0x10, t.offset);
        assertFalse(table.translate(0x8000_0000_0000_0000L, 1, GuestMemory.READ, t));
    }

    @Test
    void rejectsOverlapsAndWraps() {
        MemorySegment a = arena.allocate(4096);
        assertThrows(IllegalArgumentException.class,
                () -> RegionTable.builder().add(0x1000, a, 1).add(0x1fff, a, 1).build());
        assertThrows(IllegalArgumentException.class,
                () -> RegionTable.builder().add(0xFFFF_FFFF_FFFF_F001L, a, 1));
        assertThrows(IllegalArgumentException.class, () -> RegionTable.builder().add(0, 8192, a, 0, 1));
    }

    @Test
    void cachedMappingOfAnotherTableIsNeverUsed() {
        MemorySegment a = arena.allocate(4096), b = arena.allocate(4096);
        RegionTable ta = RegionTable.builder().add(0x1000, a, GuestMemory.READ | GuestMemory.WRITE).build();
        RegionTable tb = RegionTable.builder().add(0x1000, 64, b, 128, GuestMemory.READ).build();
        for (int i = 0; i < 3; i++) {
            assertTrue(ta.translate(0x1010, 100, GuestMemory.WRITE, t));
            assertSame(a, t.segment);
            assertEquals(0x10, t.offset);
            assertFalse(tb.translate(0x1010, 100, GuestMemory.WRITE, t), "b is read-only");
            assertTrue(tb.translate(0x1010, 100, GuestMemory.READ, t));
            assertSame(b, t.segment);
            assertEquals(128 + 0x10, t.offset);
            assertEquals(48, t.length, "b maps 64 bytes only");
            assertFalse(tb.translate(0x1040, 1, GuestMemory.READ, t));
        }
    }

    @Test
    void manyRegionsAgreeWithALinearModel() {
        Random rnd = new Random(42);
        int n = 100;
        long[] bases = new long[n];
        long[] sizes = new long[n];
        MemorySegment[] segs = new MemorySegment[n];
        RegionTable.Builder b = RegionTable.builder();
        long at = 0x7FFF_FFFF_FFF0_0000L;   // crosses the signed boundary on purpose
        for (int i = 0; i < n; i++) {
            at += rnd.nextInt(3) * 4096L;   // gaps or adjacency
            bases[i] = at;
            sizes[i] = 4096L * (1 + rnd.nextInt(4));
            segs[i] = arena.allocate(sizes[i]);
            b.add(bases[i], segs[i], (i % 3 == 0) ? GuestMemory.READ : GuestMemory.READ | GuestMemory.WRITE);
            at += sizes[i];
        }
        RegionTable table = b.build();
        for (int k = 0; k < 20000; k++) {
            long addr = bases[0] - 8192 + (long) (rnd.nextDouble() * (at - bases[0] + 16384));
            long len = 1 + rnd.nextInt(20000);
            int access = rnd.nextBoolean() ? GuestMemory.READ : GuestMemory.WRITE;
            int hit = -1;
            for (int i = 0; i < n; i++) {
                if (Long.compareUnsigned(addr, bases[i]) >= 0 && Long.compareUnsigned(addr, bases[i] + sizes[i]) < 0) hit = i;
            }
            boolean ok = table.translate(addr, len, access, t);
            boolean allowed = hit >= 0 && (access == GuestMemory.READ || hit % 3 != 0);
            assertEquals(allowed, ok, "addr " + Long.toHexString(addr));
            if (ok) {
                assertSame(segs[hit], t.segment);
                assertEquals(addr - bases[hit], t.offset);
                assertEquals(Math.min(len, bases[hit] + sizes[hit] - addr), t.length);
            }
        }
    }
}
