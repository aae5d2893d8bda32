package io.github.vduse4j.ring;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * A fixed set of mappings, each {@code [guestBase, guestBase + size)} onto a part of a long-lived segment, with
 * {@link GuestMemory#READ}/{@link GuestMemory#WRITE} permissions. Immutable once built: the engine builds a new table
 * and swaps it in on SET_MEM_TABLE (or IOTLB updates).
 *
 * <p>Lookup: first the mapping that answered this caller last, copied into the caller's {@link Translation} (per
 * queue, so pollers sharing a table never write shared memory, and a hit needs no array loads); then a linear scan for
 * up to 8 mappings or a binary search over sorted bounds. Bounds are stored sign-flipped so that unsigned 64-bit guest
 * addresses compare with signed compares.
 */
public final class RegionTable implements GuestMemory {
    private static final int LINEAR_SCAN_MAX = 8;

    /** Interleaved {@code [first0, last0, first1, last1, ...]}, sign-flipped (x ^ Long.MIN_VALUE), sorted. */
    private final long[] bounds;
    private final long[] guestBase;
    private final MemorySegment[] segments;
    private final long[] segmentOffset;
    private final int[] access;
    private final int count;

    private RegionTable(List<Region> regions) {
        count = regions.size();
        bounds = new long[2 * count];
        guestBase = new long[count];
        segments = new MemorySegment[count];
        segmentOffset = new long[count];
        access = new int[count];
        for (int i = 0; i < count; i++) {
            Region r = regions.get(i);
            bounds[2 * i] = r.guestBase ^ Long.MIN_VALUE;
            bounds[2 * i + 1] = (r.guestBase + r.size - 1) ^ Long.MIN_VALUE;
            guestBase[i] = r.guestBase;
            segments[i] = r.segment;
            segmentOffset[i] = r.segmentOffset;
            access[i] = r.access;
        }
    }

    public static Builder builder() { return new Builder(); }

    /** Number of mappings. */
    public int size() { return count; }
    public long guestBase(int i) { return guestBase[i]; }
    public long regionSize(int i) { return (bounds[2 * i + 1] - bounds[2 * i]) + 1; }
    public MemorySegment segment(int i) { return segments[i]; }
    public long segmentOffset(int i) { return segmentOffset[i]; }
    public int access(int i) { return access[i]; }

    @Override
    public boolean translate(long addr, long len, int wanted, Translation out) {
        if (len <= 0) return false;
        final long a = addr ^ Long.MIN_VALUE;
        // Fast path: the mapping that answered this caller last time, copied into its Translation (no array loads).
        if (out.cacheOwner == this && a >= out.cacheFirst && a <= out.cacheLast && (wanted & ~out.cacheAccess) == 0) {
            final long contiguous = out.cacheLast - a + 1;
            out.segment = out.cacheSegment;
            out.offset = addr + out.cacheDelta;
            out.length = contiguous > 0 && contiguous < len ? contiguous : len;
            return true;
        }
        final int r = find(a);
        if (r < 0 || (wanted & ~access[r]) != 0) return false;
        final long first = bounds[2 * r], last = bounds[2 * r + 1];
        final long delta = segmentOffset[r] - guestBase[r];
        final MemorySegment seg = segments[r];
        out.cacheOwner = this;
        out.cacheFirst = first;
        out.cacheLast = last;
        out.cacheDelta = delta;
        out.cacheAccess = access[r];
        out.cacheSegment = seg;
        final long contiguous = last - a + 1;  // bytes from addr to the mapping's end (never 0 here)
        out.segment = seg;
        out.offset = addr + delta;
        out.length = contiguous > 0 && contiguous < len ? contiguous : len;
        return true;
    }

    private int find(long a) {
        final long[] b = bounds;
        final int n = count;
        if (n <= LINEAR_SCAN_MAX) {
            for (int i = 0; i < n; i++) {
                if (a >= b[2 * i] && a <= b[2 * i + 1]) return i;
            }
            return -1;
        }
        int lo = 0, hi = n - 1, found = -1;
        while (lo <= hi) {  // greatest i with first[i] <= a
            int mid = (lo + hi) >>> 1;
            if (b[2 * mid] <= a) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
        }
        return found >= 0 && a <= b[2 * found + 1] ? found : -1;
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("RegionTable[");
        for (int i = 0; i < count; i++) {
            if (i > 0) s.append(", ");
            s.append(String.format("0x%x+0x%x:%s%s", guestBase[i], regionSize(i),
                    (access[i] & READ) != 0 ? "r" : "-", (access[i] & WRITE) != 0 ? "w" : "-"));
        }
        return s.append(']').toString();
    }

    private record Region(long guestBase, long size, MemorySegment segment, long segmentOffset, int access) {}

    /** Collects mappings; {@link #build()} sorts them and rejects overlaps. */
    public static final class Builder {
        private final List<Region> regions = new ArrayList<>();

        private Builder() {}

        /** Maps the whole segment at {@code guestBase}. */
        public Builder add(long guestBase, MemorySegment segment, int access) {
            return add(guestBase, segment.byteSize(), segment, 0, access);
        }

        /** Maps {@code [guestBase, guestBase + size)} onto {@code segment[segmentOffset, segmentOffset + size)}. */
        public Builder add(long guestBase, long size, MemorySegment segment, long segmentOffset, int access) {
            if (size <= 0) throw new IllegalArgumentException("region size must be > 0: " + size);
            if (segmentOffset < 0 || segmentOffset > segment.byteSize() - size) {
                throw new IllegalArgumentException("region [" + segmentOffset + ", +" + size + ") outside segment of "
                        + segment.byteSize() + " bytes");
            }
            if (Long.compareUnsigned(guestBase + size - 1, guestBase) < 0) {
                throw new IllegalArgumentException(String.format("region 0x%x+0x%x wraps past 2^64", guestBase, size));
            }
            if ((access & ~(READ | WRITE)) != 0) throw new IllegalArgumentException("bad access bits " + access);
            regions.add(new Region(guestBase, size, segment, segmentOffset, access));
            return this;
        }

        public RegionTable build() {
            Region[] sorted = regions.toArray(new Region[0]);
            Arrays.sort(sorted, Comparator.comparingLong(r -> r.guestBase ^ Long.MIN_VALUE));
            for (int i = 1; i < sorted.length; i++) {
                Region p = sorted[i - 1];
                long pLast = p.guestBase + p.size - 1;
                if (Long.compareUnsigned(sorted[i].guestBase, pLast) <= 0) {
                    throw new IllegalArgumentException(String.format("regions overlap: 0x%x+0x%x and 0x%x+0x%x",
                            p.guestBase, p.size, sorted[i].guestBase, sorted[i].size));
                }
            }
            return new RegionTable(List.of(sorted));
        }
    }
}
