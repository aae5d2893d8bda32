package io.github.vduse4j.blockdev.virtio;

import static io.github.vduse4j.blockdev.virtio.VirtioBlk.bit;

import io.github.vduse4j.bindings.uapi.virtio_blk_config;
import io.github.vduse4j.blockdev.backend.BlockBackend;
import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.VirtioDevice;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * The virtio-blk device model (virtio 1.2 §5.2) over a {@link BlockBackend}. Transport-neutral.
 *
 * <p>Cache mode (§5.2.4 {@code writeback}, §5.2.5, §5.2.6.2): the device starts in writeback mode (FLUSH makes
 * writes durable). Where the transport delivers config writes (vhost-user) and the backend can flush, it offers
 * VIRTIO_BLK_F_CONFIG_WCE and the driver may write {@code writeback} = 0: writethrough, every write, DISCARD and
 * WRITE_ZEROES is followed by a backend flush before its status is written (the queue handlers read the mode for each
 * completed write; no locks). The mode belongs to the device, not to a connection: it survives a frontend
 * reconnect (QEMU keeps its own copy of the field) and a device reset (§5.2.5 allows either mode after reset).
 */
public final class VirtioBlkDevice implements VirtioDevice {
    private final BlockBackend backend;
    private final VirtioBlkSettings settings;
    private volatile long capacityBytes;
    /** Driver-selected writethrough mode ({@code writeback} = 0); read by the poller threads. */
    private volatile boolean writeThrough;

    /** Per-queue counters; they outlive queue handlers (device resets, reconnects). */
    private volatile List<QueueStats> queueStats;

    public VirtioBlkDevice(BlockBackend backend, VirtioBlkSettings settings) {
        this.backend = backend;
        this.settings = settings;
        this.capacityBytes = checkedCapacity(backend.capacity());
        List<QueueStats> stats = new ArrayList<>();
        for (int i = 0; i < settings.queues(); i++) {
            stats.add(new QueueStats());
        }
        this.queueStats = List.copyOf(stats);
    }

    /** The counters of every queue, index = queue. */
    public List<QueueStats> queueStats() {
        return queueStats;
    }

    /**
     * Counts into {@code stats} (one per queue, e.g. the records of a stats file) from now on; call before the
     * device starts serving.
     */
    public void countInto(List<QueueStats> stats) {
        if (stats.size() != settings.queues()) {
            throw new IllegalArgumentException(stats.size() + " stats records for " + settings.queues() + " queues");
        }
        this.queueStats = List.copyOf(stats);
    }

    public BlockBackend backend() {
        return backend;
    }

    public VirtioBlkSettings settings() {
        return settings;
    }

    /** Current size in bytes, as the request path checks ranges against it. */
    public long capacityBytes() {
        return capacityBytes;
    }

    /**
     * Re-reads the backend's size (live resize). The transport then pushes {@link #configSpace()} to the
     * driver and raises a config interrupt.
     *
     * @return the new size in bytes
     */
    public long refreshCapacity() {
        capacityBytes = checkedCapacity(backend.refreshCapacity());
        return capacityBytes;
    }

    private long checkedCapacity(long bytes) {
        if (bytes <= 0 || bytes % settings.blockSize() != 0) {
            throw new IllegalArgumentException("size " + bytes + " is not a positive multiple of the block size "
                    + settings.blockSize() + "; pick a size that is");
        }
        return bytes;
    }

    @Override
    public int deviceId() {
        return VirtioBlk.DEVICE_ID;
    }

    @Override
    public long deviceFeatures() {
        long f = bit(VirtioBlk.F_VERSION_1) | bit(VirtioBlk.F_ACCESS_PLATFORM)
                | bit(VirtioBlk.F_SEG_MAX) | bit(VirtioBlk.F_BLK_SIZE) | bit(VirtioBlk.F_FLUSH)
                | bit(VirtioBlk.F_TOPOLOGY) | bit(VirtioBlk.F_EVENT_IDX) | bit(VirtioBlk.F_INDIRECT_DESC);
        if (settings.queues() > 1) {
            f |= bit(VirtioBlk.F_MQ);
        }
        if (backend.isReadOnly()) {
            f |= bit(VirtioBlk.F_RO);
        } else {
            if (backend.supportsDiscard()) {
                f |= bit(VirtioBlk.F_DISCARD);
            }
            if (backend.supportsWriteZeroes()) {
                f |= bit(VirtioBlk.F_WRITE_ZEROES);
            }
        }
        if (settings.packed()) {
            f |= bit(VirtioBlk.F_RING_PACKED);
        }
        return f;
    }

    /**
     * VIRTIO_BLK_F_CONFIG_WCE, offered only by transports that deliver config writes (vhost-user; never VDUSE), and
     * only for a writable device whose backend can flush (writethrough depends on the flush).
     */
    @Override
    public long configWriteFeatures() {
        return writeCacheConfigurable() ? bit(VirtioBlk.F_CONFIG_WCE) : 0;
    }

