package io.github.vduse4j.blockdev.virtio;

/**
 * virtio-blk protocol numbers (virtio 1.2 §5.2), as compile-time constants for the request path.
 * {@code VirtioBlkConstantsTest} checks each against the kernel uapi headers (through the generated bindings).
 */
public final class VirtioBlk {
    private VirtioBlk() {}

    /** Virtio device ID of a block device (§5). */
    public static final int DEVICE_ID = 2;

    // Feature bits (§5.2.3, §6).
    public static final int F_SIZE_MAX = 1;
    public static final int F_SEG_MAX = 2;
    public static final int F_RO = 5;
    public static final int F_BLK_SIZE = 6;
    public static final int F_FLUSH = 9;
    public static final int F_TOPOLOGY = 10;
    /** The driver may switch the cache mode through the {@code writeback} config field (§5.2.4, §5.2.5). */
    public static final int F_CONFIG_WCE = 11;
    public static final int F_MQ = 12;
    public static final int F_DISCARD = 13;
    public static final int F_WRITE_ZEROES = 14;
    public static final int F_INDIRECT_DESC = 28;
    public static final int F_EVENT_IDX = 29;
    public static final int F_VERSION_1 = 32;
    public static final int F_ACCESS_PLATFORM = 33;
    public static final int F_RING_PACKED = 34;

    // Request types (§5.2.6).
    public static final int T_IN = 0;
    public static final int T_OUT = 1;
    public static final int T_FLUSH = 4;
    public static final int T_GET_ID = 8;
    public static final int T_DISCARD = 11;
    public static final int T_WRITE_ZEROES = 13;

    // Status values (§5.2.6).
    public static final int S_OK = 0;
    public static final int S_IOERR = 1;
    public static final int S_UNSUPP = 2;

    /** Size of struct virtio_blk_outhdr: le32 type, le32 reserved/ioprio, le64 sector (§5.2.6). */
    public static final int OUTHDR_SIZE = 16;
    /** Size of struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags (§5.2.6). */
    public static final int RANGE_SIZE = 16;
    /** VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP (§5.2.6). */
    public static final int WRITE_ZEROES_FLAG_UNMAP = 1;
    /** GET_ID answers with at most this many bytes of serial (VIRTIO_BLK_ID_BYTES). */
    public static final int ID_BYTES = 20;
    /** Byte offset of the u8 {@code writeback} field in struct virtio_blk_config (§5.2.4; Linux calls it {@code wce}). */
    public static final int CONFIG_WRITEBACK_OFFSET = 32;
    /** {@code writeback} values (§5.2.4): 0 = writethrough, 1 = writeback. */
    public static final int WRITETHROUGH = 0;
    public static final int WRITEBACK = 1;
    /** Sector unit of request headers and the capacity field, independent of blk_size (§5.2.4). */
    public static final int SECTOR_SIZE = 512;

    public static long bit(int feature) {
        return 1L << feature;
    }
}
