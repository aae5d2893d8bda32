package io.github.vduse4j.engine;

import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.Translation;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * IOVA -> memory translation backed by IOTLB mappings that are mapped lazily on first use and cached
 * (VDUSE: {@code VDUSE_IOTLB_GET_FD} + {@code mmap}; vhost-user: {@code IOTLB_MSG} updates).
 *
 * <p>Readers (queue pollers) see an immutable, sorted snapshot through one volatile read: a hit costs a
 * binary search over a few entries and allocates nothing. A miss takes the slow path under a lock and
 * publishes a new snapshot. {@link #invalidate} removes and unmaps entries; the caller must first make
 * sure no poller can still use them (pause the queues), and answer the driver only after it returns.
 */
public final class IotlbMapCache implements GuestMemory {

    /** One mapped IOTLB entry: IOVAs {@code [start, last]} at {@code segment}, with GuestMemory access bits. */
    public record Mapping(long start, long last, int access, MemorySegment segment) {
        boolean covers(long iova) {
            return Long.compareUnsigned(iova, start) >= 0 && Long.compareUnsigned(iova, last) <= 0;
        }

        boolean overlaps(long s, long l) {
            return Long.compareUnsigned(start, l) <= 0 && Long.compareUnsigned(s, last) <= 0;
        }
    }

    /** Where mappings come from; the transport's kernel or socket side. */
    public interface Source {
        /** Maps the entry covering {@code iova}, or returns null if the IOVA is not mapped. Never throws. */
        Mapping map(long iova);

        /** Releases a mapping returned by {@link #map}. */
        void unmap(Mapping mapping);
    }

    private final Source source;
    private final int maxEntries;
    private final Object lock = new Object();
    private volatile IovaTable<Mapping> table = IovaTable.empty();
    /** Replaced by a newer overlapping entry but possibly still in a poller's hands: unmapped on invalidate. */
    private final List<Mapping> retired = new ArrayList<>();
    private long misses;

    /** @param maxEntries bound on cached mappings; a miss beyond it fails the translation (a chain error) */
    public IotlbMapCache(Source source, int maxEntries) {
        this.source = source;
        this.maxEntries = maxEntries;
    }

    @Override
    public boolean translate(long addr, long len, int access, Translation out) {
        if (len <= 0) {
            return false;
        }
        Mapping m = table.find(addr);
        if (m == null && (m = miss(addr)) == null) {
            return false;
        }
        if ((m.access & access) != access) {
            return false;
        }
        long off = addr - m.start;
        out.segment = m.segment;
        out.offset = off;
        // bytes from addr to the entry's end; last - addr + 1 may overflow only for a 2^64 entry
        long avail = m.last - addr + 1;
        out.length = (avail <= 0 || avail > len) ? len : avail;
        return true;
    }

    private Mapping miss(long addr) {
        synchronized (lock) {
            Mapping m = table.find(addr);
            if (m != null) {
                return m;
            }
            m = source.map(addr);
            if (m == null || !m.covers(addr)) {
                if (m != null) {
                    source.unmap(m);
                }
                return null;
            }
            misses++;
            List<Mapping> current = table.entries();
            List<Mapping> next = new ArrayList<>(current);
            // A new entry overlapping stale ones replaces them (the source's view is the truth); the stale
            // mappings stay mapped until invalidate() so a poller that still holds them cannot fault.
            for (Mapping old : current) {
                if (old.overlaps(m.start, m.last)) {
                    next.remove(old);
                    retired.add(old);
                }
            }
            if (next.size() >= maxEntries) {
                source.unmap(m);
                return null;
            }
            next.add(m);
            table = IovaTable.of(next, Mapping::start, Mapping::last);
            return m;
        }
    }

    /**
     * Drops and unmaps every cached entry overlapping {@code [start, last]}. The caller guarantees that no
     * poller is using translations of that range (queues paused or stopped).
     *
     * @return the number of entries unmapped
     */
    public int invalidate(long start, long last) {
        synchronized (lock) {
            List<Mapping> keep = new ArrayList<>();
            List<Mapping> drop = new ArrayList<>();
            for (Mapping m : table.entries()) {
                (m.overlaps(start, last) ? drop : keep).add(m);
            }
            table = IovaTable.of(keep, Mapping::start, Mapping::last);
            drop.addAll(retired);
            retired.clear();
            for (Mapping m : drop) {
                source.unmap(m);
            }
            return drop.size();
        }
    }

    /** Unmaps everything (device reset or teardown; queues stopped). */
    public void clear() {
        invalidate(0, -1L);
    }

    /** Cached entries now. */
    public int size() {
        return table.size();
    }

    /** Slow-path mappings made so far. */
    public long misses() {
        synchronized (lock) {
            return misses;
        }
    }
}
