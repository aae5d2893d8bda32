package io.github.vduse4j.ring;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Flyweight view of the chain last popped by a {@link Virtqueue}: device-readable buffers first, then device-writable
 * ones, each as (long-lived mapping segment, offset, length). One instance per queue poller, reused for every pop;
 * its arrays are sized at construction and never grow.
 *
 * <p>A descriptor whose range spans two mappings becomes two buffers; a descriptor larger than 1 GiB is cut into
 * 1 GiB buffers (so {@link #length(int)} fits an int). Zero-length descriptors produce no buffer.
 */
public final class DescriptorChain {
    /** Largest single buffer; longer descriptors are cut into pieces of this size. */
    static final long MAX_BUFFER = 1L << 30;

    private final Object[] segments;   // Object[]: stores need no interface type check (aastore)
    private final long[] offsets;
    private final long[] addresses;
    private final int[] lengths;
    private final int capacity;
    private int count;
    private int readable;
    private long readableLength;
    private long writableLength;
    private int id = -1;
    private int error;
    private long copiedBytes;

    /** A chain that holds up to {@code maxBuffers} buffers (a longer chain is rejected with {@link ChainError#TOO_LONG}). */
    public DescriptorChain(int maxBuffers) {
        if (maxBuffers < 1) throw new IllegalArgumentException("maxBuffers must be >= 1: " + maxBuffers);
        capacity = maxBuffers;
        segments = new Object[maxBuffers];
        offsets = new long[maxBuffers];
        addresses = new long[maxBuffers];
        lengths = new int[maxBuffers];
    }

    /**
     * A chain for {@code queue}: room for the longest chain accepted (queue size descriptors, §2.7.5.3.1, §2.8.17,
     * or an indirect table of up to {@link VirtioRing#maxIndirectEntries}) each split once at a mapping boundary,
     * plus 256 more pieces for buffers that span several mappings (e.g. small IOTLB mappings). A chain that needs
     * more is rejected with {@link ChainError#TOO_LONG}.
     */
    public static DescriptorChain forQueue(Virtqueue queue) {
        return new DescriptorChain(capacityFor(queue.size()));
    }

    /** Buffers a chain on a queue of {@code queueSize} entries can need (see {@link #forQueue}). */
    public static int capacityFor(int queueSize) {
        return 2 * VirtioRing.maxIndirectEntries(queueSize) + 256;
    }

    /** Split: head descriptor index; packed: buffer id. The value to pass to {@link Virtqueue#complete}; -1 if unknown. */
    public int id() { return id; }
    public int bufferCount() { return count; }
    /** Buffers {@code [0, readableCount)} are device-readable. */
    public int readableCount() { return readable; }
    /** Buffers {@code [readableCount, bufferCount)} are device-writable. */
    public int writableCount() { return count - readable; }
    public long readableLength() { return readableLength; }
    public long writableLength() { return writableLength; }
    /** The long-lived segment of the mapping that holds buffer i (not a per-request slice). */
    public MemorySegment segment(int i) { return (MemorySegment) segments[i]; }
    /** Offset of buffer i inside {@link #segment(int)}. */
    public long offset(int i) { return offsets[i]; }
    /**
     * The device address (guest physical address or IOVA) of buffer i's first byte, as the descriptor gave it: what a
     * relay forwards to another device that shares the same address space (the vhost-user bridge).
     */
    public long address(int i) { return addresses[i]; }
    public int length(int i) { return lengths[i]; }
    public boolean isWritable(int i) { return i >= readable; }
    /** A {@link ChainError} code, {@link ChainError#NONE} after a successful pop. */
    public int error() { return error; }
    public int capacity() { return capacity; }
    /**
     * Payload bytes {@link #readTo} and {@link #writeFrom} moved through this chain object since it was made (over
     * every pop): a handler that forwards buffers without touching them (the vhost-user bridge) keeps it at 0.
     */
    public long copiedBytes() { return copiedBytes; }

    // ---------------------------------------------------------------- filled by the queues

    void reset() {
        count = 0;
        readable = 0;
        readableLength = 0;
        writableLength = 0;
        id = -1;
        error = ChainError.NONE;
    }

    void setId(int id) { this.id = id; }

    void setError(int error) { this.error = error; }

    boolean hasWritable() { return count > readable; }

    /**
     * Appends {@code [addr, addr + len)} as one or more buffers. The caller has checked {@code len > 0} and that the
     * range does not pass 2^64. Returns a {@link ChainError} code.
     */
    int addRange(GuestMemory memory, Translation t, long addr, long len, boolean writable) {
        final int access = writable ? GuestMemory.WRITE : GuestMemory.READ;
        while (len > 0) {
            if (count == capacity) return ChainError.TOO_LONG;
            final long want = len > MAX_BUFFER ? MAX_BUFFER : len;
            if (!memory.translate(addr, want, access, t)) return ChainError.OUT_OF_MEMORY_RANGE;
            final long got = t.length;
            final MemorySegment seg = t.segment;
            final long off = t.offset;
            // Defensive: a GuestMemory implementation bug must not turn into an out-of-bounds access later.
            if (got <= 0 || got > want || seg == null || off < 0 || off > seg.byteSize() - got) {
                return ChainError.OUT_OF_MEMORY_RANGE;
            }
            segments[count] = seg;
            offsets[count] = off;
            addresses[count] = addr;
            lengths[count] = (int) got;
            count++;
            if (writable) {
                writableLength += got;
            } else {
                readableLength += got;
                readable = count;
            }
            addr += got;
            len -= got;
        }
        return ChainError.NONE;
    }

    // ---------------------------------------------------------------- allocation-free copy helpers

    /**
     * Copies up to {@code len} bytes of the readable byte stream, starting {@code chainOffset} bytes into it, to
     * {@code dst[dstOffset..]}. Returns the bytes copied (less than len if the stream ends first).
     */
    public long readTo(long chainOffset, MemorySegment dst, long dstOffset, long len) {
        return copy(0, readable, chainOffset, dst, dstOffset, len, true);
    }

    /**
     * Copies up to {@code len} bytes from {@code src[srcOffset..]} into the writable byte stream, starting
     * {@code chainOffset} bytes into it. Returns the bytes copied (less than len if the stream ends first).
     */
    public long writeFrom(MemorySegment src, long srcOffset, long chainOffset, long len) {
        return copy(readable, count, chainOffset, src, srcOffset, len, false);
    }

    private long copy(int from, int to, long skip, MemorySegment other, long otherOffset, long len, boolean toOther) {
        if (skip < 0 || len <= 0) return 0;
        long done = 0;
        for (int i = from; i < to && done < len; i++) {
            final long bl = lengths[i];
            if (skip >= bl) { skip -= bl; continue; }
            final long n = Math.min(bl - skip, len - done);
            if (toOther) {
                MemorySegment.copy((MemorySegment) segments[i], offsets[i] + skip, other, otherOffset + done, n);
            } else {
                MemorySegment.copy(other, otherOffset + done, (MemorySegment) segments[i], offsets[i] + skip, n);
            }
            done += n;
            skip = 0;
        }
        copiedBytes += done;
        return done;
    }

    /** The byte at {@code chainOffset} of the readable stream; the caller checks {@link #readableLength()} first. */
    public byte readByte(long chainOffset) {
        long skip = chainOffset;
        for (int i = 0; i < readable; i++) {
            if (skip < lengths[i]) return ((MemorySegment) segments[i]).get(ValueLayout.JAVA_BYTE, offsets[i] + skip);
            skip -= lengths[i];
        }
        throw new IndexOutOfBoundsException("readable offset " + chainOffset + " >= " + readableLength);
    }

    /** Little-endian u32 at {@code chainOffset} of the readable stream (may straddle buffers). */
    public int readIntLE(long chainOffset) {
        int i = locate(0, readable, chainOffset);
        if (i >= 0) {
            long skip = chainOffset - skipped;
            if (lengths[i] - skip >= 4) return (int) LittleEndian.U32.get((MemorySegment) segments[i], offsets[i] + skip);
        }
        int v = 0;
        for (int k = 0; k < 4; k++) v |= (readByte(chainOffset + k) & 0xFF) << (8 * k);
        return v;
    }

    /** Little-endian u64 at {@code chainOffset} of the readable stream (may straddle buffers). */
    public long readLongLE(long chainOffset) {
        int i = locate(0, readable, chainOffset);
        if (i >= 0) {
            long skip = chainOffset - skipped;
            if (lengths[i] - skip >= 8) return (long) LittleEndian.U64.get((MemorySegment) segments[i], offsets[i] + skip);
        }
        long v = 0;
        for (int k = 0; k < 8; k++) v |= (readByte(chainOffset + k) & 0xFFL) << (8 * k);
        return v;
    }

    /** Writes one byte at {@code chainOffset} of the writable stream (e.g. a virtio-blk status byte). */
    public void writeByte(long chainOffset, byte value) {
        int i = locate(readable, count, chainOffset);
        if (i < 0) throw new IndexOutOfBoundsException("writable offset " + chainOffset + " >= " + writableLength);
        ((MemorySegment) segments[i]).set(ValueLayout.JAVA_BYTE, offsets[i] + (chainOffset - skipped), value);
    }

    /** Writes {@code value} at the last byte of the writable stream (virtio-blk status convention). */
    public void writeLastByte(byte value) {
        if (count == readable) throw new IndexOutOfBoundsException("no writable buffer");
        int last = count - 1;
        ((MemorySegment) segments[last]).set(ValueLayout.JAVA_BYTE, offsets[last] + lengths[last] - 1, value);
    }

    private long skipped;  // bytes before the buffer {@link #locate} returned

    private int locate(int from, int to, long chainOffset) {
        if (chainOffset < 0) return -1;
        long before = 0;
        for (int i = from; i < to; i++) {
            if (chainOffset < before + lengths[i]) { skipped = before; return i; }
            before += lengths[i];
        }
        return -1;
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("DescriptorChain[id=").append(id);
        if (error != ChainError.NONE) s.append(", error=").append(ChainError.name(error));
        s.append(", readable=").append(readable).append('/').append(readableLength)
                .append("B, writable=").append(count - readable).append('/').append(writableLength).append("B]");
        return s.toString();
    }
}
