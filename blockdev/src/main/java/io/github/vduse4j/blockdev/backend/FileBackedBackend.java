package io.github.vduse4j.blockdev.backend;

import io.github.vduse4j.bindings.FileIo;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * What {@link FileBackend} and {@link IoUringFileBackend} share: the {@link BackingFile}, its size (re-read for
 * resizes), read-only mode, DISCARD/WRITE_ZEROES support, the switch to {@link StagingBuffer staged copies} where the
 * kernel cannot pin the driver's buffers, and closing. They differ only in how I/O is issued.
 */
abstract sealed class FileBackedBackend implements BlockBackend permits FileBackend, IoUringFileBackend {
    final BackingFile file;
    private volatile long capacity;
    private final AtomicBoolean staging = new AtomicBoolean();

    FileBackedBackend(BackingFile file) {
        this.file = file;
        this.capacity = file.size();
    }

    /**
     * The backing file.
     *
     * @return its path as given
     */
    public Path path() {
        return file.path;
    }

    /**
     * The file's device and inode: the same data, whatever path or options name it.
     *
     * @return {@code file dev D ino I}
     */
    @Override
    public String identity() {
        try {
            return "file dev " + java.nio.file.Files.getAttribute(file.path, "unix:dev") + " ino "
                    + java.nio.file.Files.getAttribute(file.path, "unix:ino");
        } catch (java.io.IOException | UnsupportedOperationException e) {
            return "file " + file.path.toAbsolutePath();
        }
    }

    @Override
    public long capacity() {
        return capacity;
    }

    @Override
    public long refreshCapacity() {
        capacity = file.size();
        return capacity;
    }

    @Override
    public boolean isReadOnly() {
        return file.readOnly;
    }

    @Override
    public boolean supportsDiscard() {
        return true;
    }

    @Override
    public boolean supportsWriteZeroes() {
        return true;
    }

    @Override
    public boolean supportsFlush() {
        return true;
    }

    /** {@code fdatasync}, as a FLUSH request does (safe while the queues' pollers write). */
    @Override
    public void flush() {
        FileIo.fdatasync(file.fd);
    }

    /**
     * A queue got EFAULT from a read or write of the driver's buffers and now copies through a
     * {@link StagingBuffer}: says so on stderr, once per export (the first queue to switch), in one line.
     *
     * @return the new queue's staging buffer
     */
    final StagingBuffer stagingStarted() {
        if (staging.compareAndSet(false, true)) {
            System.err.println("vduse4j: " + file.path + ": the kernel refused to pin the device's buffers for this"
                    + " file's I/O (EFAULT: O_DIRECT and network file systems such as 9p pin them, and Linux 6.12 maps"
                    + " the VDUSE bounce buffer VM_IO); copying through a private buffer from now on (zero copy: --bounce"
                    + " hugepages)");
        }
        return new StagingBuffer();
    }

    /**
     * Whether some queue switched to staged copies (the kernel refused to pin the device's buffers: EFAULT).
     *
     * @return true once a queue of this backend copies its data through a private buffer
     */
    public boolean staging() {
        return staging.get();
    }

    @Override
    public void close() {
        file.close();
    }
}
