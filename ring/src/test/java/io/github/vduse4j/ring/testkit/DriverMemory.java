package io.github.vduse4j.ring.testkit;

import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.RegionTable;
import io.github.vduse4j.ring.driver.RingMemory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A simulated guest address space in native memory: one region for rings, one for indirect tables, and a data area
 * made of several regions that are contiguous in guest addresses but separate allocations on the host (so a buffer
 * can span two mappings, as with vhost-user memory tables). Allocated from a shared arena: usable from a driver and a
 * device thread. {@link #table()} is the {@link GuestMemory} the device-side queue translates through.
 */
public final class DriverMemory implements RingMemory, AutoCloseable {
    public static final long RING_BASE = 0x1000_0000L;
    public static final long TABLE_BASE = 0x2000_0000L;
    public static final long DATA_BASE = 0x4000_0000L;
    private static final long PAGE = 4096;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment ring;
    private final MemorySegment tables;
    private final MemorySegment[] data;
    private final long dataRegionBytes;
    private final long dataBytes;
    private final RegionTable table;
    private long next;   // circular bump allocator offset into the data area
    private long nextRingPart;   // bump allocator offset into the ring region (page-granular)

    /**
     * @param ringBytes       bytes of the ring region
     * @param tableBytes      bytes of the indirect table region (may be 0)
     * @param dataRegions     number of data regions (>= 1)
     * @param dataRegionBytes bytes of each data region
     */
    public DriverMemory(long ringBytes, long tableBytes, int dataRegions, long dataRegionBytes) {
        ring = arena.allocate(roundUp(ringBytes, PAGE), PAGE);
        tables = tableBytes > 0 ? arena.allocate(roundUp(tableBytes, PAGE), PAGE) : MemorySegment.NULL;
        data = new MemorySegment[dataRegions];
        this.dataRegionBytes = dataRegionBytes;
        this.dataBytes = dataRegionBytes * dataRegions;
        RegionTable.Builder b = RegionTable.builder().add(RING_BASE, ring, GuestMemory.READ | GuestMemory.WRITE);
        if (tableBytes > 0) b.add(TABLE_BASE, tables, GuestMemory.READ | GuestMemory.WRITE);
        for (int i = 0; i < dataRegions; i++) {
            data[i] = arena.allocate(dataRegionBytes, PAGE);
            b.add(DATA_BASE + i * dataRegionBytes, data[i], GuestMemory.READ | GuestMemory.WRITE);
        }
        table = b.build();
    }

    /**
     * Makes this memory usable for a new driver (a test that builds many drivers, such as a fuzz target, reuses one
     * memory instead of mapping and unmapping per driver): zeroes every region and restarts both allocators.
     *
     * @throws IllegalArgumentException if the memory is smaller than the driver needs
     */
    public DriverMemory recycle(long ringBytes, long tableBytes, int dataRegions, long dataRegionBytes) {
        if (roundUp(ringBytes, PAGE) > ring.byteSize() || tableBytes > tables.byteSize() || dataRegions != data.length
                || dataRegionBytes != this.dataRegionBytes) {
            throw new IllegalArgumentException("this driver memory does not fit the driver's configuration");
        }
        ring.fill((byte) 0);
        tables.fill((byte) 0);
        for (MemorySegment d : data) d.fill((byte) 0);
        next = 0;
        nextRingPart = 0;
        return this;
    }

    /** Ring parts are placed page by page from the start of the ring region, in the order the ring asks. */
    @Override
    public MemorySegment ringPart(long bytes, long align) {
        long at = roundUp(nextRingPart, Math.max(align, PAGE));
        nextRingPart = at + bytes;
        return ring.asSlice(at, bytes);
    }

    /** The indirect tables are the table region, from {@link #TABLE_BASE}. */
    @Override
    public MemorySegment indirectTables(long bytes) {
        return tables.asSlice(0, bytes);
    }

    @Override
    public long deviceAddress(MemorySegment part) {
        long a = part.address();
        if (a >= ring.address() && a < ring.address() + ring.byteSize()) return RING_BASE + (a - ring.address());
        if (tables.byteSize() > 0 && a >= tables.address() && a < tables.address() + tables.byteSize()) {
            return TABLE_BASE + (a - tables.address());
        }
        for (int i = 0; i < data.length; i++) {
            if (a >= data[i].address() && a < data[i].address() + dataRegionBytes) {
                return DATA_BASE + i * dataRegionBytes + (a - data[i].address());
            }
        }
        throw new IllegalArgumentException("not in this driver memory: " + part);
    }

    /** Rounds {@code v} up to a multiple of the power of two {@code a}. */
    public static long roundUp(long v, long a) { return (v + a - 1) & -a; }

    public RegionTable table() { return table; }
    public MemorySegment ringSegment() { return ring; }
    public MemorySegment tableSegment() { return tables; }
    public long dataBytes() { return dataBytes; }
    public long dataRegionBytes() { return dataRegionBytes; }
    public int dataRegions() { return data.length; }
    public Arena arena() { return arena; }

    /**
     * Allocates {@code len} bytes of the data area (aligned to {@code align}), circularly: when the end is reached it
     * starts again at the beginning, so callers keep the bytes in flight below {@link #dataBytes()}.
     */
    public long allocate(long len, long align) {
        if (len <= 0 || len > dataBytes) throw new IllegalArgumentException("bad length " + len);
        long at = roundUp(next, align);
        if (at + len > dataBytes) at = 0;
        next = at + len;
        return DATA_BASE + at;
    }

    public long allocate(long len) { return allocate(len, 8); }

    /** Restarts the data allocator at the beginning of the data area. */
    public void resetAllocator() { next = 0; }

    /** Sets the allocator's next offset (e.g. to place a buffer across a region boundary). */
    public void allocatorOffset(long dataOffset) { next = dataOffset; }

    /** Host view of {@code [addr, addr + len)}, which must lie in one region. */
    public MemorySegment view(long addr, long len) {
        if (addr >= RING_BASE && addr + len <= RING_BASE + ring.byteSize()) return ring.asSlice(addr - RING_BASE, len);
        if (addr >= TABLE_BASE && addr + len <= TABLE_BASE + tables.byteSize()) {
            return tables.asSlice(addr - TABLE_BASE, len);
        }
        long off = addr - DATA_BASE;
        if (off >= 0 && off + len <= dataBytes) {
            int r = (int) (off / dataRegionBytes);
            long in = off - r * dataRegionBytes;
            if (in + len <= dataRegionBytes) return data[r].asSlice(in, len);
        }
        throw new IllegalArgumentException(String.format("0x%x+%d is not inside one region", addr, len));
    }

    /** One byte of the data area; handles any address in it. */
    public byte getByte(long addr) {
        long off = addr - DATA_BASE;
        return data[(int) (off / dataRegionBytes)].get(ValueLayout.JAVA_BYTE, off % dataRegionBytes);
    }

    public void putByte(long addr, byte v) {
        long off = addr - DATA_BASE;
        data[(int) (off / dataRegionBytes)].set(ValueLayout.JAVA_BYTE, off % dataRegionBytes, v);
    }

    /** Copies {@code src} to guest data memory at {@code addr} (may span regions). */
    public void write(long addr, byte[] src) {
        for (int i = 0; i < src.length; ) {
            long off = addr + i - DATA_BASE;
            int r = (int) (off / dataRegionBytes);
            long in = off % dataRegionBytes;
            int n = (int) Math.min(src.length - i, dataRegionBytes - in);
            MemorySegment.copy(src, i, data[r], ValueLayout.JAVA_BYTE, in, n);
            i += n;
        }
    }

    /** Reads {@code len} bytes of guest data memory at {@code addr} (may span regions). */
    public byte[] read(long addr, int len) {
        byte[] dst = new byte[len];
        for (int i = 0; i < len; ) {
            long off = addr + i - DATA_BASE;
            int r = (int) (off / dataRegionBytes);
            long in = off % dataRegionBytes;
            int n = (int) Math.min(len - i, dataRegionBytes - in);
            MemorySegment.copy(data[r], ValueLayout.JAVA_BYTE, in, dst, i, n);
            i += n;
        }
        return dst;
    }

    /** Fills guest data memory. */
    public void fill(long addr, long len, byte v) {
        for (long i = 0; i < len; ) {
            long off = addr + i - DATA_BASE;
            int r = (int) (off / dataRegionBytes);
            long in = off % dataRegionBytes;
            long n = Math.min(len - i, dataRegionBytes - in);
            data[r].asSlice(in, n).fill(v);
            i += n;
        }
    }

    @Override
    public void close() { arena.close(); }
}
