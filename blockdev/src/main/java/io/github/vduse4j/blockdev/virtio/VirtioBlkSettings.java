package io.github.vduse4j.blockdev.virtio;

/**
 * Shape of an exported virtio-blk device: what the driver sees besides the backend's size.
 *
 * @param queues      number of request queues (VIRTIO_BLK_F_MQ when more than 1)
 * @param queueSize   maximum entries per queue (power of two for split rings)
 * @param blockSize   logical block size, 512 or 4096 (VIRTIO_BLK_F_BLK_SIZE)
 * @param serial      GET_ID answer, at most 20 bytes of ASCII
 * @param packed      offer VIRTIO_F_RING_PACKED
 */
public record VirtioBlkSettings(int queues, int queueSize, int blockSize, String serial, boolean packed) {

    /** Largest DISCARD / WRITE_ZEROES range count per request the device accepts. */
    public static final int MAX_RANGES = 16;
    /** Largest DISCARD / WRITE_ZEROES range, in 512-byte sectors (1 GiB). */
    public static final int MAX_RANGE_SECTORS = 1 << 21;
    /** Largest queue size: virtio 1.2 §2.6 allows 32768. */
    public static final int MAX_QUEUE_SIZE = 32768;

    public VirtioBlkSettings {
        if (queues < 1 || queues > 64) {
            throw new IllegalArgumentException("queues must be 1..64, got " + queues);
        }
        if (queueSize < 4 || queueSize > MAX_QUEUE_SIZE || Integer.bitCount(queueSize) != 1) {
            throw new IllegalArgumentException("queue size must be a power of two in 4..32768, got " + queueSize);
        }
        if (blockSize != 512 && blockSize != 4096) {
            throw new IllegalArgumentException("block size must be 512 or 4096, got " + blockSize);
        }
        if (serial == null) {
            serial = "";
        }
        if (serial.length() > VirtioBlk.ID_BYTES || !serial.chars().allMatch(c -> c >= 0x20 && c < 0x7f)) {
            throw new IllegalArgumentException("serial must be at most 20 printable ASCII characters");
        }
    }

    /** seg_max: data buffers per request (the queue size less header and status, as QEMU does). */
    public int segMax() {
        return queueSize - 2;
    }
}
