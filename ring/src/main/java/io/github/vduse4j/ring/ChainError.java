package io.github.vduse4j.ring;

/**
 * Why a driver's chain (or a whole queue) was rejected: the value of {@link DescriptorChain#error()} after
 * {@link Virtqueue#pop} returned {@link Virtqueue#CHAIN_ERROR} or {@link Virtqueue#NEEDS_RESET}.
 * Plain int codes so that the hot path never allocates; {@link #name(int)} for logs.
 */
public final class ChainError {
    private ChainError() {}

    public static final int NONE = 0;
    /** A chain visits more descriptors than its table holds: a loop (§2.7.5.2, §2.8.17 "loops are forbidden"). */
    public static final int LOOP = 1;
    /** More buffers than the {@link DescriptorChain} can hold (§2.7.5.3.1 / §2.8.17: chain longer than queue size). */
    public static final int TOO_LONG = 2;
    /** A buffer or an indirect table is not mapped, or not with the access its direction needs (§2.7.5.1). */
    public static final int OUT_OF_MEMORY_RANGE = 3;
    /** {@code addr + len} passes 2^64. */
    public static final int ADDRESS_OVERFLOW = 4;
    /** An indirect table holds an INDIRECT descriptor (§2.7.5.3.1, §2.8.19). */
    public static final int NESTED_INDIRECT = 5;
    /** An indirect table's length is 0, not a multiple of 16, or holds more entries than the queue size (§2.7.5.3). */
    public static final int BAD_INDIRECT_SIZE = 6;
    /** INDIRECT set but VIRTIO_F_INDIRECT_DESC was not negotiated (§2.7.5.3.1, §2.8.19). */
    public static final int INDIRECT_NOT_NEGOTIATED = 7;
    /** INDIRECT and NEXT both set in one descriptor (§2.7.5.3.1, §2.8.19). */
    public static final int INDIRECT_WITH_NEXT = 8;
    /** Packed: an INDIRECT descriptor inside a list linked by NEXT (§2.8.19). */
    public static final int INDIRECT_IN_CHAIN = 9;
    /** A device-readable buffer after a device-writable one (§2.7.4.2 / §2.8.17). */
    public static final int READABLE_AFTER_WRITABLE = 10;
    /** A head or {@code next} index not below the table size (§2.7.5, §2.7.6). */
    public static final int BAD_INDEX = 11;
    /** An indirect table that is mapped but not contiguous in one mapping (unsupported, reported as such). */
    public static final int INDIRECT_TABLE_NOT_CONTIGUOUS = 12;
    // ---- queue-level (pop returns NEEDS_RESET) ----
    /** Split: avail idx moved more than queue size past the last seen entry (§2.7.6: idx only increases by added entries),
     *  or a chain is made available while queue size chains are already in flight (a head offered twice). */
    public static final int AVAIL_INDEX_JUMP = 13;
    /** Restored indexes are inconsistent: used index more than queue size behind avail, or out of range; packed: a
     *  list made available in ring slots that lists still in flight occupy (more than size descriptors in flight). */
    public static final int USED_INDEX_JUMP = 14;
    /** Packed: a descriptor in a chain after the first is not marked available for this lap (§2.8.6 note). */
    public static final int INCONSISTENT_FLAGS = 15;
    /** Packed: a buffer id that is already in flight (§2.8.21.1: "the next free buffer id"). */
    public static final int DUPLICATE_ID = 16;
    /** Packed: a NEXT-linked list that does not end within queue size descriptors (§2.8.17). */
    public static final int UNTERMINATED_CHAIN = 17;
    /** The queue was already broken by an earlier NEEDS_RESET; {@link Virtqueue#restore} clears it. */
    public static final int QUEUE_BROKEN = 18;

    private static final String[] NAMES = {
        "NONE", "LOOP", "TOO_LONG", "OUT_OF_MEMORY_RANGE", "ADDRESS_OVERFLOW", "NESTED_INDIRECT", "BAD_INDIRECT_SIZE",
        "INDIRECT_NOT_NEGOTIATED", "INDIRECT_WITH_NEXT", "INDIRECT_IN_CHAIN", "READABLE_AFTER_WRITABLE", "BAD_INDEX",
        "INDIRECT_TABLE_NOT_CONTIGUOUS", "AVAIL_INDEX_JUMP", "USED_INDEX_JUMP", "INCONSISTENT_FLAGS", "DUPLICATE_ID",
        "UNTERMINATED_CHAIN", "QUEUE_BROKEN",
    };

    /** The constant's name, or {@code "UNKNOWN(n)"}. */
    public static String name(int code) {
        return code >= 0 && code < NAMES.length ? NAMES[code] : "UNKNOWN(" + code + ")";
    }
}
