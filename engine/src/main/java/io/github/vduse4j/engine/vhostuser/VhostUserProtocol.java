package io.github.vduse4j.engine.vhostuser;

/**
 * Numbers of the vhost-user protocol (QEMU {@code docs/interop/vhost-user.rst}): request ids, header flags,
 * feature bits and payload layouts. All fields are native (little-endian on x86_64) byte order.
 */
public final class VhostUserProtocol {
    private VhostUserProtocol() {}

    // ---- header (spec "Header"): request u32, flags u32, size u32 ----
    public static final int HEADER_SIZE = 12;
    /** Lower 2 bits of flags: the protocol version, currently 1. */
    public static final int VERSION = 0x1;
    public static final int VERSION_MASK = 0x3;
    /** Bit 2: set on every reply from the back-end. */
    public static final int FLAG_REPLY = 0x4;
    /** Bit 3: the sender wants a REPLY_ACK. */
    public static final int FLAG_NEED_REPLY = 0x8;
    /**
     * Largest payload accepted: QEMU's {@code VhostUserPayload} union; the biggest members are the memory table
     * (8 + 8 * 32 = 264) and the config space (12 + 256 = 268).
     */
    public static final int MAX_PAYLOAD = 12 + 256;
    /** QEMU sends at most 8 fds per message (VHOST_MEMORY_BASELINE_NREGIONS). */
    public static final int MAX_FDS = 8;

    // ---- front-end requests (spec "Front-end message types") ----
    public static final int GET_FEATURES = 1;
    public static final int SET_FEATURES = 2;
    public static final int SET_OWNER = 3;
    public static final int RESET_OWNER = 4;
    public static final int SET_MEM_TABLE = 5;
    public static final int SET_LOG_BASE = 6;
    public static final int SET_LOG_FD = 7;
    public static final int SET_VRING_NUM = 8;
    public static final int SET_VRING_ADDR = 9;
    public static final int SET_VRING_BASE = 10;
    public static final int GET_VRING_BASE = 11;
    public static final int SET_VRING_KICK = 12;
    public static final int SET_VRING_CALL = 13;
    public static final int SET_VRING_ERR = 14;
    public static final int GET_PROTOCOL_FEATURES = 15;
    public static final int SET_PROTOCOL_FEATURES = 16;
    public static final int GET_QUEUE_NUM = 17;
    public static final int SET_VRING_ENABLE = 18;
    public static final int SEND_RARP = 19;
    public static final int NET_SET_MTU = 20;
    public static final int SET_BACKEND_REQ_FD = 21;
    public static final int IOTLB_MSG = 22;
    public static final int SET_VRING_ENDIAN = 23;
    public static final int GET_CONFIG = 24;
    public static final int SET_CONFIG = 25;
    public static final int GET_INFLIGHT_FD = 31;
    public static final int SET_INFLIGHT_FD = 32;
    public static final int RESET_DEVICE = 34;
    public static final int VRING_KICK = 35;
    public static final int GET_MAX_MEM_SLOTS = 36;
    public static final int ADD_MEM_REG = 37;
    public static final int REM_MEM_REG = 38;
    public static final int SET_STATUS = 39;
    public static final int GET_STATUS = 40;

    // ---- back-end requests (spec "Back-end message types") ----
    public static final int BACKEND_IOTLB_MSG = 1;
    public static final int BACKEND_CONFIG_CHANGE_MSG = 2;

    // ---- virtio feature bits with a vhost-user meaning ----
    /** Spec "Communication": the reused UNUSED virtio bit 30 announces protocol features. */
    public static final int F_PROTOCOL_FEATURES = 30;
    /** virtio 1.2 §6: VIRTIO_F_ACCESS_PLATFORM (IOMMU_PLATFORM); ring and buffer addresses become IOVAs. */
    public static final int F_ACCESS_PLATFORM = 33;
    public static final int F_RING_PACKED = 34;

    // ---- protocol feature bits (spec "Protocol features") ----
    public static final int PF_MQ = 0;
    public static final int PF_LOG_SHMFD = 1;
    public static final int PF_REPLY_ACK = 3;
    public static final int PF_BACKEND_REQ = 5;
    public static final int PF_CONFIG = 9;
    public static final int PF_BACKEND_SEND_FD = 10;
    public static final int PF_INFLIGHT_SHMFD = 12;
    public static final int PF_RESET_DEVICE = 13;
    public static final int PF_INBAND_NOTIFICATIONS = 14;
    public static final int PF_CONFIGURE_MEM_SLOTS = 15;

    // ---- SET_VRING_KICK/CALL/ERR u64 payload ----
    /** Bits 0-7: the vring index. */
    public static final long VRING_IDX_MASK = 0xff;
    /** Bit 8: no fd in the ancillary data (polling). */
    public static final long VRING_NOFD_MASK = 0x100;

