package io.github.vduse4j.ring;

/**
 * The on-memory ABI of virtio 1.x rings: flag bits, feature bits, field offsets and part sizes.
 *
 * <p>All values are from the virtio 1.2 specification (§2.7 split virtqueues, §2.8 packed virtqueues,
 * §6 reserved feature bits). Every ring field is little-endian (§2.7, §2.8: {@code le16/le32/le64}).
 * The kernel headers ({@code linux/virtio_ring.h}) are checked separately by the bindings module.
 */
public final class VirtioRing {
    private VirtioRing() {}

    // ---- descriptor flags (§2.7.5 split, §2.8.6/§2.8.7 packed) ----
    /** §2.7.5 / §2.8.6: the buffer continues in the next descriptor. */
    /**
     * Entries an indirect table may have beyond the queue size. §2.7.5.3.1 bounds chains by the queue size, but
     * Linux builds indirect tables of seg_max + 2 entries whatever the ring size (virtqueue_add_split bounds only
     * direct chains by it), and QEMU (VIRTQUEUE_MAX_SIZE) and vhost (UIO_MAXIOV) accept 1024: so do we, or a
     * frontend with a smaller ring than our seg_max assumes would see its large requests refused.
     */
    public static final int MAX_INDIRECT_ENTRIES = 1024;

    /** Largest indirect table accepted on a queue of {@code queueSize} entries. */
    public static int maxIndirectEntries(int queueSize) {
        return Math.max(queueSize, MAX_INDIRECT_ENTRIES);
    }

    public static final int DESC_F_NEXT = 1;
    /** §2.7.5 / §2.8.3: device-writable buffer (otherwise device-readable). */
    public static final int DESC_F_WRITE = 2;
    /** §2.7.5.3 / §2.8.7: the buffer holds a table of indirect descriptors. */
    public static final int DESC_F_INDIRECT = 4;
    /** §2.8.1: packed "available" flag bit. */
    public static final int PACKED_DESC_F_AVAIL = 1 << 7;
    /** §2.8.1: packed "used" flag bit. */
    public static final int PACKED_DESC_F_USED = 1 << 15;

    // ---- split notification suppression flags ----
    /** §2.7.6: avail.flags bit, driver does not want used-buffer notifications (no EVENT_IDX). */
    public static final int AVAIL_F_NO_INTERRUPT = 1;
    /** §2.7.8: used.flags bit, device does not want available-buffer notifications (no EVENT_IDX). */
    public static final int USED_F_NO_NOTIFY = 1;

    // ---- packed event suppression flags (§2.8.10, §2.8.14) ----
    /** §2.8.10: RING_EVENT_FLAGS_ENABLE. */
    public static final int EVENT_FLAGS_ENABLE = 0;
    /** §2.8.10: RING_EVENT_FLAGS_DISABLE. */
    public static final int EVENT_FLAGS_DISABLE = 1;
    /** §2.8.10: RING_EVENT_FLAGS_DESC, only valid with VIRTIO_F_EVENT_IDX. */
    public static final int EVENT_FLAGS_DESC = 2;
    /** §2.8.14: bit 15 of {@code off_wrap} is the wrap counter. */
    public static final int EVENT_WRAP_SHIFT = 15;

    // ---- feature bits (§6 Reserved Feature Bits) ----
    public static final int F_INDIRECT_DESC = 28;
    public static final int F_EVENT_IDX = 29;
    public static final int F_VERSION_1 = 32;
    public static final int F_ACCESS_PLATFORM = 33;
    public static final int F_RING_PACKED = 34;
    public static final int F_IN_ORDER = 35;

    // ---- sizes ----
    /** §2.7 / §2.8: queues have at most 2^15 entries. */
    public static final int MAX_QUEUE_SIZE = 32768;
    /** Size of one descriptor, split ({@code virtq_desc}) and packed ({@code pvirtq_desc}) alike. */
    public static final int DESC_SIZE = 16;

    // ---- split layout (§2.7.5, §2.7.6, §2.7.8) ----
    public static final long DESC_ADDR = 0, DESC_LEN = 8, DESC_FLAGS = 12, DESC_NEXT = 14;
    /** Packed: buffer id sits where split has flags; flags where split has next (§2.8.13). */
    public static final long PACKED_DESC_ID = 12, PACKED_DESC_FLAGS = 14;
    public static final long AVAIL_FLAGS = 0, AVAIL_IDX = 2, AVAIL_RING = 4;
    public static final long USED_FLAGS = 0, USED_IDX = 2, USED_RING = 4;
    public static final int USED_ELEM_SIZE = 8;

    /** §2.7 alignment table: descriptor table 16, available ring 2, used ring 4; packed: 16, 4, 4 (§2.8.10.1). */
    public static final int SPLIT_DESC_ALIGN = 16, SPLIT_AVAIL_ALIGN = 2, SPLIT_USED_ALIGN = 4;
    public static final int PACKED_DESC_ALIGN = 16, PACKED_EVENT_ALIGN = 4;

    /** Bytes of a descriptor table or packed descriptor ring: 16 * size. */
    public static long descTableBytes(int size) { return (long) DESC_SIZE * size; }
    /** §2.7: available ring bytes: 6 + 2 * size (flags, idx, ring[], used_event). */
    public static long availRingBytes(int size) { return 6L + 2L * size; }
    /** §2.7: used ring bytes: 6 + 8 * size (flags, idx, ring[], avail_event). */
    public static long usedRingBytes(int size) { return 6L + 8L * size; }
    /** Offset of {@code used_event} in the available ring (§2.7.6). */
    public static long usedEventOffset(int size) { return AVAIL_RING + 2L * size; }
    /** Offset of {@code avail_event} in the used ring (§2.7.8). */
    public static long availEventOffset(int size) { return USED_RING + (long) USED_ELEM_SIZE * size; }
    /** §2.8.14: packed event suppression structure bytes (le16 off_wrap, le16 flags). */
    public static final long EVENT_SUPPRESSION_BYTES = 4;
    public static final long EVENT_OFF_WRAP = 0, EVENT_FLAGS = 2;
}
