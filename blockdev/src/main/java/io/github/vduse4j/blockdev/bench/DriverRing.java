package io.github.vduse4j.blockdev.bench;

/**
 * The driver side of one virtqueue in {@link SharedMemory}: {@link SplitRingDriver} (virtio 1.2 §2.7) or
 * {@link PackedRingDriver} (§2.8). It adds buffers, decides kicks from the device's notification suppression, and
 * polls used buffers; interrupts stay suppressed (the bench polls).
 *
 * <p>Hot path ({@link #add}, {@link #publish}, {@link #poll}): one thread, no allocation, no locks, and nothing the
 * device writes makes it throw. A used element that breaks the rules is counted in {@link #deviceFaults()}; one
 * that leaves the ring unaccountable (an unknown buffer id: where the next used element is cannot be known any
 * more) also makes the ring {@link #broken()}: it then adds and polls nothing until {@link #reset()}.
 */
public sealed interface DriverRing permits SplitRingDriver, PackedRingDriver {
    /** True for the packed layout (VIRTIO_F_RING_PACKED must be negotiated). */
    boolean packed();

    /** Queue size (descriptors). */
    int size();

    /** User address of the Descriptor Area (split: descriptor table; packed: descriptor ring), for SET_VRING_ADDR. */
    long descAddress();

    /** User address of the Driver Area (split: available ring; packed: driver event suppression), SET_VRING_ADDR's
     *  {@code avail_user_addr}. */
    long driverAreaAddress();

    /** User address of the Device Area (split: used ring; packed: device event suppression), SET_VRING_ADDR's
     *  {@code used_user_addr}. */
    long deviceAreaAddress();

    /**
     * The SET_VRING_BASE value that starts a device where this ring stands, valid while nothing is in flight (a
     * fresh or drained ring): split, the next available index; packed, the vhost-user layout of avail index | avail
     * wrap counter &lt;&lt; 15 in the low 16 bits and used index | used wrap counter &lt;&lt; 15 in the high 16 bits
     * ({@code 0x80008000} for a fresh ring: indexes 0, wrap counters 1, §2.8.1).
     */
    int vringBase();

    /** Descriptors not in flight. */
    int freeDescriptors();

    /**
     * Adds a buffer of {@code count} elements ({@code addr}/{@code len}/{@code writable}, device-readable ones
     * first). Split keeps it unpublished until {@link #publish()}; packed makes it available at once. Returns its id
     * (split: the head descriptor index; packed: the buffer id), below {@link #size()}, or -1 if descriptors are
     * short or the ring is broken.
     */
    int add(long[] addr, int[] len, boolean[] writable, int count);

    /** Makes added buffers visible and returns whether the device must be kicked. */
    boolean publish();

    /**
     * Takes up to {@code max} used buffers: ids into {@code ids}, written lengths into {@code lens} (never more than
     * the buffer's device-writable bytes); frees their descriptors. Returns how many.
     */
    int poll(int[] ids, int[] lens, int max);

    /** True once a used element made the ring unaccountable; cleared by {@link #reset()}. */
    boolean broken();

    /** Used elements that broke the rules since the last {@link #reset()}. */
    long deviceFaults();

    /** The first of {@link #deviceFaults()} in words, or null if there was none. Allocates: not for the hot path. */
    String firstDeviceFault();

    /** Empties the ring (fresh indexes, nothing in flight, faults cleared) for a new start. */
    void reset();
}
