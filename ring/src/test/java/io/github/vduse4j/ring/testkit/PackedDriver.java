package io.github.vduse4j.ring.testkit;

import static io.github.vduse4j.ring.VirtioRing.*;
import static io.github.vduse4j.ring.testkit.LeAccess.*;

import io.github.vduse4j.ring.EventIndex;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.PackedVirtqueue;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * A packed-ring driver that behaves like Linux {@code virtqueue_add_packed / add_indirect_packed /
 * kick_prepare_packed / get_buf_packed / enable_cb_prepare_packed / disable_cb_packed}: buffer ids from the
 * {@code desc_extra} free list (a list of n descriptors consumes n entries), AVAIL/USED flags from the wrap counters,
 * the head's flags written last after virtio_wmb, kick decisions from the device event suppression structure and
 * driver event off_wrap updates, with the same barriers.
 */
public final class PackedDriver implements VirtqueueDriver, ChainBuilder.ChainAdder {
    private static final int AVAIL_USED = PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED;

    private final DriverConfig config;
    private final int size;
    private final DriverMemory memory;
    private final MemorySegment desc, driverEvent, deviceEvent;
    private final long descBytes;
    private final ChainBuilder builder;
    private final PackedRawRing raw;

    private final int[] extraNext;
    private final int[] stateNum;
    private final int[] stateLast;
    private final long[] token;
    private final boolean[] inUse;
    private int freeHead;
    private int numFree;
    private int nextAvail;
    private boolean availWrap = true;
    private int availUsedFlags = PACKED_DESC_F_AVAIL;
    private int lastUsed;
    private boolean usedWrap = true;
    private int eventFlagsShadow = EVENT_FLAGS_ENABLE;
    private int numAdded;
    private int inflight;
    private long kicks, interrupts, spurious;

    PackedDriver(DriverConfig c) {
        this.config = c;
        this.size = c.size;
        if (size < 1 || size > MAX_QUEUE_SIZE) throw new IllegalArgumentException("packed size out of range: " + size);
        descBytes = DriverMemory.roundUp(descTableBytes(size), 4096);
        long tableBytes = (long) size * c.maxIndirect * DESC_SIZE;
        memory = new DriverMemory(descBytes + 2 * 4096, tableBytes, c.dataRegions, c.dataRegionBytes);
        MemorySegment r = memory.ringSegment();
        desc = r.asSlice(0, descTableBytes(size));
        driverEvent = r.asSlice(descBytes, EVENT_SUPPRESSION_BYTES);
        deviceEvent = r.asSlice(descBytes + 4096, EVENT_SUPPRESSION_BYTES);
        extraNext = new int[size];
        stateNum = new int[size];
        stateLast = new int[size];
        token = new long[size];
        inUse = new boolean[size];
        for (int i = 0; i < size; i++) extraNext[i] = i + 1;
        numFree = size;
        builder = new ChainBuilder(this, c.builderCapacity(), c.indirectMode);
        raw = new PackedRawRing(this);
    }

    public static PackedDriver create(int size, boolean eventIdx, boolean indirect) {
        return DriverConfig.of(size).eventIdx(eventIdx).indirect(indirect).packed();
    }

    @Override public int size() { return size; }
    @Override public DriverMemory memory() { return memory; }
    @Override public boolean eventIdx() { return config.eventIdx; }
    @Override public boolean indirect() { return config.indirect; }
    public MemorySegment descSegment() { return desc; }
    public MemorySegment driverEventSegment() { return driverEvent; }
    public MemorySegment deviceEventSegment() { return deviceEvent; }
    /** Driver addresses of the three parts (what a transport would hand the device), mapped by {@code memory().table()}. */
    public long descAddress() { return DriverMemory.RING_BASE; }
    public long driverEventAddress() { return DriverMemory.RING_BASE + descBytes; }
    public long deviceEventAddress() { return DriverMemory.RING_BASE + descBytes + 4096; }
    public PackedRawRing raw() { return raw; }
    /** Next descriptor the driver will fill, and its wrap counter. */
    public int nextAvail() { return nextAvail; }
    public boolean availWrapCounter() { return availWrap; }
    public int lastUsedIdx() { return lastUsed; }
    public boolean usedWrapCounter() { return usedWrap; }

