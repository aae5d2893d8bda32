package io.github.vduse4j.blockdev.backend;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.FileIo;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * A regular file or a block device. Data moves with {@code pread}/{@code pwrite} straight between the file
 * and the driver's mapped buffers (zero copy in userspace); FLUSH is {@code fdatasync}; DISCARD punches a
 * hole; WRITE_ZEROES uses {@code FALLOC_FL_ZERO_RANGE} (or a punched hole when the driver allows unmapping),
 * falling back to writing zeros where the file system supports neither. Where the kernel refuses to pin the driver's
 * buffers (EFAULT: 9p/netfs or O_DIRECT over a VDUSE bounce mapping on Linux 6.12), a queue copies through a
 * {@link StagingBuffer} from then on.
 */
public final class FileBackend extends FileBackedBackend {
    private static final int ZERO_CHUNK = 1 << 20;

    private final int fd;
    /** Zeros for WRITE_ZEROES where fallocate cannot do it; shared read-only by all queues. */
    private final MemorySegment zeros = Arena.ofAuto().allocate(ZERO_CHUNK, 4096);

    /**
     * Opens {@code path} read-write, or read-only when {@code readOnly}.
     *
     * @param path     a regular file or block device
     * @param readOnly open it read-only (the device then offers VIRTIO_BLK_F_RO)
     * @throws IllegalArgumentException with a one-line reason a user can act on
     */
    public FileBackend(Path path, boolean readOnly) {
        this(path, readOnly, false);
    }

    /** With {@code direct}, O_DIRECT (the CLI gives O_DIRECT to io_uring only; tests use it to make the kernel pin). */
    FileBackend(Path path, boolean readOnly, boolean direct) {
        super(BackingFile.open(path, readOnly, direct));
        this.fd = file.fd;
    }

    @Override
    public BackendQueue openQueue(int queueIndex) {
        return new Queue();
    }

    /** One poller's context: its own errno capture, so the datapath allocates nothing. */
    final class Queue implements BackendQueue {
        private final CallState st = new CallState();
        /** Set at the first EFAULT (the kernel cannot pin the driver's buffers); from then on every transfer copies. */
        StagingBuffer staging;

        @Override
        public void submit(BlockRequest r) {
            r.complete(execute(r) ? BlockRequest.STATUS_OK : BlockRequest.STATUS_IOERR);
        }

        private boolean execute(BlockRequest r) {
            switch (r.op()) {
                case BlockRequest.READ: {
                    long pos = r.offset();
                    for (int i = 0; i < r.bufferCount(); i++) {
                        if (!transfer(false, r.buffer(i), r.bufferOffset(i), r.bufferLength(i), pos)) {
                            return false;
                        }
                        pos += r.bufferLength(i);
                    }
                    return true;
                }
                case BlockRequest.WRITE: {
                    long pos = r.offset();
                    for (int i = 0; i < r.bufferCount(); i++) {
                        if (!transfer(true, r.buffer(i), r.bufferOffset(i), r.bufferLength(i), pos)) {
                            return false;
                        }
                        pos += r.bufferLength(i);
                    }
                    return true;
                }
                case BlockRequest.FLUSH:
                    return FileIo.fdatasyncRaw(st, fd) == 0;
                case BlockRequest.DISCARD:
                    for (int i = 0; i < r.rangeCount(); i++) {
                        int e = punchHole(r.rangeOffset(i), r.rangeLength(i));
                        // Discard is a hint (virtio 1.2 §5.2.6.2): where holes are unsupported, keep the data.
                        if (e < 0 && e != -Errno.EOPNOTSUPP) {
                            return false;
                        }
                    }
                    return true;
                case BlockRequest.WRITE_ZEROES:
                    for (int i = 0; i < r.rangeCount(); i++) {
                        if (!zero(r.rangeOffset(i), r.rangeLength(i), r.rangeMayUnmap(i))) {
                            return false;
                        }
                    }
                    return true;
                default:
                    return false;
            }
        }

        /** Moves all of {@code len} bytes, continuing after short transfers; false on error or end of file. */
        private boolean transfer(boolean write, MemorySegment seg, long off, long len, long pos) {
            while (len > 0) {
                long n;
                if (staging == null) {
                    n = write ? FileIo.pwriteRaw(st, fd, seg, off, len, pos) : FileIo.preadRaw(st, fd, seg, off, len, pos);
                    if (n == -Errno.EFAULT && seg != zeros) {
                        staging = stagingStarted(); // once per queue; the same bytes again, through the copy
                        continue;
                    }
                } else {
                    n = staging.transfer(st, fd, write, seg, off, len, pos);
                }
                if (n == -Errno.EINTR || n == -Errno.EAGAIN) {
                    continue;
                }
                if (n <= 0) {
                    return false; // error, or the file shrank under us
                }
                off += n;
                pos += n;
                len -= n;
            }
            return true;
        }

        private int punchHole(long off, long len) {
            return FileIo.fallocateRaw(st, fd, FileIo.FALLOC_FL_PUNCH_HOLE | FileIo.FALLOC_FL_KEEP_SIZE, off, len);
        }

        private boolean zero(long off, long len, boolean mayUnmap) {
            if (mayUnmap && punchHole(off, len) == 0) {
                return true;
            }
            int e = FileIo.fallocateRaw(st, fd, FileIo.FALLOC_FL_ZERO_RANGE | FileIo.FALLOC_FL_KEEP_SIZE, off, len);
            if (e == 0 || (e == -Errno.EOPNOTSUPP && punchHole(off, len) == 0)) {
                return true;
            }
            while (len > 0) { // no fallocate support at all: write zeros
                long n = Math.min(len, ZERO_CHUNK);
                if (!transfer(true, zeros, 0, n, off)) {
                    return false;
                }
                off += n;
                len -= n;
            }
            return true;
        }
    }

    @Override
    public String describe() {
        return file.describe("");
    }

}
