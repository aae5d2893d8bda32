package io.github.vduse4j.bindings;

/**
 * The vhost and vhost-vdpa ioctl numbers of {@code linux/vhost.h} (Linux 6.1) that a vhost-vdpa frontend uses, and
 * the two vhost-vdpa argument structs the generated uapi bindings do not hold ({@code struct vhost_vdpa_config},
 * {@code struct vhost_vdpa_iova_range}).
 *
 * <p>Hand-encoded with {@link Ioctl}'s {@code _IO/_IOR/_IOW/_IOWR} helpers, as {@code BLKGETSIZE64} is, because the
 * jextract that regenerates {@code io.github.vduse4j.bindings.uapi} (scripts/regen-bindings) was not available when
 * these were added; LibcConstantsTest checks every value here against the C header with gcc. When the uapi set is
 * next regenerated with jextract, these can move to {@code scripts/bindings/uapi.args}.
 */
public final class VhostIoctl {
    private VhostIoctl() {}

    /** {@code VHOST_VIRTIO}: the ioctl type byte of every vhost request. */
    public static final int VHOST_VIRTIO = 0xAF;

    private static final int U64 = 8, U32 = 4, U16 = 2, U8 = 1, INT = 4;
    /** sizeof(struct vhost_vring_state) = {index, num}. */
    private static final int VRING_STATE = 8;
    /** sizeof(struct vhost_vring_file) = {index, fd}. */
    private static final int VRING_FILE = 8;
    /** sizeof(struct vhost_vring_addr) = {index, flags, desc, used, avail, log}. */
    private static final int VRING_ADDR = 40;
    /** sizeof(struct vhost_vdpa_config) (its buffer is a flexible array). */
    private static final int CONFIG_HEADER_BYTES = 8;
    /** sizeof(struct vhost_vdpa_iova_range). */
    private static final int IOVA_RANGE_BYTES = 16;

    public static final long VHOST_GET_FEATURES = Ioctl.ior(VHOST_VIRTIO, 0x00, U64);
    public static final long VHOST_SET_FEATURES = Ioctl.iow(VHOST_VIRTIO, 0x00, U64);
    public static final long VHOST_SET_OWNER = Ioctl.io(VHOST_VIRTIO, 0x01);
    public static final long VHOST_RESET_OWNER = Ioctl.io(VHOST_VIRTIO, 0x02);
    public static final long VHOST_SET_VRING_NUM = Ioctl.iow(VHOST_VIRTIO, 0x10, VRING_STATE);
    public static final long VHOST_SET_VRING_ADDR = Ioctl.iow(VHOST_VIRTIO, 0x11, VRING_ADDR);
    public static final long VHOST_SET_VRING_BASE = Ioctl.iow(VHOST_VIRTIO, 0x12, VRING_STATE);
    public static final long VHOST_GET_VRING_BASE = Ioctl.iowr(VHOST_VIRTIO, 0x12, VRING_STATE);
    public static final long VHOST_SET_VRING_KICK = Ioctl.iow(VHOST_VIRTIO, 0x20, VRING_FILE);
    public static final long VHOST_SET_VRING_CALL = Ioctl.iow(VHOST_VIRTIO, 0x21, VRING_FILE);
    public static final long VHOST_SET_BACKEND_FEATURES = Ioctl.iow(VHOST_VIRTIO, 0x25, U64);
    public static final long VHOST_GET_BACKEND_FEATURES = Ioctl.ior(VHOST_VIRTIO, 0x26, U64);
    public static final long VHOST_VDPA_GET_DEVICE_ID = Ioctl.ior(VHOST_VIRTIO, 0x70, U32);
    public static final long VHOST_VDPA_GET_STATUS = Ioctl.ior(VHOST_VIRTIO, 0x71, U8);
    public static final long VHOST_VDPA_SET_STATUS = Ioctl.iow(VHOST_VIRTIO, 0x72, U8);
    /** Argument: a {@code struct vhost_vdpa_config} header ({@link #VDPA_CONFIG_HEADER} bytes) and the buffer. */
    public static final long VHOST_VDPA_GET_CONFIG = Ioctl.ior(VHOST_VIRTIO, 0x73, CONFIG_HEADER_BYTES);
    public static final long VHOST_VDPA_SET_CONFIG = Ioctl.iow(VHOST_VIRTIO, 0x74, CONFIG_HEADER_BYTES);
    public static final long VHOST_VDPA_SET_VRING_ENABLE = Ioctl.iow(VHOST_VIRTIO, 0x75, VRING_STATE);
    public static final long VHOST_VDPA_GET_VRING_NUM = Ioctl.ior(VHOST_VIRTIO, 0x76, U16);
    public static final long VHOST_VDPA_GET_IOVA_RANGE = Ioctl.ior(VHOST_VIRTIO, 0x78, IOVA_RANGE_BYTES);
    public static final long VHOST_VDPA_GET_CONFIG_SIZE = Ioctl.ior(VHOST_VIRTIO, 0x79, U32);
    public static final long VHOST_VDPA_GET_VQS_COUNT = Ioctl.ior(VHOST_VIRTIO, 0x80, U32);
    public static final long VHOST_VDPA_SET_CONFIG_CALL = Ioctl.iow(VHOST_VIRTIO, 0x77, INT);

    /** {@code struct vhost_vdpa_config { __u32 off; __u32 len; __u8 buf[]; }}: offsets and header size. */
    public static final long VDPA_CONFIG_OFF = 0;
    public static final long VDPA_CONFIG_LEN = 4;
    public static final long VDPA_CONFIG_HEADER = 8;
    /** {@code struct vhost_vdpa_iova_range { __u64 first; __u64 last; }}. */
    public static final long VDPA_IOVA_RANGE_FIRST = 0;
    public static final long VDPA_IOVA_RANGE_LAST = 8;
    public static final long VDPA_IOVA_RANGE_SIZE = 16;

}
