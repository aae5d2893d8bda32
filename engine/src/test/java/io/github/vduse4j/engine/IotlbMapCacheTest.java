package io.github.vduse4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.Translation;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class IotlbMapCacheTest {

    /** A fake IOTLB: a list of entries, each mapped to fresh native memory on request; counts map/unmap calls. */
    static final class FakeIotlb implements IotlbMapCache.Source {
        final Arena arena = Arena.ofAuto();
        final List<long[]> entries = new ArrayList<>(); // {start, last, access}
        final List<IotlbMapCache.Mapping> mapped = new ArrayList<>();
        final List<IotlbMapCache.Mapping> unmapped = new ArrayList<>();

        void add(long start, long last, int access) {
            entries.add(new long[] {start, last, access});
        }

        @Override
        public IotlbMapCache.Mapping map(long iova) {
            for (long[] e : entries) {
                if (Long.compareUnsigned(iova, e[0]) >= 0 && Long.compareUnsigned(iova, e[1]) <= 0) {
                    var m = new IotlbMapCache.Mapping(e[0], e[1], (int) e[2], arena.allocate(e[1] - e[0] + 1));
                    mapped.add(m);
                    return m;
                }
            }
            return null;
        }

        @Override
        public void unmap(IotlbMapCache.Mapping m) {
            unmapped.add(m);
        }
    }

    private static final int RW = GuestMemory.READ | GuestMemory.WRITE;

    @Test
    void missMapsOnceThenHitsFromCache() {
        FakeIotlb src = new FakeIotlb();
        src.add(0x10000, 0x1ffff, RW);
        IotlbMapCache cache = new IotlbMapCache(src, 16);
        Translation t = new Translation();

        assertTrue(cache.translate(0x10010, 64, GuestMemory.READ, t));
        assertEquals(0x10, t.offset);
        assertEquals(64, t.length);
        MemorySegment first = t.segment;
        assertTrue(cache.translate(0x1fff0, 64, GuestMemory.WRITE, t));
        assertSame(first, t.segment);
        assertEquals(0xfff0, t.offset);
        assertEquals(16, t.length, "length is cut at the end of the entry");
        assertEquals(1, src.mapped.size());
        assertEquals(1, cache.misses());
    }

    @Test
    void unmappedAddressAndWrongPermissionAreRefused() {
        FakeIotlb src = new FakeIotlb();
        src.add(0x1000, 0x1fff, GuestMemory.READ);
        IotlbMapCache cache = new IotlbMapCache(src, 16);
        Translation t = new Translation();
        assertFalse(cache.translate(0x5000, 8, GuestMemory.READ, t), "no entry");
        assertFalse(cache.translate(0x1000, 8, GuestMemory.WRITE, t), "read-only entry used for a device write");
        assertFalse(cache.translate(0x1000, 0, GuestMemory.READ, t), "empty range");
        assertTrue(cache.translate(0x1000, 8, GuestMemory.READ, t));
    }

    @Test
    void invalidateUnmapsOnlyOverlappingEntriesAndRemapsOnNextUse() {
        FakeIotlb src = new FakeIotlb();
        src.add(0x0000, 0x0fff, RW);
        src.add(0x1000, 0x1fff, RW);
        src.add(0x8000, 0x8fff, RW);
        IotlbMapCache cache = new IotlbMapCache(src, 16);
        Translation t = new Translation();
        for (long a : new long[] {0x10, 0x1010, 0x8010}) {
            assertTrue(cache.translate(a, 8, GuestMemory.READ, t));
        }
        assertEquals(3, cache.size());

        assertEquals(2, cache.invalidate(0x0800, 0x1800));
        assertEquals(1, cache.size());
        assertEquals(2, src.unmapped.size());
        assertTrue(cache.translate(0x8010, 8, GuestMemory.READ, t));
        assertEquals(3, src.mapped.size(), "the untouched entry is still cached");
        assertTrue(cache.translate(0x1010, 8, GuestMemory.READ, t));
        assertEquals(4, src.mapped.size(), "an invalidated entry is mapped again on use");

        cache.clear();
        assertEquals(0, cache.size());
        assertEquals(src.mapped.size(), src.unmapped.size(), "clear unmaps everything it mapped");
    }

    @Test
    void entriesAtTheTopOfTheAddressSpaceDoNotOverflow() {
        FakeIotlb src = new FakeIotlb();
        src.add(-4096L, -1L, RW); // [0xffff_ffff_ffff_f000, 0xffff_ffff_ffff_ffff]
        IotlbMapCache cache = new IotlbMapCache(src, 16);
        Translation t = new Translation();
        assertTrue(cache.translate(-16L, 100, GuestMemory.READ, t));
        assertEquals(4096 - 16, t.offset);
        assertEquals(16, t.length);
    }

    @Test
    void boundedTableRefusesBeyondItsSize() {
        FakeIotlb src = new FakeIotlb();
        for (int i = 0; i < 4; i++) {
            src.add(i * 0x1000L, i * 0x1000L + 0xfff, RW);
        }
        IotlbMapCache cache = new IotlbMapCache(src, 2);
        Translation t = new Translation();
        assertTrue(cache.translate(0x0000, 8, GuestMemory.READ, t));
        assertTrue(cache.translate(0x1000, 8, GuestMemory.READ, t));
        assertFalse(cache.translate(0x2000, 8, GuestMemory.READ, t));
        assertEquals(1, src.unmapped.size(), "the refused mapping is released at once");
    }
}
