package io.github.vduse4j.engine.frontend;

import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.MemoryMap;
import io.github.vduse4j.ring.driver.RingMemory;
import java.lang.foreign.MemorySegment;

/**
 * One region of a frontend's "guest memory": a shared file mapping (a memfd of our own, a hugetlb memfd, or an fd we
 * were handed such as a VDUSE bounce domain), mapped here and announced to the back-end with its fd (vhost-user
 * SET_MEM_TABLE) or its device addresses (vhost-vdpa IOTLB updates). Device (guest-physical) addresses start at
 * {@link #gpa()}; user addresses are where it is mapped in this process (what QEMU would send for its own mapping).
 * Parts are carved out with a bump allocator; as a {@link RingMemory} it holds driver rings and indirect tables.
 */
public final class MemoryRegion implements RingMemory, AutoCloseable {
    private static final long PAGE = 4096;

    private final int fd;
    private final boolean ownsFd;
    private final boolean ownsMapping;
    private final long fdOffset;
    private final long size;
    private final long gpa;
    private final MemorySegment segment;
    private long next;

    private MemoryRegion(int fd, boolean ownsFd, boolean ownsMapping, long fdOffset, long size, long gpa,
            MemorySegment segment) {
        this.fd = fd;
        this.ownsFd = ownsFd;
        this.ownsMapping = ownsMapping;
        this.fdOffset = fdOffset;
        this.size = size;
        this.gpa = gpa;
        this.segment = segment;
    }

    /** {@code size} bytes (rounded up to a page) of a new memfd, at guest physical address {@code gpa}. */
    public static MemoryRegion memfd(long size, long gpa) {
        long bytes = (size + PAGE - 1) & -PAGE;
        int fd = FileIo.memfdCreate("vduse4j-frontend", FileIo.MFD_CLOEXEC);
        try {
            FileIo.ftruncate(fd, bytes);
            return map(fd, true, 0, bytes, gpa);
        } catch (RuntimeException e) {
            FileIo.close(fd);
            throw e;
        }
    }

    /**
     * {@code size} bytes of {@code fd} from {@code fdOffset} (both page multiples), mapped shared, at guest physical
     * address {@code gpa}. With {@code ownsFd} {@link #close()} closes the fd; otherwise the caller keeps it.
     */
    public static MemoryRegion map(int fd, boolean ownsFd, long fdOffset, long size, long gpa) {
        checkPages(fdOffset, size, gpa);
        MemorySegment m = MemoryMap.map(size, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE, MemoryMap.MAP_SHARED, fd,
                fdOffset);
        return new MemoryRegion(fd, ownsFd, true, fdOffset, size, gpa, m);
    }

    /**
     * An existing shared mapping {@code mapping} of {@code fd} from {@code fdOffset} (e.g. a hugepage bounce buffer),
     * at guest physical address {@code gpa}. Neither the fd nor the mapping is owned: {@link #close()} leaves both.
     */
    public static MemoryRegion of(int fd, long fdOffset, MemorySegment mapping, long gpa) {
        checkPages(fdOffset, mapping.byteSize(), gpa);
        return new MemoryRegion(fd, false, false, fdOffset, mapping.byteSize(), gpa, mapping);
    }

    private static void checkPages(long fdOffset, long size, long gpa) {
        if (size <= 0 || (size & (PAGE - 1)) != 0 || (fdOffset & (PAGE - 1)) != 0 || (gpa & (PAGE - 1)) != 0
                || gpa + size < gpa) {
            throw new IllegalArgumentException("memory region must be whole pages: gpa 0x" + Long.toHexString(gpa)
                    + ", size " + size + ", offset " + fdOffset);
        }
    }

    public int fd() { return fd; }
    /** Offset of byte 0 in {@link #fd()} (the vhost-user region's mmap_offset). */
    public long fdOffset() { return fdOffset; }
    public long size() { return size; }
    /** Guest physical address of byte 0. */
    public long gpa() { return gpa; }
    /** User address of byte 0 (this process's mapping). */
    public long uaddr() { return segment.address(); }
    public MemorySegment segment() { return segment; }

    /** True if {@code [gpa, gpa + len)} lies inside this region (no overflow). */
    public boolean contains(long addr, long len) {
        return len >= 0 && addr - gpa >= 0 && addr - gpa <= size && len <= size - (addr - gpa);
    }

    /** Reserves {@code bytes} aligned to {@code align} (a power of two); returns the offset. */
    public long allocate(long bytes, long align) {
        long off = (next + align - 1) & -align;
        if (bytes < 0 || off + bytes > size) {
            throw new IllegalStateException("memory region of " + size + " bytes is full (" + bytes + " more wanted)");
        }
        next = off + bytes;
        return off;
    }

    public long gpaOf(long offset) { return gpa + offset; }
    public long uaddrOf(long offset) { return segment.address() + offset; }

    @Override
    public MemorySegment ringPart(long bytes, long align) {
        return segment.asSlice(allocate(bytes, align), bytes);
    }

    @Override
    public MemorySegment indirectTables(long bytes) {
        return segment.asSlice(allocate(bytes, 16), bytes);
    }

    @Override
    public long deviceAddress(MemorySegment part) {
        long off = part.address() - segment.address();
        if (off < 0 || off + part.byteSize() > size) {
            throw new IllegalArgumentException("not in this memory region: " + part);
        }
        return gpa + off;
    }

    @Override
    public void close() {
        if (ownsMapping) {
            MemoryMap.unmap(segment);
        }
        if (ownsFd) {
            FileIo.close(fd);
        }
    }

    @Override
    public String toString() {
        return String.format("MemoryRegion[gpa 0x%x, %d bytes, fd %d+0x%x]", gpa, size, fd, fdOffset);
    }
}
