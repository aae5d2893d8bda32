package io.github.vduse4j.jmh.ring;

import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.VirtioRing;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.DriverMemory;
import io.github.vduse4j.ring.testkit.PackedDriver;
import io.github.vduse4j.ring.testkit.SplitDriver;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * A minimal replay "driver" for device-side benchmarks: 3-descriptor chains (16 B header, 4 KiB data, 1 B status)
 * are written once, and {@link #expose(int, int)} only re-exposes them (split: avail ring entries + one avail->idx
 * release store; packed: rewrites the descriptors' flags, head flags last after a release fence). It never reaps:
 * the device side does not care. The header and data buffers are shared by all chains.
 */
public final class RingReplay implements AutoCloseable {
    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle()
            .withInvokeExactBehavior();
    private static final VarHandle U64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle()
            .withInvokeExactBehavior();

    private final VirtqueueDriver driver;
    private final boolean packed;
    private final int size;
    private final MemorySegment desc;
    private final MemorySegment avail;
    public final long header;
    public final long data;
    public final long status;
    private int availIdx;          // split
    private int splitHead;         // split
    private int next;              // packed: next descriptor
    private boolean wrap = true;   // packed: driver wrap counter

    /** @param dataWritable whether the 4 KiB buffer is device-writable (a read request) or readable (a write) */
    public RingReplay(boolean packed, int size, boolean dataWritable) {
        this.packed = packed;
        this.size = size;
        driver = DriverConfig.of(size).eventIdx(true).dataRegions(1, 1 << 20).build(packed);
        DriverMemory m = driver.memory();
        header = m.allocate(16, 16);
        data = m.allocate(4096, 4096);
        status = m.allocate(1, 1);
        this.dataFlags = dataWritable ? VirtioRing.DESC_F_WRITE : 0;
        if (packed) {
            desc = ((PackedDriver) driver).descSegment();
            avail = null;
        } else {
            SplitDriver s = (SplitDriver) driver;
            desc = s.descSegment();
            avail = s.availSegment();
            // chains at heads 0, 3, 6, ...: header -> data -> status
            for (int h = 0; h + 2 < size; h += 3) {
                s.raw().descriptor(h, header, 16, VirtioRing.DESC_F_NEXT, h + 1)
                        .descriptor(h + 1, data, 4096, VirtioRing.DESC_F_NEXT | dataFlags, h + 2)
                        .descriptor(h + 2, status, 1, VirtioRing.DESC_F_WRITE, 0);
            }
        }
    }

    private final int dataFlags;

    public DriverMemory memory() {
        return driver.memory();
    }

    /** The descriptor table (split) or ring (packed), e.g. for a packed inflight tracker's copies. */
    public MemorySegment descSegment() {
        return desc;
    }

    /** The device side over the same rings. */
    public Virtqueue newDeviceQueue() {
        return driver.newDeviceQueue();
    }

    /** Makes {@code n} more chains available; packed ids start at {@code firstId}. */
    public void expose(int n, int firstId) {
        if (packed) {
            exposePacked(n, firstId);
        } else {
            exposeSplit(n);
        }
    }

    private void exposeSplit(int n) {
        for (int i = 0; i < n; i++) {
            U16.set(avail, VirtioRing.AVAIL_RING + 2L * (availIdx + i & (size - 1)), (short) splitHead);
            splitHead += 3;
            if (splitHead + 2 >= size) splitHead = 0;
        }
        availIdx = (availIdx + n) & 0xFFFF;
        U16.setRelease(avail, VirtioRing.AVAIL_IDX, (short) availIdx); // virtio_wmb before the index (§2.7.13)
    }

    private void writePacked(int i, long addr, int len, int id, int flags) {
        long off = 16L * i;
        U64.set(desc, off, addr);
        U64.set(desc, off + 8, (len & 0xFFFF_FFFFL) | (long) id << 32 | (long) (flags & 0xFFFF) << 48);
    }

    private void exposePacked(int n, int firstId) {
        for (int c = 0; c < n; c++) {
            int availFlags = wrap ? VirtioRing.PACKED_DESC_F_AVAIL : VirtioRing.PACKED_DESC_F_USED;
            int head = next;
            int i1 = head + 1 == size ? 0 : head + 1;
            int f1 = i1 == 0 ? availFlags ^ 0x8080 : availFlags;
            int i2 = i1 + 1 == size ? 0 : i1 + 1;
            int f2 = i2 == 0 ? availFlags ^ 0x8080 : (i1 == 0 ? f1 : availFlags);
            writePacked(i1, data, 4096, firstId + c, f1 | VirtioRing.DESC_F_NEXT | dataFlags);
            writePacked(i2, status, 1, firstId + c, f2 | VirtioRing.DESC_F_WRITE);
            // head last, after a release fence (virtio_wmb, §2.8.21)
            U64.set(desc, 16L * head, header);
            VarHandle.releaseFence();
            U64.set(desc, 16L * head + 8,
                    16L | (long) (firstId + c) << 32 | (long) (availFlags | VirtioRing.DESC_F_NEXT) << 48);
            next = i2 + 1;
            if (next >= size) {
                next -= size;
            }
            if (next <= head) wrap = !wrap;
        }
    }

    /** A value that depends on the replay state (for JMH to consume). */
    public int position() {
        return next + availIdx;
    }

    @Override
    public void close() {
        driver.close();
    }
}
