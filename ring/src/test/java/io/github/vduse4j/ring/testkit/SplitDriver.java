package io.github.vduse4j.ring.testkit;

import static io.github.vduse4j.ring.VirtioRing.*;
import static io.github.vduse4j.ring.testkit.LeAccess.*;

import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.SplitVirtqueue;
import io.github.vduse4j.ring.driver.SplitDriverRing;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * A split-ring driver that behaves like Linux {@code virtqueue_add_split / kick_prepare_split / get_buf_split /
 * enable_cb_prepare_split / disable_cb_split}: the project's {@link SplitDriverRing} over a {@link DriverMemory},
 * with the test kit's chain builder, kick and interrupt counters, raw writers for malformed rings, and device
 * misbehaviour turned into AssertionError.
 */
public final class SplitDriver implements VirtqueueDriver, ChainBuilder.ChainAdder {
    private final DriverConfig config;
    private final int size;
    private final DriverMemory memory;
    private final SplitDriverRing ring;
    private final ChainBuilder builder;
    private final SplitRawRing raw;
    private long kicks, interrupts, spurious;

    SplitDriver(DriverConfig c) {
        this.config = c;
        this.size = c.size;
        if (size < 1 || size > MAX_QUEUE_SIZE || (size & (size - 1)) != 0) {
            throw new IllegalArgumentException("split size must be a power of 2: " + size);
        }
        long descBytes = DriverMemory.roundUp(descTableBytes(size), 4096);
        long availBytes = DriverMemory.roundUp(availRingBytes(size), 4096);
        long usedBytes = DriverMemory.roundUp(usedRingBytes(size), 4096);
        long tableBytes = (long) size * c.maxIndirect * DESC_SIZE;
        memory = c.memory(descBytes + availBytes + usedBytes, tableBytes);
        ring = new SplitDriverRing(memory, size, c.eventIdx, c.indirect, c.maxIndirect);
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
    /** The driver ring itself. */
    public SplitDriverRing ring() { return ring; }
    public MemorySegment descSegment() { return ring.descArea(); }
    public MemorySegment availSegment() { return ring.driverArea(); }
    public MemorySegment usedSegment() { return ring.deviceArea(); }
    /** Driver addresses of the three parts (what a transport would be told). */
    public long descAddress() { return ring.descAddress(); }
    public long availAddress() { return ring.driverAreaAddress(); }
    public long usedAddress() { return ring.deviceAreaAddress(); }
    /** Raw access for writing malformed rings. */
    public SplitRawRing raw() { return raw; }

    /**
     * Moves a fresh driver to avail/used index {@code index} (as if {@code index} chains had come and gone), so tests
     * can cross the u16 wrap quickly; a device queue built afterwards must be {@code restore(index, true, index,
     * true)}d (as {@link #newDeviceQueue()} does).
     */
    public SplitDriver startAt(int index) {
        ring.startAt(index);
        return this;
    }

    @Override
    public SplitVirtqueue newDeviceQueue() { return newDeviceQueue(memory.table()); }

    @Override
    public SplitVirtqueue newDeviceQueue(GuestMemory m) {
        MemorySegment used = usedSegment(), avail = availSegment();
        SplitVirtqueue q = new SplitVirtqueue(size, descSegment(), avail, used, m, config.eventIdx, config.indirect);
        if (u16(used, USED_IDX) != 0 || u16(avail, AVAIL_IDX) != 0) q.restore(u16(used, USED_IDX));
        return q;
    }

    @Override
    public ChainBuilder chain() { return builder.reset(); }

    @Override
    public int add(ChainBuilder c, long tok) {
        int head = c.addTo(ring, tok);
        if (head < 0) return -1;   // -ENOSPC
        // Linux publishes avail->idx at every add (virtio_wmb() + store).
        ring.publish();
        if (ring.added() == 0xFFFF) kickPrepare();   // Linux: "very unlikely, but theoretically possible. Kick just in case."
        return head;
    }

    /** Writes a split descriptor (raw: for {@link SplitRawRing}). */
    static void writeDesc(MemorySegment s, long off, long addr, int len, int flags, int next) {
        descriptorBody(s, off, addr, len, flags);
        U16_UNALIGNED.set(s, off + DESC_NEXT, (short) next);
    }

    @Override
    public boolean kickPrepare() {
        boolean needs = ring.kickPrepare();
        if (needs) kicks++;
        return needs;
    }

    @Override public long kicks() { return kicks; }

    @Override
    public boolean reap(UsedBuffer out) { return out.takeFrom(ring); }

    @Override
    public void disableCallbacks() { ring.disableCallbacks(); }

    /** Linux virtqueue_enable_cb_prepare_split(): returns the used index to {@link #poll(int)} with. */
    public int enableCallbacksPrepare() {
        ring.enableCallbacksPrepare();
        return ring.lastUsedIndex();
    }

    /** Linux virtqueue_poll_split(): virtio_mb() then compare with used->idx. */
    public boolean poll(int lastUsedIdx) {
        VarHandle.fullFence();
        return lastUsedIdx != u16(usedSegment(), USED_IDX);
    }

    @Override
    public boolean enableCallbacks() { return ring.enableCallbacks(); }

    @Override
    public boolean interrupt() {
        if (!ring.hasUsed()) {
            spurious++;
            return false;
        }
        interrupts++;
        return true;
    }

    @Override public long interrupts() { return interrupts; }
    @Override public long spuriousInterrupts() { return spurious; }
    @Override public int numFree() { return ring.freeDescriptors(); }
    @Override public int inflight() { return ring.inflight(); }
    public int availIdxShadow() { return ring.availIndex(); }
    public int lastUsedIdx() { return ring.lastUsedIndex(); }

    @Override
    public void close() { if (config.reuse == null) memory.close(); }

    @Override
    public String toString() { return ring.toString(); }
}
