package io.github.vduse4j.jmh.ring;

import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;

/**
 * One queue for the ring benchmarks: the test kit's Linux-like driver and the device-side queue over the same native
 * memory, with a virtio-blk shaped chain (16-byte header, 4 KiB data, 1-byte status; all direct descriptors).
 * EVENT_IDX is negotiated (as Linux and QEMU do); indirect descriptors are not used.
 */
final class RingFixture implements AutoCloseable {
    static final int QUEUE_SIZE = 256;

    final VirtqueueDriver driver;
    final Virtqueue queue;
    final DescriptorChain chain;
    final long header, data, status;

    RingFixture(String ring) {
        driver = DriverConfig.of(QUEUE_SIZE).eventIdx(true).indirect(false).dataRegions(1, 1 << 20)
                .build(ring.equals("packed"));
        queue = driver.newDeviceQueue();
        chain = DescriptorChain.forQueue(queue);
        header = driver.memory().allocate(16, 16);
        data = driver.memory().allocate(4096, 4096);
        status = driver.memory().allocate(1, 1);
        // busy polling on both sides: the device does not want kicks, the driver reaps without interrupts
        queue.disableNotifications();
        driver.disableCallbacks();
    }

    /** Adds one header + 4 KiB + status chain; false if the ring is full. */
    boolean add(long token) {
        return driver.chain().readable(header, 16).readable(data, 4096).writable(status, 1).add(token) >= 0;
    }

    @Override
    public void close() { driver.close(); }
}