    // ---- payload layouts ----
    /** vring state: index u32, num u32. */
    public static final int STATE_SIZE = 8;
    /** vring address: index u32, flags u32, desc u64, used u64, avail u64, log u64. */
    public static final int ADDR_SIZE = 40;
    public static final int ADDR_INDEX = 0, ADDR_FLAGS = 4, ADDR_DESC = 8, ADDR_USED = 16, ADDR_AVAIL = 24, ADDR_LOG = 32;
    /** Memory regions description: nregions u32, padding u32, then regions of 32 bytes. */
    public static final int MEMORY_HEADER_SIZE = 8;
    public static final int REGION_SIZE = 32;
    public static final int REGION_GPA = 0, REGION_SIZE_FIELD = 8, REGION_UADDR = 16, REGION_MMAP_OFFSET = 24;
    /** SET_MEM_TABLE carries at most 8 regions (VHOST_MEMORY_BASELINE_NREGIONS). */
    public static final int MAX_TABLE_REGIONS = 8;
    /** Single memory region description (ADD/REM_MEM_REG): padding u64 + one region. */
    public static final int SINGLE_REGION_SIZE = 8 + REGION_SIZE;
    /** struct vhost_iotlb_msg: iova u64, size u64, uaddr u64, perm u8, type u8, padding to 32. */
    public static final int IOTLB_SIZE = 32;
    public static final int IOTLB_IOVA = 0, IOTLB_SIZE_FIELD = 8, IOTLB_UADDR = 16, IOTLB_PERM = 24, IOTLB_TYPE = 25;
    public static final int IOTLB_MISS = 1, IOTLB_UPDATE = 2, IOTLB_INVALIDATE = 3, IOTLB_ACCESS_FAIL = 4;
    public static final int IOTLB_BATCH_BEGIN = 5, IOTLB_BATCH_END = 6;
    /** IOTLB permission bits (VHOST_ACCESS_RO/WO): read / write by the device. */
    public static final int ACCESS_RO = 1, ACCESS_WO = 2;
    /** Config space header: offset u32, size u32, flags u32, then the bytes. */
    public static final int CONFIG_HEADER_SIZE = 12;
    public static final int CONFIG_OFFSET = 0, CONFIG_SIZE_FIELD = 4, CONFIG_FLAGS = 8;
    public static final int MAX_CONFIG_SIZE = 256;
    /** SET_CONFIG flags: the driver wrote the config space (VHOST_SET_CONFIG_TYPE_FRONTEND, formerly MASTER). */
    public static final int CONFIG_TYPE_FRONTEND = 0;
    /** SET_CONFIG flags: the frontend restores config state during live migration (VHOST_SET_CONFIG_TYPE_MIGRATION). */
    public static final int CONFIG_TYPE_MIGRATION = 1;
    /** Inflight description: mmap_size u64, mmap_offset u64, num_queues u16, queue_size u16 (+4 padding). */
    public static final int INFLIGHT_SIZE = 24;
    public static final int U64_SIZE = 8;

    /** A short name for logs ("SET_MEM_TABLE"), or the number. */
    public static String requestName(int request) {
        return switch (request) {
            case GET_FEATURES -> "GET_FEATURES";
            case SET_FEATURES -> "SET_FEATURES";
            case SET_OWNER -> "SET_OWNER";
            case RESET_OWNER -> "RESET_OWNER";
            case SET_MEM_TABLE -> "SET_MEM_TABLE";
            case SET_LOG_BASE -> "SET_LOG_BASE";
            case SET_LOG_FD -> "SET_LOG_FD";
            case SET_VRING_NUM -> "SET_VRING_NUM";
            case SET_VRING_ADDR -> "SET_VRING_ADDR";
            case SET_VRING_BASE -> "SET_VRING_BASE";
            case GET_VRING_BASE -> "GET_VRING_BASE";
            case SET_VRING_KICK -> "SET_VRING_KICK";
            case SET_VRING_CALL -> "SET_VRING_CALL";
            case SET_VRING_ERR -> "SET_VRING_ERR";
            case GET_PROTOCOL_FEATURES -> "GET_PROTOCOL_FEATURES";
            case SET_PROTOCOL_FEATURES -> "SET_PROTOCOL_FEATURES";
            case GET_QUEUE_NUM -> "GET_QUEUE_NUM";
            case SET_VRING_ENABLE -> "SET_VRING_ENABLE";
            case SET_BACKEND_REQ_FD -> "SET_BACKEND_REQ_FD";
            case IOTLB_MSG -> "IOTLB_MSG";
            case GET_CONFIG -> "GET_CONFIG";
            case SET_CONFIG -> "SET_CONFIG";
            case GET_INFLIGHT_FD -> "GET_INFLIGHT_FD";
            case SET_INFLIGHT_FD -> "SET_INFLIGHT_FD";
            case RESET_DEVICE -> "RESET_DEVICE";
            case GET_MAX_MEM_SLOTS -> "GET_MAX_MEM_SLOTS";
            case ADD_MEM_REG -> "ADD_MEM_REG";
            case REM_MEM_REG -> "REM_MEM_REG";
            default -> "request " + request;
        };
    }

    static long bit(int n) {
        return 1L << n;
    }
}