    /**
     * Moves a fresh driver to descriptor {@code index} of the lap with wrap counter {@code wrap} (as if earlier
     * laps had come and gone): the ring's flags are rewritten as the device would have left them. A device queue
     * built afterwards is restored to the same place by {@link #newDeviceQueue()}.
     */
    public PackedDriver startAt(int index, boolean wrap) {
        if (inflight != 0 || numAdded != 0) throw new IllegalStateException("startAt on a used driver");
        if (index < 0 || index >= size) throw new IllegalArgumentException("index " + index);
        for (int i = 0; i < size; i++) {
            boolean lap = i < index ? wrap : !wrap;   // the lap in which the device last used descriptor i
            u16(desc, (long) i * DESC_SIZE + PACKED_DESC_FLAGS, lap ? AVAIL_USED : 0);
        }
        nextAvail = index;
        lastUsed = index;
        availWrap = wrap;
        usedWrap = wrap;
        availUsedFlags = wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED;
        started = true;
        return this;
    }

    private boolean started;

    @Override
    public PackedVirtqueue newDeviceQueue() { return newDeviceQueue(memory.table()); }

    @Override
    public PackedVirtqueue newDeviceQueue(GuestMemory m) {
        PackedVirtqueue q = new PackedVirtqueue(size, desc, driverEvent, deviceEvent, m, config.eventIdx, config.indirect);
        if (started) q.restore(nextAvail, availWrap, lastUsed, usedWrap);
        return q;
    }

