package io.github.vduse4j.blockdev.backend;

/**
 * Storage behind an exported block device. Implementations: {@link NullBackend}, {@link MemoryBackend},
 * {@link FileBackend}; storage stacks plug in their own.
 *
 * <p>Threading contract. A backend is shared by all queues of a device; each queue's poller thread gets its own
 * {@link BackendQueue} from {@link #openQueue(int)} and is the only thread that calls it. Requests may be completed
 * from any thread ({@link BlockRequest#complete(int)}): on the poller (inside {@code submit} or {@code poll}) they
 * finish at once; from a thread of the backend's own (an executor, a network client's event loop) they travel to the
 * poller through a bounded lock-free queue and wake it through its completion eventfd, so only the poller ever writes
 * the ring. {@link #capacity()}, {@link #refreshCapacity()}, {@link #flush()} and {@link #close()} are called from
 * control threads; {@code close()} only after every queue is closed.
 */
public interface BlockBackend extends AutoCloseable {

    /**
     * The size. May change after {@link #refreshCapacity()}.
     *
     * @return size in bytes, a multiple of 512
     */
    long capacity();

    /**
     * Sets the size to {@code bytes} (a multiple of 512) for backends whose size is theirs to choose (null, memory);
     * file-backed ones follow their file ({@link #refreshCapacity()}).
     *
     * @param bytes the new size in bytes
     * @return the new size in bytes
     * @throws UnsupportedOperationException if this backend's size follows something else
     * @throws IllegalArgumentException if it cannot take that size
     */
    default long resize(long bytes) {
        throw new UnsupportedOperationException(describe() + " takes its size from its file: resize the file"
                + " (truncate -s) and resize without a size");
    }

    /**
     * Re-reads the size from the storage (e.g. after the backing file grew).
     *
     * @return the new size in bytes
     */
    default long refreshCapacity() {
        return capacity();
    }

    /**
     * Whether the storage cannot be written; the device then offers VIRTIO_BLK_F_RO.
     *
     * @return true for read-only storage
     */
    boolean isReadOnly();

    /**
     * Whether the device offers DISCARD (VIRTIO_BLK_F_DISCARD).
     *
     * @return true when {@link BlockRequest#DISCARD} is supported
     */
    boolean supportsDiscard();

    /**
     * Whether the device offers WRITE_ZEROES (VIRTIO_BLK_F_WRITE_ZEROES).
     *
     * @return true when {@link BlockRequest#WRITE_ZEROES} is supported
     */
    boolean supportsWriteZeroes();

    /**
     * True when a completed {@link BlockRequest#FLUSH} makes every write completed before it durable and
     * {@link #flush()} works. The device offers VIRTIO_BLK_F_CONFIG_WCE (a driver-selectable writethrough mode, which
     * relies on exactly that) only then. Default: false, so a backend opts in.
     *
     * @return true when FLUSH and {@link #flush()} make completed writes durable
     */
    default boolean supportsFlush() {
        return false;
    }

    /**
     * Makes every write completed so far durable (a file: {@code fdatasync}). Called from a control thread, never a
     * poller, while queues may be running (when the driver switches the device to writethrough); may block.
     *
     * @throws RuntimeException with a one-line reason when the storage could not be flushed
     */
    default void flush() {
        throw new UnsupportedOperationException(describe() + " cannot flush");
    }

    /**
     * The smallest discard, in bytes, the storage really deallocates (a power of two); the device advertises it as
     * {@code discard_sector_alignment} when it exceeds the block size. 0: the block size.
     *
     * @return the discard granularity in bytes, or 0 for the block size (the default)
     */
    default int discardGranularity() {
        return 0;
    }

    /**
     * Opens the per-queue submission context used by one poller thread (control path: may allocate).
     *
     * @param queueIndex the virtqueue's index, 0-based
     * @return that queue's context, used only by its poller thread
     */
    BackendQueue openQueue(int queueIndex);

    /**
     * A short description for logs and the CLI.
     *
     * @return e.g. {@code file /srv/disk.img}
     */
    String describe();

    /**
     * What a VDUSE reconnect log records to recognise this backend after a restart (the data must be the same, not
     * only the options): by default {@link #describe()}; a file backend names its device and inode. A backend whose
     * data dies with its process returns something no later process can match, so a takeover is refused.
     *
     * @return a short stable description of where the data lives
     */
    default String identity() {
        return describe();
    }

    @Override
    void close();
}
