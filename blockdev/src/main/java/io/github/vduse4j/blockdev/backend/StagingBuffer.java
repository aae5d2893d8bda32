package io.github.vduse4j.blockdev.backend;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.FileIo;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A private buffer that a queue's file I/O goes through once the kernel has refused to pin the driver's buffers.
 *
 * <p>Why: O_DIRECT (block devices, ext4, xfs) and network file systems (9p and everything else on netfs since Linux
 * 6.x, whose unbuffered and direct paths pin the user pages: {@code netfs_extract_user_iter}) hand the kernel the
 * pages of the user buffer with {@code pin_user_pages}. A VDUSE bounce mapping on Linux 6.12 is {@code VM_IO}
 * ({@code vduse_domain_mmap} in {@code drivers/vdpa/vdpa_user/iova_domain.c}; 6.1 set only VM_DONTDUMP |
 * VM_DONTEXPAND), and GUP refuses VM_IO mappings ({@code check_vma_flags} in {@code mm/gup.c}): the read or write
 * fails with EFAULT although the process itself can read and write that memory. So on the first EFAULT a queue
 * switches to copying between the driver's buffer and this one, {@link #CHUNK} bytes per system call
 * ({@link FileBackedBackend#stagingStarted} says so once per export); zero copy stays available with
 * {@code --bounce hugepages}, whose memory is the process's own.
 *
 * <p>Allocated at that switch (once per queue, never again), 4 KiB aligned so that O_DIRECT accepts it. Used only
 * by its queue's poller thread.
 */
final class StagingBuffer {
    /** Bytes per staged system call; a multiple of every logical block size (O_DIRECT). */
    static final int CHUNK = 256 << 10;

    private final MemorySegment buffer = Arena.ofAuto().allocate(CHUNK, 4096);
    /** Bytes moved through the buffer so far (poller thread; read by tests). */
    long stagedBytes;

    /**
     * Moves up to {@link #CHUNK} bytes of {@code seg[off, off + len)} to or from the file at {@code pos} through
     * the buffer: the write copies first, the read copies what {@code pread} returned.
     *
     * @return bytes moved, or {@code -errno} (0 at end of file)
     */
    long transfer(CallState st, int fd, boolean write, MemorySegment seg, long off, long len, long pos) {
        long n = Math.min(len, CHUNK);
        long r;
        if (write) {
            MemorySegment.copy(seg, off, buffer, 0, n);
            r = FileIo.pwriteRaw(st, fd, buffer, 0, n, pos);
        } else {
            r = FileIo.preadRaw(st, fd, buffer, 0, n, pos);
            if (r > 0) {
                MemorySegment.copy(buffer, 0, seg, off, r);
            }
        }
        if (r > 0) {
            stagedBytes += r;
        }
        return r;
    }
}
