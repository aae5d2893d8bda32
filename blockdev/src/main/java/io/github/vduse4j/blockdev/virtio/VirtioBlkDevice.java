package io.github.vduse4j.blockdev.virtio;

import static io.github.vduse4j.blockdev.virtio.VirtioBlk.bit;

import io.github.vduse4j.bindings.uapi.virtio_blk_config;
import io.github.vduse4j.blockdev.backend.BlockBackend;
import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.engine.VirtioDevice;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** The virtio-blk device model (virtio 1.2 §5.2) over a {@link BlockBackend}. Transport-neutral. */
public final class VirtioBlkDevice implements VirtioDevice {
    private final BlockBackend backend;
    private final VirtioBlkSettings settings;
    private volatile long capacityBytes;

    public VirtioBlkDevice(BlockBackend backend, VirtioBlkSettings settings) {
        this.backend = backend;
        this.settings = settings;
        this.capacityBytes = checkedCapacity(backend.capacity());
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
            virtio_blk_config.discard_sector_alignment(c, sectorsPerBlock);
            virtio_blk_config.max_write_zeroes_sectors(c, VirtioBlkSettings.MAX_RANGE_SECTORS);
            virtio_blk_config.max_write_zeroes_seg(c, VirtioBlkSettings.MAX_RANGES);
            virtio_blk_config.write_zeroes_may_unmap(c, (byte) 1);
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
        return new VirtioBlkQueueHandler(this, backend.openQueue(index), negotiatedFeatures, queueSize);
    }
}
