package io.github.vduse4j.ring.testkit;

import static io.github.vduse4j.ring.VirtioRing.*;
import static io.github.vduse4j.ring.testkit.LeAccess.*;

import java.lang.foreign.MemorySegment;

/**
 * Raw writes to a packed ring, bypassing the driver's bookkeeping: for malformed rings (inconsistent flags, unending
 * lists, duplicate ids, hostile addresses). Once used, the owning {@link PackedDriver}'s state no longer matches.
 */
public final class PackedRawRing {
    private final PackedDriver driver;

    PackedRawRing(PackedDriver driver) { this.driver = driver; }

    /** AVAIL/USED bits that make a descriptor available in the lap whose driver wrap counter is {@code wrap}. */
    public static int availableFlags(boolean wrap) {
        return wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED;
    }

    /** AVAIL/USED bits of a used descriptor in lap {@code wrap}. */
    public static int usedFlags(boolean wrap) {
        return wrap ? PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED : 0;
    }

    /** Writes descriptor {@code index}: addr, len, id, then flags with a release store (exposes it). */
    public PackedRawRing descriptor(int index, long addr, int len, int id, int flags) {
        MemorySegment d = driver.descSegment();
        descriptorBody(d, (long) index * DESC_SIZE, addr, len, id);
        u16Release(d, (long) index * DESC_SIZE + PACKED_DESC_FLAGS, flags);
        return this;
    }

    /** Writes entry {@code index} of an indirect table at driver address {@code tableAddr}. */
    public PackedRawRing indirectEntry(long tableAddr, int index, long addr, int len, int flags) {
        MemorySegment s = driver.memory().view(tableAddr + (long) index * DESC_SIZE, DESC_SIZE);
        descriptorBody(s, 0, addr, len, 0);
        U16_UNALIGNED.set(s, PACKED_DESC_FLAGS, (short) flags);
        return this;
    }

    public PackedRawRing flags(int index, int flags) {
        u16Release(driver.descSegment(), (long) index * DESC_SIZE + PACKED_DESC_FLAGS, flags);
        return this;
    }

    public int flags(int index) { return u16Acquire(driver.descSegment(), (long) index * DESC_SIZE + PACKED_DESC_FLAGS); }
    public int id(int index) { return u16(driver.descSegment(), (long) index * DESC_SIZE + PACKED_DESC_ID); }
    public int len(int index) { return u32(driver.descSegment(), (long) index * DESC_SIZE + DESC_LEN); }

    public PackedRawRing driverEvent(int offWrap, int flags) {
        u32(driver.driverEventSegment(), EVENT_OFF_WRAP, (flags << 16) | (offWrap & 0xFFFF));
        return this;
    }

    public int deviceEventFlags() { return u16(driver.deviceEventSegment(), EVENT_FLAGS); }
    public int deviceEventOffWrap() { return u16(driver.deviceEventSegment(), EVENT_OFF_WRAP); }
}
