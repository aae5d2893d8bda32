package io.github.vduse4j.blockdev.backend;

import io.github.vduse4j.bindings.FileIo;
import java.nio.file.Path;

/**
 * What {@link FileBackend} and {@link IoUringFileBackend} share: the {@link BackingFile}, its size (re-read for
 * resizes), read-only mode, DISCARD/WRITE_ZEROES support and closing. They differ only in how I/O is issued.
 */
abstract sealed class FileBackedBackend implements BlockBackend permits FileBackend, IoUringFileBackend {
    final BackingFile file;
    private volatile long capacity;

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

    @Override
    public void close() {
        file.close();
    }
}