    @Override
    public ChainBuilder chain() { return builder.reset(); }

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
        if (total == 0) throw new IllegalArgumentException("empty chain");
        return useIndirect(c) ? addIndirect(c, tok) : addDirect(c, tok);
    }

    private int addIndirect(ChainBuilder c, long tok) {
        final int total = c.count;
        if (total > config.maxIndirect) throw new IllegalArgumentException("indirect table too long");
        if (numFree < 1) return -1;
        final int head = nextAvail;
        final int id = freeHead;
        final long tableAddr = DriverMemory.TABLE_BASE + (long) id * config.maxIndirect * DESC_SIZE;
        MemorySegment table = memory.view(tableAddr, (long) total * DESC_SIZE);
        for (int k = 0; k < total; k++) {
            descriptorBody(table, (long) k * DESC_SIZE, c.addr[k], c.len[k], 0);
            U16_UNALIGNED.set(table, (long) k * DESC_SIZE + PACKED_DESC_FLAGS, (short) (c.writable[k] ? DESC_F_WRITE : 0));
        }
        descriptorBody(desc, (long) head * DESC_SIZE, tableAddr, total * DESC_SIZE, id);
        // Descriptors and available array need to be set before we expose the new available array entries:
        // virtio_wmb() + flags store = release store.
        u16Release(desc, (long) head * DESC_SIZE + PACKED_DESC_FLAGS, DESC_F_INDIRECT | availUsedFlags);
        numFree -= 1;
        int n = head + 1;
        if (n >= size) {
            n = 0;
            availWrap = !availWrap;
            availUsedFlags ^= AVAIL_USED;
        }
        nextAvail = n;
        freeHead = extraNext[id];
        stateNum[id] = 1;
        stateLast[id] = id;
        token[id] = tok;
        inUse[id] = true;
        inflight++;
        numAdded += 1;
        return id;
    }

    private int addDirect(ChainBuilder c, long tok) {
        final int total = c.count;
        if (numFree < total) return -1;   // -ENOSPC
        final int head = nextAvail;
        final int id = freeHead;
        int i = head;
        int curr = id;
        int prev = id;
        int headFlags = 0;
        for (int k = 0; k < total; k++) {
            int flags = availUsedFlags | (k + 1 == total ? 0 : DESC_F_NEXT) | (c.writable[k] ? DESC_F_WRITE : 0);
            long off = (long) i * DESC_SIZE;
            if (i == head) {
                headFlags = flags;
            } else {
                u16(desc, off + PACKED_DESC_FLAGS, flags);
            }
            descriptorBody(desc, off, c.addr[k], c.len[k], id);
            prev = curr;
            curr = extraNext[curr];
            if (++i >= size) {
                i = 0;
                availUsedFlags ^= AVAIL_USED;
            }
        }
        if (i <= head) availWrap = !availWrap;
        numFree -= total;
        nextAvail = i;
        freeHead = curr;
        stateNum[id] = total;
        stateLast[id] = prev;
        token[id] = tok;
        inUse[id] = true;
        inflight++;
        // A driver MUST NOT make the first descriptor in the list available before all subsequent descriptors
        // comprising the list are made available: virtio_wmb() + head flags store = release store.
        u16Release(desc, (long) head * DESC_SIZE + PACKED_DESC_FLAGS, headFlags);
        numAdded += total;
        return id;
    }

    @Override
    public boolean kickPrepare() {
        // We need to expose the new flags value before checking notification suppressions: virtio_mb().
        VarHandle.fullFence();
        final int old = nextAvail - numAdded;
        final int nw = nextAvail;
        numAdded = 0;
        final int snapshot = u32(deviceEvent, EVENT_OFF_WRAP);
        final int flags = snapshot >>> 16;
        boolean needs;
        if (flags != EVENT_FLAGS_DESC) {
            needs = flags != EVENT_FLAGS_DISABLE;
        } else {
            final int offWrap = snapshot & 0xFFFF;
            final boolean wrap = (offWrap >>> EVENT_WRAP_SHIFT) != 0;
            int event = offWrap & 0x7FFF;
            if (wrap != availWrap) event -= size;
            needs = EventIndex.needEvent(event, nw, old);
        }
        if (needs) kicks++;
        return needs;
    }

    @Override public long kicks() { return kicks; }

    private boolean isUsed(int idx, boolean wrap) {
        int flags = u16Acquire(desc, (long) idx * DESC_SIZE + PACKED_DESC_FLAGS);
        boolean avail = (flags & PACKED_DESC_F_AVAIL) != 0;
        boolean used = (flags & PACKED_DESC_F_USED) != 0;
        return avail == used && used == wrap;
    }

    @Override
    public boolean reap(UsedBuffer out) {
        // more_used_packed() then virtio_rmb(): the acquire load of the flags orders the id/len reads.
        if (!isUsed(lastUsed, usedWrap)) return false;
        final long off = (long) lastUsed * DESC_SIZE;
        final int id = (short) U16_UNALIGNED.get(desc, off + PACKED_DESC_ID) & 0xFFFF;
        final int len = (int) U32_UNALIGNED.get(desc, off + DESC_LEN);
        if (id >= size) throw new AssertionError("id " + id + " out of range");
        if (!inUse[id]) throw new AssertionError("id " + id + " is not a head!");
        out.id = id;
        out.len = len;
        out.token = token[id];
        out.descriptors = stateNum[id];
        // detach_buf_packed()
        inUse[id] = false;
        inflight--;
        extraNext[stateLast[id]] = freeHead;
        freeHead = id;
        numFree += stateNum[id];
        int last = lastUsed + stateNum[id];
        if (last >= size) {
            last -= size;
            usedWrap = !usedWrap;
        }
        lastUsed = last;
        // If we expect an interrupt for the next entry, tell host by writing event index and flush out the write
        // before the read in the next get_buf call: virtio_store_mb().
        if (eventFlagsShadow == EVENT_FLAGS_DESC) {
            u16(driverEvent, EVENT_OFF_WRAP, offWrap());
            VarHandle.fullFence();
        }
        return true;
    }

    private int offWrap() { return lastUsed | (usedWrap ? 1 << EVENT_WRAP_SHIFT : 0); }

    @Override
    public void disableCallbacks() {
        if (eventFlagsShadow != EVENT_FLAGS_DISABLE) {
            eventFlagsShadow = EVENT_FLAGS_DISABLE;
            u16(driverEvent, EVENT_FLAGS, eventFlagsShadow);
        }
    }

    /** Linux virtqueue_enable_cb_prepare_packed(). */
    public void enableCallbacksPrepare() {
        if (config.eventIdx) {
            u16(driverEvent, EVENT_OFF_WRAP, offWrap());
            // We need to update event offset and event wrap counter first before updating event flags: virtio_wmb().
            VarHandle.storeStoreFence();
        }
        if (eventFlagsShadow == EVENT_FLAGS_DISABLE) {
            eventFlagsShadow = config.eventIdx ? EVENT_FLAGS_DESC : EVENT_FLAGS_ENABLE;
            u16(driverEvent, EVENT_FLAGS, eventFlagsShadow);
        }
    }

    /** Linux virtqueue_poll_packed(): virtio_mb() then check the next used descriptor. */
    public boolean poll() {
        VarHandle.fullFence();
        return isUsed(lastUsed, usedWrap);
    }

    @Override
    public boolean enableCallbacks() {
        enableCallbacksPrepare();
        return !poll();
    }

    @Override
    public boolean interrupt() {
        if (!isUsed(lastUsed, usedWrap)) {
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

    @Override
    public void close() { memory.close(); }

    @Override
    public String toString() {
        return "PackedDriver[size=" + size + ", nextAvail=" + nextAvail + (availWrap ? "/1" : "/0") + ", lastUsed="
                + lastUsed + (usedWrap ? "/1" : "/0") + ", free=" + numFree + ", inflight=" + inflight + "]";
    }
}
