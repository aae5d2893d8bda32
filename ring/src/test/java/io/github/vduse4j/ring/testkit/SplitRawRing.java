package io.github.vduse4j.ring.testkit;

import static io.github.vduse4j.ring.VirtioRing.*;
import static io.github.vduse4j.ring.testkit.LeAccess.*;

import java.lang.foreign.MemorySegment;

/**
 * Raw writes to a split ring, bypassing the driver's bookkeeping: for building malformed rings (loops, bad indexes,
 * index jumps, hostile addresses). Once used, the owning {@link SplitDriver}'s own state no longer matches the ring.
 */
public final class SplitRawRing {
    private final SplitDriver driver;

    SplitRawRing(SplitDriver driver) { this.driver = driver; }

    /** Writes descriptor {@code index} of the main table. */
    public SplitRawRing descriptor(int index, long addr, int len, int flags, int next) {
        SplitDriver.writeDesc(driver.descSegment(), (long) index * DESC_SIZE, addr, len, flags, next);
        return this;
    }

    /** Writes entry {@code index} of an indirect table placed at driver address {@code tableAddr}. */
    public SplitRawRing indirectEntry(long tableAddr, int index, long addr, int len, int flags, int next) {
        MemorySegment s = driver.memory().view(tableAddr + (long) index * DESC_SIZE, DESC_SIZE);
        SplitDriver.writeDesc(s, 0, addr, len, flags, next);
        return this;
    }

    public SplitRawRing availEntry(int slot, int head) {
        u16(driver.availSegment(), AVAIL_RING + 2L * slot, head);
        return this;
    }

    /** Stores avail->idx with release semantics. */
    public SplitRawRing availIdx(int idx) {
        u16Release(driver.availSegment(), AVAIL_IDX, idx);
        return this;
    }

    public int availIdx() { return u16(driver.availSegment(), AVAIL_IDX); }

    /** Appends {@code head} to the avail ring at the current avail->idx and publishes it. */
    public SplitRawRing push(int head) {
        int idx = availIdx();
        availEntry(idx & (driver.size() - 1), head);
        return availIdx((idx + 1) & 0xFFFF);
    }

    public SplitRawRing availFlags(int flags) { u16(driver.availSegment(), AVAIL_FLAGS, flags); return this; }
    public SplitRawRing usedEvent(int v) { u16(driver.availSegment(), usedEventOffset(driver.size()), v); return this; }

    public int usedIdx() { return u16Acquire(driver.usedSegment(), USED_IDX); }
    public int usedFlags() { return u16(driver.usedSegment(), USED_FLAGS); }
    public int availEvent() { return u16(driver.usedSegment(), availEventOffset(driver.size())); }
    public int usedId(int slot) { return u32(driver.usedSegment(), USED_RING + (long) USED_ELEM_SIZE * slot); }
    public int usedLen(int slot) { return u32(driver.usedSegment(), USED_RING + (long) USED_ELEM_SIZE * slot + 4); }
}
