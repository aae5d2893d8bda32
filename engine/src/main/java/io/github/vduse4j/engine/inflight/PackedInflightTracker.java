package io.github.vduse4j.engine.inflight;

import io.github.vduse4j.ring.VirtioRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One packed queue's region of the inflight buffer, following the spec's "Inflight I/O tracking" steps for packed
 * virtqueues. Layout ({@code QueueRegionPacked} / {@code DescStatePacked}, C natural alignment, host byte order;
 * offsets checked with gcc's {@code offsetof} on x86-64):
 * <pre>
 * QueueRegionPacked: features u64 @0, version u16 @8, desc_num u16 @10, free_head u16 @12, old_free_head u16 @14,
 *                    used_idx u16 @16, old_used_idx u16 @18, used_wrap_counter u8 @20, old_used_wrap_counter u8 @21,
 *                    padding[7] @22 (desc[] is 8-aligned: 3 more bytes), desc[] @32
 * DescStatePacked (32 bytes): inflight u8 @0, padding u8 @1, next u16 @2, last u16 @4, num u16 @6, counter u64 @8,
 *                    id u16 @16, flags u16 @18, len u32 @20, addr u64 @24
 * </pre>
 * Entries form a free list through {@code next} (ended by an index not below the size); each popped descriptor list
 * takes one entry per ring descriptor, in order, the first (its head) holding inflight/num/last/counter and every
 * one a copy of its ring descriptor (addr, len, flags, id), so a restarted back-end can resubmit the list even if
 * the driver has reused those ring slots. The {@code old_*} fields are the committed state; a pop commits itself
 * ({@code old_free_head}), a publication commits {@code old_free_head}, {@code old_used_idx} and
 * {@code old_used_wrap_counter} after the ring shows the used elements.
 *
 * <p>Two points where the spec is silent, chosen so that any crash point recovers: completions are linked into the
 * free list only when their batch is published ({@link #publishing}), so pops between completions and publication
 * always find {@code free_head == old_free_head} as the spec's pop steps assume; and recovery compares the wrap
 * counters as well as the indexes (a batch of exactly queue-size descriptors leaves the index unchanged).
 *
 * <p>The hot path keeps its own copy of the links (free list, list lengths and ends, id to entry), writes the
 * shared region and never reads an index back from it. Poller thread only while the queue runs; {@link #recover}
 * runs before it starts.
 */
public final class PackedInflightTracker implements InflightTracker {
    public static final int HEADER = 32;
    public static final int DESC = 32;
    public static final long FREE_HEAD = 12, OLD_FREE_HEAD = 14, USED_IDX = 16, OLD_USED_IDX = 18, USED_WRAP = 20,
            OLD_USED_WRAP = 21;
    public static final long D_INFLIGHT = 0, D_NEXT = 2, D_LAST = 4, D_NUM = 6, D_COUNTER = 8, D_ID = 16, D_FLAGS = 18,
            D_LEN = 20, D_ADDR = 24;
    private static final int MAX_IDS = 1 << 16;   // buffer ids are le16 (virtio 1.2 §2.8.13)
    private static final int AVAIL_USED = VirtioRing.PACKED_DESC_F_AVAIL | VirtioRing.PACKED_DESC_F_USED;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;
    // ring descriptors (virtio 1.2 §2.8.13: le64 addr, le32 len, le16 id, le16 flags)
    private static final ValueLayout.OfShort RING_U16 = U16.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt RING_U32 = U32.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong RING_U64 = U64.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    private final MemorySegment s;
    private final int size;
    private final char[] next;        // desc[].next as we last wrote it (size = end of list)
    private final char[] num;         // desc[head].num
    private final char[] last;        // desc[head].last
    private final char[] headOfId = new char[MAX_IDS];   // head entry + 1 of each buffer id in flight; 0 = none
    private final int[] batch;        // heads completed since the last publication
    private int batchCount;
    private int freeHead;
    private int freeCount;
    private long counter;
    private MemorySegment ring;       // the descriptor ring the lists are copied from
    private boolean disabled;         // bookkeeping no longer matches the ring: stop writing the region

    /** @param s the queue's region, at least {@code 32 + 32 * size} bytes */
    public PackedInflightTracker(MemorySegment s, int size) {
        this.s = s;
        this.size = size;
        this.next = new char[size];
        this.num = new char[size];
        this.last = new char[size];
        this.batch = new int[size];
    }

    private static long desc(int i) {
        return HEADER + (long) DESC * i;
    }

    /** Formats a fresh packed queue region of {@code size} entries (as DPDK does): every entry free, in order. */
    public static void format(MemorySegment s, int size) {
        s.asSlice(0, HEADER + (long) DESC * size).fill((byte) 0);
        for (int j = 0; j < size; j++) {
            s.set(U16, desc(j) + D_NEXT, (short) (j + 1));
        }
        s.set(U8, USED_WRAP, (byte) 1);       // §2.8.1: wrap counters start at 1
        s.set(U8, OLD_USED_WRAP, (byte) 1);
    }

    /** True once the bookkeeping stopped (a pop it could not record); the region is then left alone. */
    public boolean disabled() {
        return disabled;
    }

    /**
     * Spec, receiving available buffers: the list occupies ring slots {@code [firstSlot, endSlot)}; its head entry is
     * {@code old_free_head}, each descriptor is copied into the entry at {@code free_head}, which then moves on.
     * Committed by the store of {@code old_free_head}: a crash before it leaves the entries on the free list.
     */
    @Override
    public void popped(int id, int firstSlot, int endSlot) {
        if (disabled || ring == null) {
            return;
        }
        int slots = endSlot - firstSlot;
        if (slots <= 0) {
            slots += size;   // the list wrapped past the ring's end (equal bounds: the whole ring)
        }
        if (firstSlot < 0 || firstSlot >= size || slots > freeCount || id < 0 || id >= MAX_IDS) {
            disabled = true; // cannot happen while ring and tracker agree (a list never has more than size entries)
            return;
        }
        final int h = freeHead;
        final long hd = desc(h);
        s.set(U16, hd + D_NUM, (short) 0);
        s.set(U64, hd + D_COUNTER, counter++);
        s.set(U8, hd + D_INFLIGHT, (byte) 1);
        int e = h;
        int end = h;
        int slot = firstSlot;
        for (int k = 0; k < slots; k++) {
            final long src = (long) VirtioRing.DESC_SIZE * slot;
            final long dst = desc(e);
            s.set(U64, dst + D_ADDR, ring.get(RING_U64, src + VirtioRing.DESC_ADDR));
            s.set(U32, dst + D_LEN, ring.get(RING_U32, src + VirtioRing.DESC_LEN));
            s.set(U16, dst + D_ID, ring.get(RING_U16, src + VirtioRing.PACKED_DESC_ID));
            s.set(U16, dst + D_FLAGS, ring.get(RING_U16, src + VirtioRing.PACKED_DESC_FLAGS));
            end = e;
            e = next[e];   // < size: freeCount >= slots entries are linked from freeHead
            if (++slot == size) {
                slot = 0;
            }
        }
        s.set(U16, hd + D_LAST, (short) end);
        s.set(U16, hd + D_NUM, (short) slots);
        s.set(U16, FREE_HEAD, (short) e);
        VarHandle.releaseFence();   // the copies and the head before the commit
        s.set(U16, OLD_FREE_HEAD, (short) e);
        freeHead = e;
        freeCount -= slots;
        num[h] = (char) slots;
        last[h] = (char) end;
        headOfId[id] = (char) (h + 1);
    }

    /** Remembers the completed list; it is linked into the free list when its batch is published. */
    @Override
    public void completed(int id) {
        if (disabled || id < 0 || id >= MAX_IDS) {
            return;
        }
        final int h = headOfId[id] - 1;
        if (h < 0 || batchCount == size) {
            return;
        }
        headOfId[id] = 0;
        batch[batchCount++] = h;
    }

    /**
     * Spec, supplying used buffers, steps 1-4 for each list of the batch ({@code desc[e.last].next = free_head},
     * {@code free_head = e}), then {@code used_idx}/{@code used_wrap_counter}; the ring's flags store follows.
     */
    @Override
    public void publishing(int usedIdx, boolean usedWrap) {
        if (disabled || batchCount == 0) {
            return;
        }
        for (int k = 0; k < batchCount; k++) {
            final int h = batch[k];
            final int end = last[h];
            s.set(U16, desc(end) + D_NEXT, (short) freeHead);
            next[end] = (char) freeHead;
            freeHead = h;
            freeCount += num[h];
        }
        s.set(U16, FREE_HEAD, (short) freeHead);
        s.set(U16, USED_IDX, (short) usedIdx);
        s.set(U8, USED_WRAP, (byte) (usedWrap ? 1 : 0));
    }

    /**
     * Spec, supplying used buffers, after the ring's flags: clear the heads' inflight flags, then commit
     * {@code old_free_head}, {@code old_used_idx}, {@code old_used_wrap_counter} in that order (each state in
     * between recovers as "published": see {@link #recover}).
     */
    @Override
    public void published(int usedIdx, boolean usedWrap) {
        if (disabled || batchCount == 0) {
            return;
        }
        for (int k = 0; k < batchCount; k++) {
            s.set(U8, desc(batch[k]) + D_INFLIGHT, (byte) 0);
        }
        batchCount = 0;
        VarHandle.releaseFence();
        s.set(U16, OLD_FREE_HEAD, (short) freeHead);
        VarHandle.releaseFence();
        s.set(U16, OLD_USED_IDX, (short) usedIdx);
        VarHandle.releaseFence();
        s.set(U8, OLD_USED_WRAP, (byte) (usedWrap ? 1 : 0));
    }

    /** One descriptor list saved in the buffer: the ring descriptors (copies, in ring order) and its buffer id. */
    public record SavedList(int id, long[] addr, int[] len, int[] flags) {
        public int count() {
            return addr.length;
        }
    }

    /**
     * What {@link #recover} found: the lists to resubmit, oldest first; the ring's used position (the buffer's when
     * lists are in flight, otherwise the frontend's); and a problem worth a log line (null if none).
     */
    public record Recovered(List<SavedList> lists, int usedIdx, boolean usedWrap, String problem) {
        /** Ring descriptors of the lists in flight (the ring slots from the used position on that they occupy). */
        public int descriptors() {
            int n = 0;
            for (SavedList l : lists) {
                n += l.count();
            }
            return n;
        }
    }

    /**
     * Spec "When reconnecting", packed, against the descriptor ring {@code ring} (16 * size bytes; kept for the
     * copies of later pops):
     * <ol>
     * <li>if {@code used_idx}/{@code used_wrap_counter} differ from the {@code old_*} ones, a publication was under
     *     way: if the ring descriptor at {@code old_used_idx} no longer shows the flags of an available descriptor of
     *     the {@code old_used_wrap_counter} lap, the used elements reached the ring (or the driver has even reused the
     *     slot), so commit ({@code old_*} = current);</li>
     * <li>roll back to the {@code old_*} state;</li>
     * <li>clear {@code inflight} of every entry on the free list;</li>
     * <li>resubmit the heads still in flight in counter order.</li>
     * </ol>
     * The frontend is untrusted, so before anything is resubmitted the buffer must make sense: indexes below the
     * size, wrap counters 0 or 1, a free list without a cycle, every in-flight head with {@code 1 <= num <= size},
     * its list linked through {@code next} to {@code last} over entries that belong to no other list and are not
     * free, buffer ids and counters unique, inflight bytes 0 or 1. Otherwise nothing is resubmitted, the region is
     * formatted afresh, and {@link Recovered#problem()} says why. Afterwards the free list is rebuilt from every entry
     * no list holds (no entry leaks), and the used position is written back (the frontend's base when nothing is in
     * flight). Bounded work: O(size) reads of the region.
     *
     * @param ring          the descriptor ring
     * @param baseAvail     the frontend's avail position (SET_VRING_BASE), only checked against the buffer
     * @param baseAvailWrap its wrap counter
     * @param baseUsed      the frontend's used position, taken when nothing is in flight
     * @param baseUsedWrap  its wrap counter
     */
    public Recovered recover(MemorySegment ring, int baseAvail, boolean baseAvailWrap, int baseUsed, boolean baseUsedWrap) {
        return recover(ring, baseAvail, baseAvailWrap, baseUsed, baseUsedWrap, false);
    }

    /**
     * As {@link #recover(MemorySegment, int, boolean, int, boolean)} for a transport that keeps no position of its
     * own (VDUSE: the kernel does not know where a packed ring stands, virtio 1.2 §2.8 has no index in shared
     * memory): the region is the only record, so with nothing in flight the used position is its committed one, and
     * a region that makes no sense is left as it is and reported ({@link Recovered#usedIdx()} is then -1), since
     * formatting it would invent a position.
     *
     * @param ring the descriptor ring
     */
    public Recovered recover(MemorySegment ring) {
        return recover(ring, -1, true, -1, true, true);
    }

    private Recovered recover(MemorySegment ring, int baseAvail, boolean baseAvailWrap, int baseUsed,
                              boolean baseUsedWrap, boolean regionOnly) {
        this.ring = ring;
        String problem = check();
        if (problem != null) {
            return refuse(baseUsed, baseUsedWrap, problem, regionOnly);
        }
        int freeHeadNow = s.get(U16, FREE_HEAD) & 0xffff;
        int oldFreeHead = s.get(U16, OLD_FREE_HEAD) & 0xffff;
        int usedIdx = s.get(U16, USED_IDX) & 0xffff;
        int oldUsedIdx = s.get(U16, OLD_USED_IDX) & 0xffff;
        boolean usedWrap = s.get(U8, USED_WRAP) == 1;
        boolean oldUsedWrap = s.get(U8, OLD_USED_WRAP) == 1;
        // 1. A publication under way: did its used elements reach the ring?
        if (usedIdx != oldUsedIdx || usedWrap != oldUsedWrap) {
            int flags = ring.get(RING_U16, (long) VirtioRing.DESC_SIZE * oldUsedIdx + VirtioRing.PACKED_DESC_FLAGS);
            int available = oldUsedWrap ? VirtioRing.PACKED_DESC_F_AVAIL : VirtioRing.PACKED_DESC_F_USED;
            if ((flags & AVAIL_USED) != available) {
                oldFreeHead = freeHeadNow;
                oldUsedIdx = usedIdx;
                oldUsedWrap = usedWrap;
            }
        }
        // 2. Roll back whatever is not committed.
        int head = oldFreeHead;
        // 3. Entries on the free list are not in flight. The list ends at an index >= desc_num (spec: desc[] has
        //    desc_num entries); a cycle cannot come from a back-end following the spec.
        boolean[] free = new boolean[size];
        for (int e = head, steps = 0; e < size; e = s.get(U16, desc(e) + D_NEXT) & 0xffff) {
            if (free[e] || ++steps > size) {
                return refuse(baseUsed, baseUsedWrap, "the free list has a cycle at entry " + e, regionOnly);
            }
            free[e] = true;
            s.set(U8, desc(e) + D_INFLIGHT, (byte) 0);
        }
        // 4. The lists still in flight.
        problem = null;
        boolean[] taken = new boolean[size];
        boolean[] idSeen = new boolean[MAX_IDS];
        List<Integer> heads = new ArrayList<>();
        List<SavedList> lists = new ArrayList<>();
        for (int h = 0; h < size && problem == null; h++) {
            int flag = s.get(U8, desc(h) + D_INFLIGHT);
            if (flag == 0) {
                continue;
            }
            if (flag != 1) { // spec: "Indicate whether this descriptor is inflight or not": 0 or 1
                problem = "desc[" + h + "].inflight is " + (flag & 0xff);
                break;
            }
            int n = s.get(U16, desc(h) + D_NUM) & 0xffff;
            // spec: num is "the length of descriptor list"; virtio 1.2 §2.8.17: 1..queue size descriptors
            if (n < 1 || n > size) {
                problem = "head " + h + " has num " + n + " (queue size " + size + ")";
                break;
            }
            long[] addr = new long[n];
            int[] len = new int[n];
            int[] flags = new int[n];
            int e = h;
            for (int k = 0; k < n; k++) {
                // spec: a list's entries come off the free list one per descriptor, linked by next; no entry is
                // both free and in flight, or in two lists
                if (e >= size || free[e] || taken[e]) {
                    problem = "the list of head " + h + " reaches entry " + e
                            + (e >= size ? " (outside)" : free[e] ? " (free)" : " (in another list)");
                    break;
                }
                taken[e] = true;
                next[e] = (char) (s.get(U16, desc(e) + D_NEXT) & 0xffff);
                addr[k] = s.get(U64, desc(e) + D_ADDR);
                len[k] = s.get(U32, desc(e) + D_LEN);
                flags[k] = s.get(U16, desc(e) + D_FLAGS) & 0xffff;
                if (k == n - 1) {
                    // spec: "Link to the last entry of descriptor list"
                    if ((s.get(U16, desc(h) + D_LAST) & 0xffff) != e) {
                        problem = "head " + h + " has last " + (s.get(U16, desc(h) + D_LAST) & 0xffff)
                                + " but its list ends at " + e;
                    }
                    // virtio 1.2 §2.8.6 / §2.8.21.1: the id is in the list's last descriptor, unique in flight
                    int id = s.get(U16, desc(e) + D_ID) & 0xffff;
                    if (problem == null && idSeen[id]) {
                        problem = "buffer id " + id + " is in flight twice";
                    }
                    idSeen[id] = true;
                    num[h] = (char) n;
                    last[h] = (char) e;
                    heads.add(h);
                    lists.add(new SavedList(id, addr, len, flags));
                } else {
                    e = next[e];
                }
            }
        }
        if (problem == null) {
            problem = sortByCounter(heads, lists);
        }
        if (problem != null) {
            return refuse(baseUsed, baseUsedWrap, problem, regionOnly);
        }
        int total = 0;
        for (int k = 0; k < heads.size(); k++) {
            int h = heads.get(k);
            headOfId[lists.get(k).id()] = (char) (h + 1);
            total += num[h];
        }
        rebuildFreeList(taken);
        counter = heads.isEmpty() ? 0 : s.get(U64, desc(heads.getLast()) + D_COUNTER) + 1;
        if (lists.isEmpty() && regionOnly) {
            writeUsed(oldUsedIdx, oldUsedWrap);
            return new Recovered(lists, oldUsedIdx, oldUsedWrap, null);
        }
        if (lists.isEmpty()) {
            writeUsed(baseUsed, baseUsedWrap);
            return new Recovered(lists, baseUsed, baseUsedWrap, null);
        }
        writeUsed(oldUsedIdx, oldUsedWrap);
        // §2.8.1: the driver's avail position is the used one plus every descriptor in flight.
        int expected = oldUsedIdx + total;
        boolean expectedWrap = oldUsedWrap;
        if (expected >= size) {
            expected -= size;
            expectedWrap = !expectedWrap;
        }
        if (regionOnly) {
            return new Recovered(lists, oldUsedIdx, oldUsedWrap, null);
        }
        String note = expected == baseAvail && expectedWrap == baseAvailWrap ? null
                : "the frontend's avail position " + baseAvail + "/" + (baseAvailWrap ? 1 : 0) + " is not the used one "
                + oldUsedIdx + "/" + (oldUsedWrap ? 1 : 0) + " plus the " + total + " descriptors in flight";
        return new Recovered(lists, oldUsedIdx, oldUsedWrap, note);
    }

    /** A region that cannot be recovered: formatted at the base position, or (region only) left for the caller. */
    private Recovered refuse(int baseUsed, boolean baseUsedWrap, String problem, boolean regionOnly) {
        if (regionOnly) {
            return new Recovered(List.of(), -1, false, problem);
        }
        formatAt(baseUsed, baseUsedWrap);
        return new Recovered(List.of(), baseUsed, baseUsedWrap, problem);
    }

    /**
     * Header fields in range: used indexes below desc_num and wrap counters 0 or 1 (virtio 1.2 §2.8.1: a position in
     * the ring and a one-bit counter); free-list heads may be the end marker (size or above).
     */
    private String check() {
        int usedIdx = s.get(U16, USED_IDX) & 0xffff;
        int oldUsedIdx = s.get(U16, OLD_USED_IDX) & 0xffff;
        int usedWrap = s.get(U8, USED_WRAP) & 0xff;
        int oldUsedWrap = s.get(U8, OLD_USED_WRAP) & 0xff;
        if (usedIdx >= size || oldUsedIdx >= size) {
            return "used_idx " + usedIdx + " / old_used_idx " + oldUsedIdx + " beyond queue size " + size;
        }
        if (usedWrap > 1 || oldUsedWrap > 1) {
            return "wrap counters " + usedWrap + " / " + oldUsedWrap;
        }
        return null;
    }

    /**
     * Spec: "Resubmit inflight DescStatePacked entries in order of their counter value" (unsigned); two equal
     * counters cannot come from one global counter, so they are a problem.
     */
    private String sortByCounter(List<Integer> heads, List<SavedList> lists) {
        Integer[] order = new Integer[heads.size()];
        for (int k = 0; k < order.length; k++) {
            order[k] = k;
        }
        long[] counters = new long[order.length];
        for (int k = 0; k < order.length; k++) {
            counters[k] = s.get(U64, desc(heads.get(k)) + D_COUNTER);
        }
        Arrays.sort(order, (a, b) -> Long.compareUnsigned(counters[a], counters[b]));
        List<Integer> h2 = new ArrayList<>();
        List<SavedList> l2 = new ArrayList<>();
        for (int k = 0; k < order.length; k++) {
            if (k > 0 && counters[order[k]] == counters[order[k - 1]]) {
                return "heads " + heads.get(order[k - 1]) + " and " + heads.get(order[k]) + " have the same counter";
            }
            h2.add(heads.get(order[k]));
            l2.add(lists.get(order[k]));
        }
        heads.clear();
        heads.addAll(h2);
        lists.clear();
        lists.addAll(l2);
        return null;
    }

    /**
     * Links every entry no list holds into the free list, in index order, then points {@code free_head} and
     * {@code old_free_head} at it. Only free entries' {@code next} change, so a crash half-way still leaves the
     * committed {@code old_free_head} on a list of free entries.
     */
    private void rebuildFreeList(boolean[] taken) {
        int head = size;
        int count = 0;
        for (int j = size - 1; j >= 0; j--) {
            if (!taken[j]) {
                next[j] = (char) head;
                s.set(U16, desc(j) + D_NEXT, (short) head);
                s.set(U8, desc(j) + D_INFLIGHT, (byte) 0);
                head = j;
                count++;
            }
        }
        VarHandle.releaseFence();
        s.set(U16, FREE_HEAD, (short) head);
        s.set(U16, OLD_FREE_HEAD, (short) head);
        freeHead = head;
        freeCount = count;
    }

    /** Formats the region afresh with the used position {@code usedIdx}/{@code usedWrap}: nothing in flight. */
    private void formatAt(int usedIdx, boolean usedWrap) {
        Arrays.fill(headOfId, (char) 0);
        counter = 0;
        boolean[] none = new boolean[size];
        for (int j = 0; j < size; j++) {
            s.set(U64, desc(j) + D_COUNTER, 0L);
            s.set(U16, desc(j) + D_NUM, (short) 0);
            s.set(U16, desc(j) + D_LAST, (short) 0);
        }
        rebuildFreeList(none);
        writeUsed(usedIdx, usedWrap);
    }

    /** Sets the used position, current and committed, if it is one of this ring. */
    private void writeUsed(int usedIdx, boolean usedWrap) {
        if (usedIdx < 0 || usedIdx >= size) {
            return;   // the ring refuses such a position itself (restore: BAD_INDEX)
        }
        s.set(U16, USED_IDX, (short) usedIdx);
        s.set(U8, USED_WRAP, (byte) (usedWrap ? 1 : 0));
        s.set(U16, OLD_USED_IDX, (short) usedIdx);
        s.set(U8, OLD_USED_WRAP, (byte) (usedWrap ? 1 : 0));
    }
}
