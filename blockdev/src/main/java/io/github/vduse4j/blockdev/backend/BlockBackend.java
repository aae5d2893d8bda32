package io.github.vduse4j.blockdev.backend;

/**
 * Storage behind an exported block device. Implementations: {@link NullBackend}, {@link MemoryBackend},
 * {@link FileBackend}; storage stacks plug in their own.
 *
 * <p>A backend is shared by all queues of a device; each queue's poller thread gets its own
 * {@link BackendQueue} from {@link #openQueue(int)} and is the only thread that uses it.
 */
public interface BlockBackend extends AutoCloseable {

    /**
     * The size. May change after {@link #refreshCapacity()}.
     *
     * @return size in bytes, a multiple of 512
     */
    long capacity();

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

    @Override
    void close();
}
