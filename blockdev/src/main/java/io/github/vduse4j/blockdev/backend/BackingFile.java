package io.github.vduse4j.blockdev.backend;

import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Ioctl;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The regular file or block device behind {@link FileBackend} and {@link IoUringFileBackend}: opening it with
 * one-line errors a user can act on, its size (re-read for resizes), and closing it.
 */
final class BackingFile implements AutoCloseable {
    /** {@code BLKGETSIZE64 = _IOR(0x12, 114, size_t)}: size of a block device in bytes. */
    private static final Ioctl.Request BLKGETSIZE64 = Ioctl.request("BLKGETSIZE64", Ioctl.ior(0x12, 114, 8));

    final Path path;
    final int fd;
    final boolean readOnly;
    final boolean blockDevice;

    private BackingFile(Path path, int fd, boolean readOnly, boolean blockDevice) {
        this.path = path;
        this.fd = fd;
        this.readOnly = readOnly;
        this.blockDevice = blockDevice;
    }

    /**
     * Opens {@code path} read-write, or read-only when {@code readOnly}; with {@code direct}, O_DIRECT.
     *
     * @throws IllegalArgumentException with a one-line reason a user can act on
     */
    static BackingFile open(Path path, boolean readOnly, boolean direct) {
        if (!Files.exists(path)) {
            throw new IllegalArgumentException("file " + path + " does not exist: create it first (e.g. truncate -s 1G "
                    + path + ")");
        }
        if (Files.isDirectory(path)) {
            throw new IllegalArgumentException(path + " is a directory: give a regular file or a block device");
        }
        boolean block = !Files.isRegularFile(path) && isBlockDevice(path);
        if (!block && !Files.isRegularFile(path)) {
            throw new IllegalArgumentException(path + " is neither a regular file nor a block device");
        }
        int flags = (readOnly ? FileIo.O_RDONLY : FileIo.O_RDWR) | FileIo.O_CLOEXEC | (direct ? FileIo.O_DIRECT : 0);
        int fd;
        try {
            fd = FileIo.open(path.toString(), flags);
        } catch (ErrnoException e) {
            if (e.errno() == Errno.EACCES || e.errno() == Errno.EPERM || e.errno() == Errno.EROFS) {
                throw new IllegalArgumentException("cannot open " + path + (readOnly ? " for reading" : " for writing")
                        + ": " + e.errnoName() + (readOnly ? "" : "; fix its permissions or export it with --readonly"));
            }
            if (direct && e.errno() == Errno.EINVAL) {
                throw new IllegalArgumentException("cannot open " + path + " with O_DIRECT: its file system refuses it"
                        + " (EINVAL); drop --direct");
            }
            throw new IllegalArgumentException("cannot open " + path + ": " + e.getMessage());
        }
        BackingFile f = new BackingFile(path, fd, readOnly, block);
        try {
            f.size();
            return f;
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
    }

    private static boolean isBlockDevice(Path p) {
        try {
            int mode = (Integer) Files.getAttribute(p, "unix:mode");
            return (mode & 0170000) == 0060000; // S_IFBLK
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }

    /** The current size in bytes: the file's length, or BLKGETSIZE64 of a block device. */
    long size() {
        if (!blockDevice) {
            try {
                return Files.size(path);
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot read the size of " + path + ": " + e.getMessage());
            }
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment size = arena.allocate(ValueLayout.JAVA_LONG);
            Ioctl.ioctl(fd, BLKGETSIZE64, size);
            return size.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /** e.g. {@code file /srv/a.img (io_uring) (read-only)}. */
    String describe(String engine) {
        return (blockDevice ? "block device " : "file ") + path + (engine.isEmpty() ? "" : " (" + engine + ")")
                + (readOnly ? " (read-only)" : "");
    }

    @Override
    public void close() {
        FileIo.close(fd);
    }
}
