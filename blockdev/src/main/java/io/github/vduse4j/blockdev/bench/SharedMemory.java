package io.github.vduse4j.blockdev.bench;

import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.MemoryMap;
import java.lang.foreign.MemorySegment;

/**
 * The frontend's "guest memory": one memfd, mapped shared here and handed to the back-end with SET_MEM_TABLE.
 * Guest physical addresses start at {@link #gpa()}; user addresses are where it is mapped in this process
 * (what QEMU would send for its own mapping). Parts are carved out with a bump allocator.
 */
public final class SharedMemory implements AutoCloseable {
    private final int fd;
    private final long size;
    private final long gpa;
    private final MemorySegment segment;
    private long next;

    private SharedMemory(int fd, long size, long gpa, MemorySegment segment) {
        this.fd = fd;
        this.size = size;
        this.gpa = gpa;
        this.segment = segment;
    }

    /** {@code size} bytes (rounded up to a page) at guest physical address {@code gpa}. */
    public static SharedMemory create(long size, long gpa) {
        long bytes = (size + 4095) & ~4095L;
        int fd = FileIo.memfdCreate("vduse4j-frontend", FileIo.MFD_CLOEXEC);
        try {
            FileIo.ftruncate(fd, bytes);
            MemorySegment m = MemoryMap.map(bytes, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE, MemoryMap.MAP_SHARED, fd, 0);
            return new SharedMemory(fd, bytes, gpa, m);
        } catch (RuntimeException e) {
            FileIo.close(fd);
            throw e;
        }
    }

    public int fd() { return fd; }
    public long size() { return size; }
    /** Guest physical address of byte 0. */
    public long gpa() { return gpa; }
    /** User address of byte 0 (this process's mapping). */
    public long uaddr() { return segment.address(); }
    public MemorySegment segment() { return segment; }

    /** Reserves {@code bytes} aligned to {@code align}; returns the offset. */
    public long allocate(long bytes, long align) {
        long off = (next + align - 1) & -align;
        if (off + bytes > size) {
            throw new IllegalStateException("shared memory of " + size + " bytes is full");
        }
        next = off + bytes;
        return off;
    }

    public long gpaOf(long offset) { return gpa + offset; }
    public long uaddrOf(long offset) { return segment.address() + offset; }

    @Override
    public void close() {
        MemoryMap.unmap(segment);
        FileIo.close(fd);
    }
}
