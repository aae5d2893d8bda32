package io.github.vduse4j.blockdev.bench;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.ring.VirtioRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * virtio-blk requests over one {@link DriverRing}, split or packed (virtio 1.2 §5.2.6): {@code depth} request slots,
 * each with its own header, data buffer and status byte in shared memory; a request is a 3-descriptor chain (header
 * readable, data readable or writable, status writable). Owned by one thread; no allocation after construction.
 */
public final class BlkQueue implements AutoCloseable {
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final DriverRing ring;
    private final SharedMemory mem;
    private final int depth;
    private final int maxBlock;
    private final long[] headerOffset;
    private final long[] dataOffset;
    private final int[] headToSlot;
    private final int kickFd;
    private final int callFd;
    private final CallState state = new CallState();
    private final long[] addr = new long[3];
    private final int[] len = new int[3];
    private final boolean[] writable = new boolean[3];
    private final int[] ids;
    private final int[] lens;
    private long kicks;

    /** Bytes of shared memory one queue needs (split or packed ring). */
    public static long memoryBytes(int ringSize, int depth, int maxBlock) {
        long ringBytes = 3 * 4096L + 16L * ringSize + 8L * ringSize + 4096;
        return ringBytes + depth * (64L + ((maxBlock + 4095L) & ~4095L)) + 2 * 4096L;
    }

    /** A queue over a split ring. */
    public BlkQueue(SharedMemory mem, int ringSize, int depth, int maxBlock) {
        this(mem, ringSize, depth, maxBlock, 0);
    }

    /**
     * A queue over the ring the negotiated {@code features} call for: packed with VIRTIO_F_RING_PACKED (honouring
     * VIRTIO_F_EVENT_IDX), split otherwise (which does not implement EVENT_IDX: refused).
     */
    public BlkQueue(SharedMemory mem, int ringSize, int depth, int maxBlock, long features) {
        if (depth < 1 || 3L * depth > ringSize) {
            throw new IllegalArgumentException("queue depth " + depth + " needs " + 3 * depth
                    + " descriptors; the ring has " + ringSize);
        }
        boolean packed = (features & (1L << VirtioRing.F_RING_PACKED)) != 0;
        boolean eventIdx = (features & (1L << VirtioRing.F_EVENT_IDX)) != 0;
        if (eventIdx && !packed) {
            throw new IllegalArgumentException("the split ring driver does not implement VIRTIO_F_EVENT_IDX");
        }
        this.mem = mem;
        this.ring = packed ? new PackedRingDriver(mem, ringSize, eventIdx) : new SplitRingDriver(mem, ringSize);
        this.depth = depth;
        this.maxBlock = maxBlock;
        this.headerOffset = new long[depth];
        this.dataOffset = new long[depth];
        for (int i = 0; i < depth; i++) {
            headerOffset[i] = mem.allocate(64, 64);   // 16-byte header, status byte at +16
        }
        for (int i = 0; i < depth; i++) {
            dataOffset[i] = mem.allocate(maxBlock, 4096);
        }
        this.headToSlot = new int[ringSize];
        this.kickFd = EventFd.create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK);
        this.callFd = EventFd.create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK);
        this.ids = new int[ringSize];
        this.lens = new int[ringSize];
    }

    public DriverRing ring() { return ring; }
    public int depth() { return depth; }
    public int kickFd() { return kickFd; }
    public int callFd() { return callFd; }
    public long kicks() { return kicks; }

    /** The data buffer of {@code slot} (maxBlock bytes). */
    public MemorySegment data(int slot) {
        return mem.segment().asSlice(dataOffset[slot], maxBlock);
    }

    public MemorySegment memory() { return mem.segment(); }
    public long dataOffset(int slot) { return dataOffset[slot]; }

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
            addr[n] = mem.gpaOf(dataOffset[slot]);
            len[n] = length;
            writable[n++] = type == VirtioBlk.T_IN;
        }
        addr[n] = mem.gpaOf(h + 16);
        len[n] = 1;
        writable[n++] = true;
        int head = ring.add(addr, len, writable, n);
        if (head < 0) {
            return false;
        }
        headToSlot[head] = slot;
        return true;
    }

    /** Publishes what was submitted and kicks the device if it asked for kicks. */
    public void flush() {
        if (ring.publish()) {
            kicks++;
            EventFd.signalRaw(state, kickFd, 1);
        }
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
        io.github.vduse4j.bindings.FileIo.close(kickFd);
        io.github.vduse4j.bindings.FileIo.close(callFd);
    }
}
