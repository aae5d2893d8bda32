package io.github.vduse4j.ring.driver;

import java.lang.foreign.MemorySegment;

/**
 * The driver side of one virtqueue: {@link SplitDriverRing} (virtio 1.2 §2.7) or {@link PackedDriverRing} (§2.8),
 * written after Linux {@code drivers/virtio/virtio_ring.c}. It adds buffers (directly or through an indirect table,
 * §2.7.5.3 / §2.8.7), publishes them, decides kicks from the device's notification suppression (with or without
 * VIRTIO_F_EVENT_IDX), reaps used buffers, and turns used-buffer notifications off (busy polling) or on (sleeping on
 * the call eventfd). The one driver-ring implementation of the project: the vhost frontends ({@code vduse4j bench},
 * the vhost-user bridge) and the ring test kit all use it.
 *
 * <p>Addresses: {@link #descAddress()} etc. are device addresses ({@link RingMemory#deviceAddress}); a vhost-user
 * transport announces this process's user addresses of {@link #descArea()} etc. instead.
 *
 * <p>Hot path ({@link #add}, {@link #publish}, {@link #kickPrepare}, {@link #reap}, {@link #poll}): one thread, no
 * allocation, no locks, and nothing the device writes makes it throw. A used element that breaks the rules is counted
 * in {@link #deviceFaults()}; one that leaves the ring unaccountable (an unknown buffer id, a used index too far
 * ahead: where the next used element is cannot be known any more) also makes the ring {@link #broken()}: it then adds
 * and reaps nothing until {@link #reset()}.
 */
public sealed interface DriverRing permits SplitDriverRing, PackedDriverRing {
    /**
     * A ring of {@code size} descriptors placed in {@code memory}.
     *
     * @param packed          VIRTIO_F_RING_PACKED was negotiated
     * @param eventIdx        VIRTIO_F_EVENT_IDX was negotiated
     * @param indirect        VIRTIO_F_INDIRECT_DESC was negotiated: {@link #add} uses a table for chains of 2+
     * @param indirectEntries entries of each buffer's indirect table (0: no tables are reserved)
     */
    static DriverRing create(RingMemory memory, int size, boolean packed, boolean eventIdx, boolean indirect,
            int indirectEntries) {
        return packed ? new PackedDriverRing(memory, size, eventIdx, indirect, indirectEntries)
                : new SplitDriverRing(memory, size, eventIdx, indirect, indirectEntries);
    }

    /** True for the packed layout. */
    boolean packed();

    /** Queue size (descriptors). */
    int size();

    boolean eventIdx();

    /** VIRTIO_F_INDIRECT_DESC was negotiated. */
    boolean indirect();

    /** Entries of each buffer's indirect table (0: none reserved). */
    int indirectEntries();

    /** The Descriptor Area (split: descriptor table; packed: descriptor ring). */
    MemorySegment descArea();

    /** The Driver Area (split: available ring; packed: driver event suppression). */
    MemorySegment driverArea();

    /** The Device Area (split: used ring; packed: device event suppression). */
    MemorySegment deviceArea();

    /** Device address of {@link #descArea()}. */
    long descAddress();

    /** Device address of {@link #driverArea()}. */
    long driverAreaAddress();

    /** Device address of {@link #deviceArea()}. */
    long deviceAreaAddress();

    /**
     * The vhost SET_VRING_BASE value that starts a device where this ring stands, valid while nothing is in flight (a
     * fresh or drained ring): split, the next available index; packed, the vhost layout of avail index | avail wrap
     * counter &lt;&lt; 15 in the low 16 bits and used index | used wrap counter &lt;&lt; 15 in the high 16 bits
     * ({@code 0x80008000} for a fresh ring: indexes 0, wrap counters 1, §2.8.1).
     */
    int vringBase();

    /** Descriptors not in flight. */
    int freeDescriptors();

    /** Buffers added and not yet reaped. */
    int inflight();

