package io.github.vduse4j.ring.testkit;

import static io.github.vduse4j.ring.VirtioRing.*;
import static io.github.vduse4j.ring.testkit.LeAccess.*;

import io.github.vduse4j.ring.EventIndex;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.SplitVirtqueue;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * A split-ring driver that behaves like Linux {@code virtqueue_add_split / kick_prepare_split / get_buf_split /
 * enable_cb_prepare_split / disable_cb_split}: a descriptor free list, avail index shadow, {@code num_added} kick
 * accounting with {@code avail_event} or {@code VRING_USED_F_NO_NOTIFY}, {@code used_event} updates, and the same
 * barriers (virtio_wmb before avail->idx, virtio_mb before reading suppression state, virtio_rmb after used->idx).
 */
public final class SplitDriver implements VirtqueueDriver, ChainBuilder.ChainAdder {
    private final DriverConfig config;
    private final int size;
    private final int mask;
    private final DriverMemory memory;
    private final MemorySegment desc, avail, used;
    private final long descAddr, availAddr, usedAddr;
    private final long usedEventOff, availEventOff;
    private final ChainBuilder builder;
    private final SplitRawRing raw;

    // Linux desc_extra: chain link and free list in one (driver-private, never read back from shared memory)
    private final int[] extraNext;
    private final int[] extraFlags;
    private final long[] token;
    private final boolean[] inUse;
    private final boolean[] isIndirect;
    private int freeHead;
    private int numFree;
    private int availIdxShadow;
    private int availFlagsShadow;
    private int numAdded;
    private int lastUsed;
    private int inflight;
    private long kicks, interrupts, spurious;

    SplitDriver(DriverConfig c) {
        this.config = c;
        this.size = c.size;
        if (size < 1 || size > MAX_QUEUE_SIZE || (size & (size - 1)) != 0) {
            throw new IllegalArgumentException("split size must be a power of 2: " + size);
        }
        this.mask = size - 1;
        long descBytes = DriverMemory.roundUp(descTableBytes(size), 4096);
        long availBytes = DriverMemory.roundUp(availRingBytes(size), 4096);
        long usedBytes = DriverMemory.roundUp(usedRingBytes(size), 4096);
        long tableBytes = (long) size * c.maxIndirect * DESC_SIZE;
        memory = new DriverMemory(descBytes + availBytes + usedBytes, tableBytes, c.dataRegions, c.dataRegionBytes);
        MemorySegment r = memory.ringSegment();
        desc = r.asSlice(0, descTableBytes(size));
        avail = r.asSlice(descBytes, availRingBytes(size));
        used = r.asSlice(descBytes + availBytes, usedRingBytes(size));
        descAddr = DriverMemory.RING_BASE;
        availAddr = DriverMemory.RING_BASE + descBytes;
        usedAddr = DriverMemory.RING_BASE + descBytes + availBytes;
        usedEventOff = usedEventOffset(size);
        availEventOff = availEventOffset(size);
        extraNext = new int[size];
        extraFlags = new int[size];
        token = new long[size];
        inUse = new boolean[size];
        isIndirect = new boolean[size];
        for (int i = 0; i < size; i++) extraNext[i] = i + 1;   // Linux: desc_extra[i].next = i + 1
        freeHead = 0;
        numFree = size;
        builder = new ChainBuilder(this, c.builderCapacity(), c.indirectMode);
        raw = new SplitRawRing(this);
    }

    public static SplitDriver create(int size, boolean eventIdx, boolean indirect) {
        return DriverConfig.of(size).eventIdx(eventIdx).indirect(indirect).split();
    }

    @Override public int size() { return size; }
    @Override public DriverMemory memory() { return memory; }
    @Override public boolean eventIdx() { return config.eventIdx; }
    @Override public boolean indirect() { return config.indirect; }
    public MemorySegment descSegment() { return desc; }
    public MemorySegment availSegment() { return avail; }
    public MemorySegment usedSegment() { return used; }
    /** Driver addresses of the three parts (what a transport would be told). */
    public long descAddress() { return descAddr; }
    public long availAddress() { return availAddr; }
    public long usedAddress() { return usedAddr; }
    /** Raw access for writing malformed rings. */
    public SplitRawRing raw() { return raw; }

