package io.github.vduse4j.engine.inflight;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * One split queue's region of the inflight buffer, following the spec's "Inflight I/O tracking" steps for split
 * virtqueues. Layout ({@code QueueRegionSplit} / {@code DescStateSplit}, C natural alignment, host byte order;
 * offsets checked with gcc's {@code offsetof} on x86-64):
 * <pre>
 * QueueRegionSplit: features u64 @0, version u16 @8, desc_num u16 @10, last_batch_head u16 @12, used_idx u16 @14,
 *                   desc[] @16
 * DescStateSplit (16 bytes): inflight u8 @0, padding[5] @1, next u16 @6, counter u64 @8
 * </pre>
 * Indexed by head descriptor index. Poller thread only while the queue runs; {@link #recover} runs before it starts.
 */
public final class SplitInflightTracker implements InflightTracker {
    public static final int HEADER = 16;
    public static final int DESC = 16;
    public static final long LAST_BATCH_HEAD = 12, USED_IDX = 14;
    public static final long D_INFLIGHT = 0, D_NEXT = 6, D_COUNTER = 8;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;

    private final MemorySegment s;
    private final int size;
    private final int[] batch;
    private int batchCount;
    private long counter;

    /** @param s the queue's region, at least {@code 16 + 16 * size} bytes */
    public SplitInflightTracker(MemorySegment s, int size) {
        this.s = s;
        this.size = size;
        this.batch = new int[size];
    }

    private static long desc(int i) {
        return HEADER + (long) DESC * i;
    }

    /** Spec, receiving available buffers: {@code desc[i].counter} = global counter++, {@code desc[i].inflight} = 1. */
    @Override
    public void popped(int i, int firstSlot, int endSlot) {
        if (i < 0 || i >= size) {
            return;
        }
        s.set(U64, desc(i) + D_COUNTER, counter++);
        s.set(U8, desc(i) + D_INFLIGHT, (byte) 1);
    }

    /** Spec, supplying used buffers, steps 1-3: link head {@code i} into the last batch list. */
    @Override
    public void completed(int i) {
        if (i < 0 || i >= size || batchCount == size) {
            return;
        }
        s.set(U16, desc(i) + D_NEXT, s.get(U16, LAST_BATCH_HEAD));
        s.set(U16, LAST_BATCH_HEAD, (short) i);
        batch[batchCount++] = i;
    }

    @Override
    public void publishing(int usedIdx, boolean usedWrap) {
        // the batch list was linked at completion; the ring's release store of used->idx orders it before
    }

    /** Spec, supplying used buffers, after the ring's idx moved: clear the batch's inflight flags, then record idx. */
    @Override
    public void published(int usedIdx, boolean usedWrap) {
        if (batchCount == 0) {
            return;
        }
        for (int k = 0; k < batchCount; k++) {
            s.set(U8, desc(batch[k]) + D_INFLIGHT, (byte) 0);
        }
        batchCount = 0;
        // A restarted back-end trusts used_idx: the cleared flags must not become visible after it (DPDK
        // rte_vhost_clr_inflight_desc_split: a full fence). Compiler barrier on x86.
        VarHandle.releaseFence();
        s.set(U16, USED_IDX, (short) usedIdx);
    }

    /**
     * What {@link #recover} found: the heads to resubmit, oldest first, and a problem that made it give up on the
     * buffer (null if none).
     */
    public record Recovered(int[] heads, String problem) {}

    /**
     * Spec "When reconnecting", split: if {@code used_idx} lags the ring's used index, the last batch was published
     * but not cleared, so clear its entries; then collect the heads still in flight, in counter order. A buffer
     * that cannot come from a conforming back-end (an inflight byte other than 0 or 1, two heads with the same
     * counter) yields nothing to resubmit and is reset (every flag cleared, {@code used_idx} = the ring's).
     * Every index is bounded by the queue size and every walk by the number of entries.
     */
    public Recovered recover(int ringUsedIdx) {
        int recorded = s.get(U16, USED_IDX) & 0xffff;
        if (recorded != ringUsedIdx) {
            int n = (ringUsedIdx - recorded) & 0xffff;
            int i = s.get(U16, LAST_BATCH_HEAD) & 0xffff;
            // spec: "last batch size" = ring idx - used_idx entries from last_batch_head; at most the table, and
            // a next outside the table (desc_num entries) ends the list
            for (int k = 0; k < n && k < size && i < size; k++) {
                s.set(U8, desc(i) + D_INFLIGHT, (byte) 0);
                i = s.get(U16, desc(i) + D_NEXT) & 0xffff;
            }
            VarHandle.releaseFence();
            s.set(U16, USED_IDX, (short) ringUsedIdx);
        }
        List<Integer> heads = new ArrayList<>();
        String problem = null;
        for (int i = 0; i < size && problem == null; i++) {
            int flag = s.get(U8, desc(i) + D_INFLIGHT);
            if (flag == 1) {
                heads.add(i);
            } else if (flag != 0) { // spec: "Indicate whether this descriptor is inflight or not": 0 or 1
                problem = "desc[" + i + "].inflight is " + (flag & 0xff);
            }
        }
        // spec: "Resubmit inflight DescStateSplit entries in order of their counter value"; two heads with one
        // counter cannot come from one global counter
        heads.sort((a, b) -> Long.compareUnsigned(s.get(U64, desc(a) + D_COUNTER), s.get(U64, desc(b) + D_COUNTER)));
        for (int k = 1; k < heads.size() && problem == null; k++) {
            if (s.get(U64, desc(heads.get(k)) + D_COUNTER) == s.get(U64, desc(heads.get(k - 1)) + D_COUNTER)) {
                problem = "heads " + heads.get(k - 1) + " and " + heads.get(k) + " have the same counter";
            }
        }
        if (problem != null) {
            for (int i = 0; i < size; i++) {
                s.set(U8, desc(i) + D_INFLIGHT, (byte) 0);
            }
            s.set(U16, USED_IDX, (short) ringUsedIdx);
            counter = 0;
            return new Recovered(new int[0], problem);
        }
        counter = heads.isEmpty() ? 0 : s.get(U64, desc(heads.getLast()) + D_COUNTER) + 1;
        return new Recovered(heads.stream().mapToInt(Integer::intValue).toArray(), null);
    }
}
