package io.github.vduse4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
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

    /**
     * A fake IOTLB: a list of entries, each mapped to fresh native memory on request; counts map/unmap calls. An
     * entry is its array: a mapping is unchanged while the array it was made from is still in the list (replace()
     * puts a new one in, as a kernel map change does), or every answer is "cannot tell" with {@code cannotTell}.
     */
    static final class FakeIotlb implements IotlbMapCache.Source {
        final Arena arena = Arena.ofAuto();
        final List<long[]> entries = new ArrayList<>(); // {start, last, access}
        final List<IotlbMapCache.Mapping> mapped = new ArrayList<>();
        final List<IotlbMapCache.Mapping> unmapped = new ArrayList<>();
        int asked;
        boolean cannotTell;

        void add(long start, long last, int access) {
            entries.add(new long[] {start, last, access});
        }

        /** The entries overlapping [start, last] go; [start, last] is mapped anew (other memory). */
        void replace(long start, long last, int access) {
            entries.removeIf(e -> Long.compareUnsigned(e[0], last) <= 0 && Long.compareUnsigned(start, e[1]) <= 0);
            add(start, last, access);
        }

        @Override
        public IotlbMapCache.Mapping map(long iova) {
            for (long[] e : entries) {
                if (Long.compareUnsigned(iova, e[0]) >= 0 && Long.compareUnsigned(iova, e[1]) <= 0) {
                    var m = new IotlbMapCache.Mapping(e[0], e[1], (int) e[2], arena.allocate(e[1] - e[0] + 1), e);
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

        @Override
        public boolean unchanged(IotlbMapCache.Mapping m) {
            asked++;
            return !cannotTell && entries.stream().anyMatch(e -> e == m.origin());
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
        IotlbMapCache cache = threeCached(src);
        Translation t = new Translation();
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

    /** Three cached entries at 0x0000, 0x1000 and 0x8000 (4 KiB each), all translated once. */
    private static IotlbMapCache threeCached(FakeIotlb src) {
        src.add(0x0000, 0x0fff, RW);
        src.add(0x1000, 0x1fff, RW);
        src.add(0x8000, 0x8fff, RW);
        IotlbMapCache cache = new IotlbMapCache(src, 16);
        Translation t = new Translation();
        for (long a : new long[] {0x10, 0x1010, 0x8010}) {
            assertTrue(cache.translate(a, 8, GuestMemory.READ, t));
        }
        return cache;
    }

    @Test
    void revalidateOfTheWholeSpaceTakesOutOnlyWhatChangedAndUnmapsItOnRelease() {
        FakeIotlb src = new FakeIotlb();
        IotlbMapCache cache = threeCached(src);
        Translation t = new Translation();
        assertTrue(cache.translate(0x1010, 8, GuestMemory.READ, t));
        MemorySegment old = t.segment;
        src.replace(0x1000, 0x1fff, RW); // the middle entry now maps other memory

        IotlbMapCache.Stale stale = cache.revalidate(0, -1L); // what VDUSE on vhost-vdpa always sends
        assertEquals(1, stale.size());
        assertEquals(3, src.asked, "every cached entry of the range was checked");
        assertTrue(stale.overlaps(0x1800, 0x1800));
        assertFalse(stale.overlaps(0x0000, 0x0fff), "an unchanged entry is not stale");
        assertTrue(src.unmapped.isEmpty(), "a poller may still hold the stale entry: it stays mapped until release");
        assertEquals(2, cache.size());

        assertTrue(cache.translate(0x1010, 8, GuestMemory.READ, t));
        assertNotSame(old, t.segment, "a new translation maps the new entry, never the stale one");
        assertEquals(4, src.mapped.size(), "the unchanged entries were not mapped again");
        assertTrue(cache.translate(0x8010, 8, GuestMemory.READ, t));
        assertEquals(4, src.mapped.size());

        assertEquals(1, stale.release());
        assertEquals(1, src.unmapped.size());
        assertSame(old, src.unmapped.get(0).segment());
        assertEquals(0, stale.release(), "release is idempotent");
        assertEquals(1, src.unmapped.size());
    }

    @Test
    void revalidateWithNothingChangedIsEmpty() {
        FakeIotlb src = new FakeIotlb();
        IotlbMapCache cache = threeCached(src);
        IotlbMapCache.Stale stale = cache.revalidate(0, -1L);
        assertTrue(stale.isEmpty());
        assertEquals(3, cache.size());
        assertEquals(0, stale.release());
        assertTrue(src.unmapped.isEmpty());
    }

    @Test
    void revalidateChecksOnlyEntriesOverlappingTheRangeEvenPartly() {
        FakeIotlb src = new FakeIotlb();
        IotlbMapCache cache = threeCached(src);
        src.replace(0x0000, 0x0fff, RW);
        src.replace(0x8000, 0x8fff, RW);
        // [0x0fff, 0x1000]: one byte of the first entry, one of the second; the third (changed too) is outside
        IotlbMapCache.Stale stale = cache.revalidate(0x0fff, 0x1000);
        assertEquals(2, src.asked);
        assertEquals(1, stale.size(), "the partly covered changed entry is stale");
        assertTrue(stale.overlaps(0x0000, 0x0000));
        assertEquals(2, cache.size(), "an entry outside the range is not the update's business");
    }

    @Test
    void aSplitEntryIsStaleAndBothHalvesMapAnew() {
        FakeIotlb src = new FakeIotlb();
        IotlbMapCache cache = threeCached(src);
        src.entries.removeIf(e -> e[0] == 0x1000);
        src.add(0x1000, 0x17ff, RW); // the kernel now has the cached entry's range as two entries
        src.add(0x1800, 0x1fff, GuestMemory.READ);
        IotlbMapCache.Stale stale = cache.revalidate(0, -1L);
        assertEquals(1, stale.size());
        Translation t = new Translation();
        assertTrue(cache.translate(0x17f0, 64, GuestMemory.READ, t));
        assertEquals(16, t.length, "the new entry ends where the kernel's does");
        assertFalse(cache.translate(0x1800, 8, GuestMemory.WRITE, t), "the read-only half is read-only");
        stale.release();
    }

    @Test
    void anInvertedRangeIsTakenAsTheWholeSpace() {
        FakeIotlb src = new FakeIotlb();
        IotlbMapCache cache = threeCached(src);
        src.replace(0x8000, 0x8fff, RW);
        // last < start: no kernel sends it; read literally it would overlap nothing or the wrong entries
        IotlbMapCache.Stale stale = cache.revalidate(0x2000, 0x1fff);
        assertEquals(3, src.asked);
        assertEquals(1, stale.size());
        assertTrue(stale.overlaps(0x8000, 0x8fff));
        stale.release();
        assertEquals(2, cache.invalidate(0x2000, 0x1fff), "invalidate too: everything left");
        assertEquals(0, cache.size());
    }

    @Test
    void aSourceThatCannotTellMakesEveryOverlappingEntryStale() {
        FakeIotlb src = new FakeIotlb();
        IotlbMapCache cache = threeCached(src);
        src.cannotTell = true;
        IotlbMapCache.Stale stale = cache.revalidate(0x0000, 0x1fff);
        assertEquals(2, stale.size());
        assertEquals(1, cache.size());
        assertEquals(2, stale.release());
    }

    @Test
    void anEntryReplacedOnAMissIsStaleAtTheNextRevalidateThoughTheTableIsCurrent() {
        FakeIotlb src = new FakeIotlb();
        src.add(0x1000, 0x1fff, RW);
        IotlbMapCache cache = new IotlbMapCache(src, 16);
        Translation t = new Translation();
        assertTrue(cache.translate(0x1010, 8, GuestMemory.READ, t));
        MemorySegment old = t.segment;
        // the kernel changed its map, a poller missed on a neighbouring IOVA the new entry covers before the update
        // message arrived: the new entry replaced the old one in the table, the old one may still be in use
        src.replace(0x0000, 0x1fff, RW);
        assertTrue(cache.translate(0x0010, 8, GuestMemory.READ, t));
        assertEquals(1, cache.size());
        IotlbMapCache.Stale stale = cache.revalidate(0, -1L);
        assertEquals(1, stale.size(), "the replaced entry must still be dropped before the reply");
        assertTrue(src.unmapped.isEmpty());
        stale.release();
        assertSame(old, src.unmapped.get(0).segment());
        assertEquals(1, cache.size(), "the current entry stays");
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