    /**
     * Moves a fresh driver to avail/used index {@code index} (as if {@code index} chains had come and gone), so tests
     * can cross the u16 wrap quickly; a device queue built afterwards must be {@code restore(index, true, index,
     * true)}d (as {@link #newDeviceQueue()} does).
     */
    public SplitDriver startAt(int index) {
        if (inflight != 0 || numAdded != 0) throw new IllegalStateException("startAt on a used driver");
        availIdxShadow = index & 0xFFFF;
        lastUsed = availIdxShadow;
        u16(avail, AVAIL_IDX, availIdxShadow);
        u16(used, USED_IDX, availIdxShadow);
        if (config.eventIdx) u16(avail, usedEventOff, availIdxShadow);
        return this;
    }

    @Override
    public SplitVirtqueue newDeviceQueue() { return newDeviceQueue(memory.table()); }

    @Override
    public SplitVirtqueue newDeviceQueue(GuestMemory m) {
        SplitVirtqueue q = new SplitVirtqueue(size, desc, avail, used, m, config.eventIdx, config.indirect);
        if (u16(used, USED_IDX) != 0 || u16(avail, AVAIL_IDX) != 0) q.restore(u16(used, USED_IDX));
        return q;
    }

    @Override
    public ChainBuilder chain() { return builder.reset(); }

    /** Linux virtqueue_use_indirect(). */
    private boolean useIndirect(ChainBuilder c) {
        return switch (c.indirect) {
            case ALWAYS -> true;
            case NEVER -> false;
            case LINUX -> config.indirect && c.count > 1 && numFree > 0;
        };
    }

    @Override
    public int add(ChainBuilder c, long tok) {
        final int total = c.count;
        if (total == 0) throw new IllegalArgumentException("empty chain");   // Linux: BUG_ON(total_sg == 0)
        final boolean indirect = useIndirect(c);
        if (indirect && total > config.maxIndirect) throw new IllegalArgumentException("indirect table too long");
        final int descsUsed = indirect ? 1 : total;
        if (numFree < descsUsed) return -1;   // -ENOSPC
        final int head = freeHead;
        int i;
        if (indirect) {
            long tableAddr = tableAddress(head);
            MemorySegment table = memory.view(tableAddr, (long) total * DESC_SIZE);
            for (int k = 0; k < total; k++) {
                int flags = (k + 1 < total ? DESC_F_NEXT : 0) | (c.writable[k] ? DESC_F_WRITE : 0);
                writeDesc(table, (long) k * DESC_SIZE, c.addr[k], c.len[k], flags, k + 1);
            }
            writeDesc(desc, (long) head * DESC_SIZE, tableAddr, total * DESC_SIZE, DESC_F_INDIRECT, extraNext[head]);
            extraFlags[head] = DESC_F_INDIRECT;
            i = extraNext[head];
        } else {
            i = head;
            int prev = head;
            for (int k = 0; k < total; k++) {
                int flags = DESC_F_NEXT | (c.writable[k] ? DESC_F_WRITE : 0);
                writeDesc(desc, (long) i * DESC_SIZE, c.addr[k], c.len[k], flags, extraNext[i]);
                extraFlags[i] = flags;
                prev = i;
                i = extraNext[i];
            }
            // Last one doesn't continue.
            extraFlags[prev] &= ~DESC_F_NEXT;
            u16(desc, (long) prev * DESC_SIZE + DESC_FLAGS, extraFlags[prev]);
        }
        numFree -= descsUsed;
        freeHead = i;
        token[head] = tok;
        inUse[head] = true;
        isIndirect[head] = indirect;
        inflight++;
        // Put entry in available array (but don't update avail->idx until they do sync).
        u16(avail, AVAIL_RING + 2L * (availIdxShadow & mask), head);
        // Descriptors and available array need to be set before we expose the new available array entries:
        // virtio_wmb() + store = release store.
        availIdxShadow = (availIdxShadow + 1) & 0xFFFF;
        u16Release(avail, AVAIL_IDX, availIdxShadow);
        numAdded++;
        if (numAdded == 0xFFFF) kickPrepare();   // Linux: "very unlikely, but theoretically possible. Kick just in case."
        return head;
    }

    private long tableAddress(int head) {
        return DriverMemory.TABLE_BASE + (long) head * config.maxIndirect * DESC_SIZE;
    }

    static void writeDesc(MemorySegment s, long off, long addr, int len, int flags, int next) {
        descriptorBody(s, off, addr, len, flags);
        U16_UNALIGNED.set(s, off + DESC_NEXT, (short) next);
    }

