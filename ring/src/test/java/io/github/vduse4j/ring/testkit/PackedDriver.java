package io.github.vduse4j.ring.testkit;

import static io.github.vduse4j.ring.VirtioRing.*;

import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.PackedVirtqueue;
import io.github.vduse4j.ring.driver.PackedDriverRing;

import java.lang.foreign.MemorySegment;

/**
 * A packed-ring driver that behaves like Linux {@code virtqueue_add_packed / add_indirect_packed /
 * kick_prepare_packed / get_buf_packed / enable_cb_prepare_packed / disable_cb_packed}: the project's
 * {@link PackedDriverRing} over a {@link DriverMemory}, with the test kit's chain builder, kick and interrupt
 * counters, raw writers for malformed rings, and device misbehaviour turned into AssertionError.
 */
public final class PackedDriver implements VirtqueueDriver, ChainBuilder.ChainAdder {
    private final DriverConfig config;
    private final int size;
    private final DriverMemory memory;
    private final PackedDriverRing ring;
    private final ChainBuilder builder;
    private final PackedRawRing raw;
    private boolean started;
    private long kicks, interrupts, spurious;

    PackedDriver(DriverConfig c) {
        this.config = c;
        this.size = c.size;
        if (size < 1 || size > MAX_QUEUE_SIZE) throw new IllegalArgumentException("packed size out of range: " + size);
        long descBytes = DriverMemory.roundUp(descTableBytes(size), 4096);
        long tableBytes = (long) size * c.maxIndirect * DESC_SIZE;
        memory = c.memory(descBytes + 2 * 4096, tableBytes);
        ring = new PackedDriverRing(memory, size, c.eventIdx, c.indirect, c.maxIndirect);
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
    /** The driver ring itself. */
    public PackedDriverRing ring() { return ring; }
    public MemorySegment descSegment() { return ring.descArea(); }
    public MemorySegment driverEventSegment() { return ring.driverArea(); }
    public MemorySegment deviceEventSegment() { return ring.deviceArea(); }
    /** Driver addresses of the three parts (what a transport would hand the device), mapped by {@code memory().table()}. */
    public long descAddress() { return ring.descAddress(); }
    public long driverEventAddress() { return ring.driverAreaAddress(); }
    public long deviceEventAddress() { return ring.deviceAreaAddress(); }
    public PackedRawRing raw() { return raw; }
    /** Next descriptor the driver will fill, and its wrap counter. */
    public int nextAvail() { return ring.nextAvail(); }
    public boolean availWrapCounter() { return ring.availWrapCounter(); }
    public int lastUsedIdx() { return ring.nextUsed(); }
    public boolean usedWrapCounter() { return ring.usedWrapCounter(); }

    /**
     * Moves a fresh driver to descriptor {@code index} of the lap with wrap counter {@code wrap} (as if earlier
     * laps had come and gone): the ring's flags are rewritten as the device would have left them. A device queue
     * built afterwards is restored to the same place by {@link #newDeviceQueue()}.
     */
    public PackedDriver startAt(int index, boolean wrap) {
        ring.startAt(index, wrap);
        started = true;
        return this;
    }

    @Override
    public PackedVirtqueue newDeviceQueue() { return newDeviceQueue(memory.table()); }

    @Override
    public PackedVirtqueue newDeviceQueue(GuestMemory m) {
        PackedVirtqueue q = new PackedVirtqueue(size, descSegment(), driverEventSegment(), deviceEventSegment(), m,
                config.eventIdx, config.indirect);
        if (started) q.restore(ring.nextAvail(), ring.availWrapCounter(), ring.nextUsed(), ring.usedWrapCounter());
        return q;
    }

    @Override
    public ChainBuilder chain() { return builder.reset(); }

    @Override
    public int add(ChainBuilder c, long tok) {
        return c.addTo(ring, tok);
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

    /** Linux virtqueue_enable_cb_prepare_packed(). */
    public void enableCallbacksPrepare() { ring.enableCallbacksPrepare(); }

    /** Linux virtqueue_poll_packed(): virtio_mb() then check the next used descriptor. */
    public boolean poll() { return ring.pollAfterEnable(); }

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

    @Override
    public void close() { if (config.reuse == null) memory.close(); }

    @Override
    public String toString() { return ring.toString(); }
}
