package io.github.vduse4j.engine;

import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.function.ToLongFunction;

/**
 * An immutable snapshot of non-overlapping IOVA ranges {@code [start, last]} (unsigned, inclusive), sorted by
 * start, each with its entry. The IOTLB caches of both transports ({@link IotlbMapCache} for VDUSE, the
 * vhost-user IOTLB) publish one through a volatile field and rebuild it off the datapath; a lookup is one binary
 * search over two primitive arrays, with no allocation.
 *
 * @param <T> the entry type
 */
public final class IovaTable<T> {
    private static final IovaTable<?> EMPTY = new IovaTable<>(new long[0], new long[0], new Object[0]);

    private final long[] starts;
    private final long[] lasts;
    private final Object[] entries;

    private IovaTable(long[] starts, long[] lasts, Object[] entries) {
        this.starts = starts;
        this.lasts = lasts;
        this.entries = entries;
    }

    /** The table with no entries. */
    @SuppressWarnings("unchecked")
    public static <T> IovaTable<T> empty() {
        return (IovaTable<T>) EMPTY;
    }

    /**
     * A table of {@code items}, sorted here by start. The caller keeps them non-overlapping (both caches drop
     * overlapped entries before adding).
     */
    public static <T> IovaTable<T> of(Collection<T> items, ToLongFunction<T> start, ToLongFunction<T> last) {
        Object[] e = items.toArray();
        @SuppressWarnings("unchecked")
        ToLongFunction<Object> s = (ToLongFunction<Object>) start;
        Arrays.sort(e, (a, b) -> Long.compareUnsigned(s.applyAsLong(a), s.applyAsLong(b)));
        long[] st = new long[e.length];
        long[] la = new long[e.length];
        @SuppressWarnings("unchecked")
        ToLongFunction<Object> l = (ToLongFunction<Object>) last;
        for (int i = 0; i < e.length; i++) {
            st[i] = s.applyAsLong(e[i]);
            la[i] = l.applyAsLong(e[i]);
        }
        return new IovaTable<>(st, la, e);
    }

    /** The entry whose range holds {@code addr}, or null. */
    @SuppressWarnings("unchecked")
    public T find(long addr) {
        long[] st = starts;
        int lo = 0;
        int hi = st.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (Long.compareUnsigned(addr, st[mid]) < 0) {
                hi = mid - 1;
            } else if (Long.compareUnsigned(addr, lasts[mid]) > 0) {
                lo = mid + 1;
            } else {
                return (T) entries[mid];
            }
        }
        return null;
    }

    /** Number of entries. */
    public int size() {
        return entries.length;
    }

    /** The entries, by start (a copy: for the control thread's rebuilds). */
    @SuppressWarnings("unchecked")
    public List<T> entries() {
        return (List<T>) List.of(entries);
    }
}