    @Override
    public boolean kickPrepare() {
        // We need to expose available array entries before checking avail event: virtio_mb().
        VarHandle.fullFence();
        final int old = (availIdxShadow - numAdded) & 0xFFFF;
        final int nw = availIdxShadow;
        numAdded = 0;
        boolean needs;
        if (config.eventIdx) {
            needs = EventIndex.needEvent(u16(used, availEventOff), nw, old);
        } else {
            needs = (u16(used, USED_FLAGS) & USED_F_NO_NOTIFY) == 0;
        }
        if (needs) kicks++;
        return needs;
    }

    @Override public long kicks() { return kicks; }

    private boolean moreUsed() { return lastUsed != u16Acquire(used, USED_IDX); }

    @Override
    public boolean reap(UsedBuffer out) {
        // more_used_split() then virtio_rmb(): only get used array entries after they have been exposed by host.
        final int usedIdx = u16Acquire(used, USED_IDX);
        if (lastUsed == usedIdx) return false;
        if (((usedIdx - lastUsed) & 0xFFFF) > inflight) {
            throw new AssertionError("device moved used idx from " + lastUsed + " to " + usedIdx + " with only "
                    + inflight + " chains in flight");
        }
        final long off = USED_RING + (long) USED_ELEM_SIZE * (lastUsed & mask);
        final int id = u32(used, off);
        final int len = u32(used, off + 4);
        if (id < 0 || id >= size) throw new AssertionError("id " + id + " out of range");
        if (!inUse[id]) throw new AssertionError("id " + id + " is not a head!");
        out.id = id;
        out.len = len;
        out.token = token[id];
        out.descriptors = detach(id);
        lastUsed = (lastUsed + 1) & 0xFFFF;
        // If we expect an interrupt for the next entry, tell host by writing event index and flush out the write
        // before the read in the next get_buf call: virtio_store_mb().
        if ((availFlagsShadow & AVAIL_F_NO_INTERRUPT) == 0) {
            u16(avail, usedEventOff, lastUsed);
            VarHandle.fullFence();
        }
        return true;
    }

    /** Linux detach_buf_split(): returns the chain's descriptors to the free list. */
    private int detach(int head) {
        inUse[head] = false;
        inflight--;
        int i = head;
        int n = 1;
        while ((extraFlags[i] & DESC_F_NEXT) != 0) {
            i = extraNext[i];
            n++;
        }
        extraNext[i] = freeHead;
        freeHead = head;
        numFree += n;
        return n;
    }

    @Override
    public void disableCallbacks() {
        if ((availFlagsShadow & AVAIL_F_NO_INTERRUPT) == 0) {
            availFlagsShadow |= AVAIL_F_NO_INTERRUPT;
            if (config.eventIdx) {
                u16(avail, usedEventOff, 0);   // Linux: "TODO: this is a hack. Figure out a cleaner value to write."
            } else {
                u16(avail, AVAIL_FLAGS, availFlagsShadow);
            }
        }
    }

    /** Linux virtqueue_enable_cb_prepare_split(). */
    public int enableCallbacksPrepare() {
        if ((availFlagsShadow & AVAIL_F_NO_INTERRUPT) != 0) {
            availFlagsShadow &= ~AVAIL_F_NO_INTERRUPT;
            if (!config.eventIdx) u16(avail, AVAIL_FLAGS, availFlagsShadow);
        }
        u16(avail, usedEventOff, lastUsed);
        return lastUsed;
    }

    /** Linux virtqueue_poll_split(): virtio_mb() then compare with used->idx. */
    public boolean poll(int lastUsedIdx) {
        VarHandle.fullFence();
        return lastUsedIdx != u16(used, USED_IDX);
    }

    @Override
    public boolean enableCallbacks() {
        return !poll(enableCallbacksPrepare());
    }

    @Override
    public boolean interrupt() {
        if (!moreUsed()) {
            spurious++;
            return false;
        }
        interrupts++;
        return true;
    }

    @Override public long interrupts() { return interrupts; }
    @Override public long spuriousInterrupts() { return spurious; }
    @Override public int numFree() { return numFree; }
    @Override public int inflight() { return inflight; }
    public int availIdxShadow() { return availIdxShadow; }
    public int lastUsedIdx() { return lastUsed; }
    boolean callbacksDisabled() { return (availFlagsShadow & AVAIL_F_NO_INTERRUPT) != 0; }

    @Override
    public void close() { memory.close(); }

    @Override
    public String toString() {
        return "SplitDriver[size=" + size + ", avail=" + availIdxShadow + ", lastUsed=" + lastUsed + ", free=" + numFree
                + ", inflight=" + inflight + "]";
    }
}
