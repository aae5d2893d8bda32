package io.github.vduse4j.engine;

import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.Translation;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * IOVA -> memory translation backed by IOTLB mappings that are mapped lazily on first use and cached
 * (VDUSE: {@code VDUSE_IOTLB_GET_FD} + {@code mmap}).
 *
 * <p>Readers (queue pollers) see an immutable, sorted snapshot through one volatile read: a hit costs a
 * binary search over a few entries and allocates nothing. A miss takes the slow path under a lock and
 * publishes a new snapshot. {@link #invalidate} removes and unmaps entries; the caller must first make
 * sure no poller can still use them (pause the queues), and answer the driver only after it returns.
 * {@link #revalidate} splits that in two for an update whose range says little (VDUSE on vhost-vdpa announces
 * every change as the whole IOVA space): it takes out only the entries the source no longer maps the same way,
 * which stay mapped until the caller has drained the queues and calls {@link Stale#release()}.
 */
public final class IotlbMapCache implements GuestMemory {

    /**
     * One mapped IOTLB entry: IOVAs {@code [start, last]} at {@code segment}, with GuestMemory access bits, and
     * whatever the source needs to recognise it later ({@link Source#unchanged}; null: nothing).
     */
    public record Mapping(long start, long last, int access, MemorySegment segment, Object origin) {
        public Mapping(long start, long last, int access, MemorySegment segment) {
            this(start, last, access, segment, null);
        }

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

        /**
         * Whether the source now maps exactly {@code mapping}'s IOVAs, with its access and to the same memory, as
         * when {@link #map} returned it; false when it cannot tell. Asked, under the cache's lock, after the
         * transport said the range may have changed. Never throws.
         */
        boolean unchanged(Mapping mapping);
    }

    /**
     * Entries {@link #revalidate} took out of the table: no translation made after it returned reaches them, but a
     * poller may still hold an earlier one (an in-flight request) until it drained.
     */
    public final class Stale {
        private final List<Mapping> entries;

        private Stale(List<Mapping> entries) {
            this.entries = entries;
        }

        /** Nothing was stale: no poller can hold a translation the source no longer has. */
        public boolean isEmpty() {
            return entries.isEmpty();
        }

        /** Stale entries (including ones a newer overlapping entry had replaced). */
        public int size() {
            return entries.size();
        }

        /** Whether a stale entry overlaps IOVAs {@code [start, last]} (e.g. a ring a queue keeps a segment of). */
        public boolean overlaps(long start, long last) {
            for (Mapping m : entries) {
                if (m.overlaps(start, last)) {
                    return true;
                }
            }
            return false;
        }

        /**
         * Unmaps them; the caller guarantees that no poller still holds a translation of them (every queue drained
         * or stopped since {@link #revalidate} returned). Idempotent.
         *
         * @return the number of entries unmapped
         */
        public int release() {
            synchronized (lock) {
                int n = entries.size();
                for (Mapping m : entries) {
                    source.unmap(m);
                }
                entries.clear();
                return n;
            }
        }
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
        return take(start, last, false).release();
    }

    /**
     * After the source said {@code [start, last]} may have changed: takes out of the table every cached entry
     * overlapping the range that the source does not confirm {@link Source#unchanged unchanged}, plus every entry
     * a newer one had replaced, and returns them still mapped. Entries the source confirms stay and keep serving.
     * The caller drains every poller that may hold a translation of a returned entry, then
     * {@link Stale#release() releases} them, and only then answers the update (linux/vduse.h VDUSE_UPDATE_IOTLB:
     * the daemon updates its mappings of the range; the kernel waits for the reply).
     */
    public Stale revalidate(long start, long last) {
        return take(start, last, true);
    }

    private Stale take(long start, long last, boolean keepUnchanged) {
        if (Long.compareUnsigned(last, start) < 0) {
            // no kernel sends one (vduse_dev_update_iotlb refuses last < start): the whole space, so nothing survives
            start = 0;
            last = -1L;
        }
        synchronized (lock) {
            List<Mapping> keep = new ArrayList<>();
            List<Mapping> drop = new ArrayList<>();
            for (Mapping m : table.entries()) {
                boolean stale = m.overlaps(start, last) && !(keepUnchanged && source.unchanged(m));
                (stale ? drop : keep).add(m);
            }
            if (!drop.isEmpty()) {
                table = IovaTable.of(keep, Mapping::start, Mapping::last);
            }
            drop.addAll(retired);
            retired.clear();
            return new Stale(drop);
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
