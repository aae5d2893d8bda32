package io.github.vduse4j.ring.testkit;

import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.Virtqueue;

/**
 * The driver side of one virtqueue, behaving like the Linux virtio driver ({@code drivers/virtio/virtio_ring.c}):
 * adds chains, decides kicks from the device's suppression state, reaps used entries, and enables/disables used-buffer
 * notifications exactly as Linux does (including its barriers). Single-threaded: one driver thread.
 * {@link #newDeviceQueue()} builds the device side over the same memory.
 */
public interface VirtqueueDriver extends AutoCloseable {
    int size();
    DriverMemory memory();
    boolean eventIdx();
    boolean indirect();

    /** The device-side queue over this driver's rings, translating through {@code memory().table()}. */
    Virtqueue newDeviceQueue();

    /** The device-side queue over this driver's rings, translating through {@code memory}. */
    Virtqueue newDeviceQueue(GuestMemory memory);

    /** Starts describing a chain (the builder is reused: one chain at a time). */
    ChainBuilder chain();

    /** Linux {@code virtqueue_kick_prepare()}: true if the device must be notified; counted in {@link #kicks()}. */
    boolean kickPrepare();

    long kicks();

    /** Linux {@code virtqueue_get_buf()}: the next used element, or false if none. Device misbehaviour (bad id, a
     *  used index jump) throws AssertionError. */
    boolean reap(UsedBuffer out);

    /** Linux {@code virtqueue_disable_cb()}. */
    void disableCallbacks();

    /** Linux {@code virtqueue_enable_cb()}: re-enables used-buffer notifications; returns false if used buffers are
     *  already pending (the caller must reap again instead of sleeping). */
    boolean enableCallbacks();

    /** Linux {@code vring_interrupt()}: records a used-buffer notification; false if it was spurious (nothing used). */
    boolean interrupt();

    long interrupts();
    long spuriousInterrupts();

    /** Free descriptors in the ring. */
    int numFree();

    /** Chains added and not yet reaped. */
    int inflight();

    @Override
    void close();
}
