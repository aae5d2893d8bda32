package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.VirtioDevice;
import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A test device whose queues copy each chain's readable bytes into its writable bytes. Optionally one config byte
 * ({@link #WRITABLE_OFFSET}) is writable once the driver negotiated {@link #WRITABLE_FEATURE} (as virtio-blk's
 * {@code writeback} with CONFIG_WCE).
 */
final class EchoDevice implements VirtioDevice {
    // VERSION_1, ACCESS_PLATFORM, RING_PACKED, INDIRECT_DESC
    static final long FEATURES = (1L << 32) | (1L << 33) | (1L << 34) | (1L << 28);
    static final int WRITABLE_FEATURE = 11;
    static final int WRITABLE_OFFSET = 32;
    final byte[] config = new byte[60];
    final boolean writable;
    volatile int writesApplied;

    EchoDevice() {
        this(false);
    }

    EchoDevice(boolean writable) {
        this.writable = writable;
        for (int i = 0; i < config.length; i++) {
            config[i] = (byte) (i + 1);
        }
    }

    @Override public int deviceId() { return 2; }
    @Override public long deviceFeatures() { return FEATURES; }
    @Override public synchronized byte[] configSpace() { return config.clone(); }

    @Override
    public long configWriteFeatures() {
        return writable ? 1L << WRITABLE_FEATURE : 0;
    }

    @Override
    public boolean acceptsConfigWrites(long negotiatedFeatures) {
        return writable && (negotiatedFeatures & (1L << WRITABLE_FEATURE)) != 0;
    }

    @Override
    public synchronized String writeConfig(int offset, byte[] data, long negotiatedFeatures) {
        if (!acceptsConfigWrites(negotiatedFeatures)) {
            return "not negotiated";
        }
        if (offset != WRITABLE_OFFSET || data.length != 1) {
            return "read-only field";
        }
        config[offset] = data[0];
        writesApplied++;
        return null;
    }
    @Override public int queueCount() { return 2; }
    @Override public int maxQueueSize() { return 256; }

    @Override
    public QueueHandler openQueue(int index, long negotiatedFeatures, int queueSize) {
        return new QueueHandler() {
            final DescriptorChain chain = new DescriptorChain(2 * queueSize);
            final MemorySegment scratch = Arena.ofAuto().allocate(1 << 16);
            final QueueStats stats = new QueueStats();

            @Override
            public int process(Virtqueue q, int budget) {
                int n = 0;
                while (n < budget) {
                    int r = q.pop(chain);
                    if (r == Virtqueue.EMPTY || r == Virtqueue.NEEDS_RESET) {
                        break;
                    }
                    n++;
                    stats.popped();
                    stats.completed(-1, -1, 0, 0);
                    if (r == Virtqueue.CHAIN_ERROR) {
                        stats.chainError();
                        q.complete(chain.id(), 0);
                        continue;
                    }
                    long len = Math.min(chain.readableLength(), scratch.byteSize());
                    chain.readTo(0, scratch, 0, len);
                    long w = chain.writeFrom(scratch, 0, 0, len);
                    q.complete(chain.id(), (int) w);
                }
                return n;
            }

            @Override public int inflight() { return 0; }
            @Override public QueueStats stats() { return stats; }
            @Override public void close() { }
        };
    }
}