    /**
     * Adds a buffer of {@code count} elements ({@code addr}/{@code len}/{@code writable}, device-readable ones first)
     * with the caller's {@code token}, through an indirect table when Linux would ({@code virtqueue_use_indirect}:
     * INDIRECT_DESC negotiated, more than one element, a descriptor free). Split keeps it unpublished until
     * {@link #publish()}; packed makes it available at once. Returns its id (split: the head descriptor index; packed:
     * the buffer id), below {@link #size()}, or -1 if descriptors are short or the ring is broken.
     *
     * @throws IllegalArgumentException for {@code count < 1} (a caller's bug, never the device's)
     */
    default int add(long[] addr, int[] len, boolean[] writable, int count, long token) {
        return indirect() && count > 1 && freeDescriptors() > 0 ? addIndirect(addr, len, writable, count, token)
                : addDirect(addr, len, writable, count, token);
    }

    /** {@link #add} without an indirect table. */
    int addDirect(long[] addr, int[] len, boolean[] writable, int count, long token);

    /**
     * {@link #add} through the buffer's indirect table, even for one element or without INDIRECT_DESC (hostile tests).
     *
     * @throws IllegalArgumentException if {@code count} exceeds {@link #indirectEntries()}
     */
    int addIndirect(long[] addr, int[] len, boolean[] writable, int count, long token);

    /** Buffers (split: chains; packed: descriptors) added since the last {@link #kickPrepare()}. */
    int added();

    /** Makes added buffers visible to the device (split: a release store of avail->idx; packed: nothing to do). */
    void publish();

    /**
     * Linux {@code virtqueue_kick_prepare()}: after a full fence, whether the device asked to be notified of the
     * buffers added since the last call. Call it at least once per 65535 added buffers.
     */
    boolean kickPrepare();

    /** {@link #publish()}, then {@link #kickPrepare()} if anything was added; false if nothing was. */
    default boolean flush() {
        if (added() == 0) {
            return false;
        }
        publish();
        return kickPrepare();
    }

    /**
     * Linux {@code virtqueue_get_buf()}: takes the next used buffer, if any, into {@link #usedId()},
     * {@link #usedLength()}, {@link #usedToken()} and {@link #usedDescriptors()}, and frees its descriptors.
     */
    boolean reap();

    /** The id of the buffer the last {@link #reap()} took. */
    int usedId();

    /** Bytes the device wrote into it (never more than its device-writable bytes: a longer claim is a fault). */
    int usedLength();

    /** The token it was added with. */
    long usedToken();

    /** Ring descriptors it occupied (1 for an indirect buffer). */
    int usedDescriptors();

    /** Takes up to {@code max} used buffers: ids into {@code ids}, written lengths into {@code lens}. Returns how many. */
    default int poll(int[] ids, int[] lens, int max) {
        int n = 0;
        while (n < max && reap()) {
            ids[n] = usedId();
            lens[n] = usedLength();
            n++;
        }
        return n;
    }

    /** True if a used buffer is waiting (Linux {@code more_used}: no fence). */
    boolean hasUsed();

    /** Linux {@code virtqueue_disable_cb()}: asks the device for no used-buffer notifications (busy polling). */
    void disableCallbacks();

    /** Linux {@code virtqueue_enable_cb_prepare()}: asks for a notification at the next used buffer. */
    void enableCallbacksPrepare();

    /**
     * Linux {@code virtqueue_enable_cb()}: re-enables used-buffer notifications; false if used buffers are already
     * waiting (the caller must reap again instead of sleeping on the call eventfd).
     */
    default boolean enableCallbacks() {
        enableCallbacksPrepare();
        return !pollAfterEnable();
    }

    /** Linux {@code virtqueue_poll()}: a full fence, then {@link #hasUsed()}. */
    boolean pollAfterEnable();

    /** True once a used element made the ring unaccountable; cleared by {@link #reset()}. */
    boolean broken();

    /** Used elements that broke the rules since the last {@link #reset()}. */
    long deviceFaults();

    /** The first of {@link #deviceFaults()} in words, or null if there was none. Allocates: not for the hot path. */
    String firstDeviceFault();

    /**
     * Empties the ring (fresh indexes, nothing in flight, faults cleared; used-buffer notifications stay off if they
     * were) for a new start.
     */
    void reset();
}
