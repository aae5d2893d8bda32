package io.github.vduse4j.blockdev.bench;

import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.engine.frontend.FrontendQueue;
import io.github.vduse4j.engine.frontend.MemoryRegion;
import io.github.vduse4j.ring.VirtioRing;
import io.github.vduse4j.ring.driver.DriverRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * virtio-blk requests over one {@link FrontendQueue}, split or packed (virtio 1.2 §5.2.6): {@code depth} request slots,
 * each with its own header, data buffer and status byte in shared memory; a request is a 3-descriptor chain (header
 * readable, data readable or writable, status writable). Completions are busy-polled (used-buffer notifications off).
 * Owned by one thread; no allocation after construction.
 */
public final class BlkQueue implements AutoCloseable {
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final FrontendQueue queue;
    private final DriverRing ring;
    private final MemoryRegion mem;
    private final int depth;
    private final int maxBlock;
    private final long[] headerOffset;
    private final long[] dataOffset;
    /** Per slot: where its data buffer is mapped here and its device address (remapped by {@link #rebind}). */
    private final MemorySegment[] dataSegment;
    private final long[] dataGpa;
    private final int[] headToSlot;
    private final long[] addr = new long[3];
    private final int[] len = new int[3];
    private final boolean[] writable = new boolean[3];
    private final int[] ids;
    private final int[] lens;

    /** Bytes of shared memory one queue needs (split or packed ring). */
    public static long memoryBytes(int ringSize, int depth, int maxBlock) {
        long ringBytes = 3 * 4096L + 16L * ringSize + 8L * ringSize + 4096;
        return ringBytes + depth * (64L + ((maxBlock + 4095L) & ~4095L)) + 2 * 4096L;
    }

    /** A queue over a split ring. */
    public BlkQueue(MemoryRegion mem, int ringSize, int depth, int maxBlock) {
        this(mem, ringSize, depth, maxBlock, 0);
    }

    /**
     * A queue over the ring the negotiated {@code features} call for: packed with VIRTIO_F_RING_PACKED, split
     * otherwise, honouring VIRTIO_F_EVENT_IDX (no indirect tables: a request is 3 descriptors).
     */
    public BlkQueue(MemoryRegion mem, int ringSize, int depth, int maxBlock, long features) {
        this(mem, ringSize, depth, maxBlock, features, mem);
    }

    /**
     * As {@link #BlkQueue(MemoryRegion, int, int, int, long)}, with the data buffers carved out of {@code data}
     * (each slot's buffer in pages of its own, so it can be remapped alone) and ring and headers out of {@code mem}.
     */
    public BlkQueue(MemoryRegion mem, int ringSize, int depth, int maxBlock, long features, MemoryRegion data) {
        this(busyPolled(DriverRing.create(mem, ringSize, (features & (1L << VirtioRing.F_RING_PACKED)) != 0,
                (features & (1L << VirtioRing.F_EVENT_IDX)) != 0, false, 0), depth), mem, data, depth, maxBlock);
    }

    /**
     * A queue over {@code queue} (whose ring may live in another region, with indirect tables), the request slots
     * carved out of {@code data}. How completions are awaited is the caller's: busy polling or
     * {@link FrontendQueue#awaitUsed(int)}.
     */
    public BlkQueue(FrontendQueue queue, MemoryRegion data, int depth, int maxBlock) {
        this(queue, data, data, depth, maxBlock);
    }

    private BlkQueue(FrontendQueue queue, MemoryRegion headers, MemoryRegion data, int depth, int maxBlock) {
        DriverRing ring = queue.ring();
        int perRequest = ring.indirect() ? 1 : 3;
        if (depth < 1 || (long) perRequest * depth > ring.size()) {
            throw new IllegalArgumentException("queue depth " + depth + " needs " + perRequest * depth
                    + " descriptors; the ring has " + ring.size());
        }
        this.mem = headers;
        this.ring = ring;
        this.queue = queue;
        this.depth = depth;
        this.maxBlock = maxBlock;
        this.headerOffset = new long[depth];
        this.dataOffset = new long[depth];
        this.dataSegment = new MemorySegment[depth];
        this.dataGpa = new long[depth];
        for (int i = 0; i < depth; i++) {
            headerOffset[i] = headers.allocate(64, 64);   // 16-byte header, status byte at +16
        }
        for (int i = 0; i < depth; i++) {
            dataOffset[i] = data.allocate(dataBytes(maxBlock), 4096);
            dataSegment[i] = data.segment().asSlice(dataOffset[i], maxBlock);
            dataGpa[i] = data.gpaOf(dataOffset[i]);
        }
        this.headToSlot = new int[ring.size()];
        this.ids = new int[ring.size()];
        this.lens = new int[ring.size()];
    }