    private boolean writeCacheConfigurable() {
        return !backend.isReadOnly() && backend.supportsFlush();
    }

    @Override
    public boolean acceptsConfigWrites(long negotiatedFeatures) {
        return writeCacheConfigurable() && (negotiatedFeatures & bit(VirtioBlk.F_CONFIG_WCE)) != 0;
    }

    /**
     * §5.2.5: with VIRTIO_BLK_F_CONFIG_WCE the driver may write {@code writeback} (0 or 1). It is the only writable
     * field: a write that touches any other byte is refused whole, as QEMU's own back-ends do (qemu-storage-daemon's
     * vhost-user-blk export and libvhost-user's vhost-user-blk accept exactly 1 byte at offset 32), and QEMU's
     * vhost-user-blk frontend never sends anything else. Values other than 0 and 1 are refused (§5.2.4 defines only
     * those). Switching to writethrough flushes the backend before it is acknowledged, so writes completed earlier
     * in writeback mode are durable too once the driver believes the cache is off.
     */
    @Override
    public synchronized String writeConfig(int offset, byte[] data, long negotiatedFeatures) {
        if (!acceptsConfigWrites(negotiatedFeatures)) {
            return writeCacheConfigurable() ? "VIRTIO_BLK_F_CONFIG_WCE was not negotiated"
                    : "the cache mode is fixed (" + (backend.isReadOnly() ? "read-only device" : "backend cannot flush") + ")";
        }
        if (offset != VirtioBlk.CONFIG_WRITEBACK_OFFSET || data.length != 1) {
            return "bytes " + offset + ".." + (offset + data.length) + ": only writeback (1 byte at offset "
                    + VirtioBlk.CONFIG_WRITEBACK_OFFSET + ") is writable";
        }
        int value = data[0] & 0xff;
        if (value != VirtioBlk.WRITEBACK && value != VirtioBlk.WRITETHROUGH) {
            return "writeback value " + value + " (0 = writethrough, 1 = writeback)";
        }
        boolean through = value == VirtioBlk.WRITETHROUGH;
        if (through == writeThrough) {
            return null;
        }
        writeThrough = through; // first, so that writes completing from now on are flushed by their queues
        if (through) {
            try {
                backend.flush(); // then writes that completed in writeback mode
            } catch (RuntimeException e) {
                writeThrough = false;
                return "cannot switch to writethrough: flushing the backend failed: " + e.getMessage();
            }
        }
        return null;
    }

    /** True in writeback mode (the default), false when the driver selected writethrough. */
    public boolean writeback() {
        return !writeThrough;
    }

    /** The driver's writethrough mode, as the queue handlers read it for each completed write. */
    boolean writeThrough() {
        return writeThrough;
    }

    @Override
    public byte[] configSpace() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment c = arena.allocate(virtio_blk_config.layout());
            int sectorsPerBlock = settings.blockSize() / VirtioBlk.SECTOR_SIZE;
            virtio_blk_config.capacity(c, capacityBytes / VirtioBlk.SECTOR_SIZE);
            virtio_blk_config.seg_max(c, settings.segMax());
            virtio_blk_config.blk_size(c, settings.blockSize());
            virtio_blk_config.physical_block_exp(c, (byte) 0);
            virtio_blk_config.alignment_offset(c, (byte) 0);
            virtio_blk_config.min_io_size(c, (short) 1);
            virtio_blk_config.opt_io_size(c, 0);
            virtio_blk_config.num_queues(c, (short) settings.queues());
            virtio_blk_config.max_discard_sectors(c, VirtioBlkSettings.MAX_RANGE_SECTORS);
            virtio_blk_config.max_discard_seg(c, VirtioBlkSettings.MAX_RANGES);
            // §5.2.4: discard_sector_alignment in 512-byte sectors; the backend's real granularity if coarser.
            int discardSectors = Math.max(sectorsPerBlock, backend.discardGranularity() / VirtioBlk.SECTOR_SIZE);
            virtio_blk_config.discard_sector_alignment(c, discardSectors);
            virtio_blk_config.max_write_zeroes_sectors(c, VirtioBlkSettings.MAX_RANGE_SECTORS);
            virtio_blk_config.max_write_zeroes_seg(c, VirtioBlkSettings.MAX_RANGES);
            virtio_blk_config.write_zeroes_may_unmap(c, (byte) 1);
            // §5.2.4: meaningful to the driver only with VIRTIO_BLK_F_CONFIG_WCE; otherwise FLUSH implies writeback.
            virtio_blk_config.wce(c, (byte) (writeThrough ? VirtioBlk.WRITETHROUGH : VirtioBlk.WRITEBACK));
            return c.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    @Override
    public int queueCount() {
        return settings.queues();
    }

    @Override
    public int maxQueueSize() {
        return settings.queueSize();
    }

    @Override
    public QueueHandler openQueue(int index, long negotiatedFeatures, int queueSize) {
        return new VirtioBlkQueueHandler(this, backend.openQueue(index), negotiatedFeatures, queueSize,
                queueStats.get(index));
    }
}