    private static FrontendQueue busyPolled(DriverRing ring, int depth) {
        if (depth < 1 || 3L * depth > ring.size()) {
            throw new IllegalArgumentException("queue depth " + depth + " needs " + 3 * depth
                    + " descriptors; the ring has " + ring.size());
        }
        ring.disableCallbacks();   // the bench busy-polls the ring
        return new FrontendQueue(ring);
    }

    public DriverRing ring() { return ring; }
    public int depth() { return depth; }
    public FrontendQueue queue() { return queue; }
    public long kicks() { return queue.kicks(); }

    /** Bytes a slot's data buffer takes: {@code maxBlock} rounded up to whole pages. */
    public static long dataBytes(int maxBlock) {
        return (maxBlock + 4095L) & ~4095L;
    }

    /** The data buffer of {@code slot} (maxBlock bytes), where it is mapped now. */
    public MemorySegment data(int slot) {
        return dataSegment[slot];
    }

    /** Device address of {@code slot}'s data buffer ({@link #dataBytes} bytes, page aligned). */
    public long dataGpa(int slot) {
        return dataGpa[slot];
    }

    /**
     * After the device addresses of {@code slot}'s buffer were remapped to other memory: the buffer is now
     * {@code segment} (at least maxBlock bytes). Only for a slot with no request in flight; the owning thread must
     * see this before it uses the slot again (a volatile hand-over, see BenchJob).
     */
    public void rebind(int slot, MemorySegment segment) {
        dataSegment[slot] = segment.asSlice(0, maxBlock);
    }

    /**
     * Queues request {@code slot}: {@code type} (VirtioBlk.T_IN / T_OUT / T_FLUSH) at {@code sector} with
     * {@code length} data bytes (0 for FLUSH). Returns false if the ring is full.
     */
    public boolean submit(int slot, int type, long sector, int length) {
        MemorySegment m = mem.segment();
        long h = headerOffset[slot];
        m.set(LE_INT, h, type);
        m.set(LE_INT, h + 4, 0);
        m.set(LE_LONG, h + 8, sector);
        m.set(ValueLayout.JAVA_BYTE, h + 16, (byte) 0xff); // status not written yet
        int n = 0;
        addr[n] = mem.gpaOf(h);
        len[n] = VirtioBlk.OUTHDR_SIZE;
        writable[n++] = false;
        if (length > 0) {
            addr[n] = dataGpa[slot];
            len[n] = length;
            writable[n++] = type == VirtioBlk.T_IN;
        }
        addr[n] = mem.gpaOf(h + 16);
        len[n] = 1;
        writable[n++] = true;
        int head = ring.add(addr, len, writable, n, slot);
        if (head < 0) {
            return false;
        }
        headToSlot[head] = slot;
        return true;
    }

    /** Publishes what was submitted and kicks the device if it asked for kicks. */
    public void flush() {
        queue.flush();
    }

    /** Number of completions available into {@link #completedSlot}/{@link #completedStatus} after {@link #reap()}. */
    private int reaped;

    /** Collects completed requests; read them with {@link #completedSlot(int)} and {@link #completedStatus(int)}. */
    public int reap() {
        reaped = ring.poll(ids, lens, ids.length);
        return reaped;
    }

    public int completedSlot(int i) {
        return headToSlot[ids[i]];
    }

    /** The status byte the device wrote (VirtioBlk.S_OK = 0), or 0xff if it wrote none. */
    public int completedStatus(int i) {
        return mem.segment().get(ValueLayout.JAVA_BYTE, headerOffset[headToSlot[ids[i]]] + 16) & 0xff;
    }

    @Override
    public void close() {
        queue.close();
    }
}
