package io.github.vduse4j.engine;

/**
 * A virtio device model, independent of the transport (VDUSE or vhost-user) that connects it to a driver.
 * The transport owns the rings and threads; the device owns the config space and the request semantics.
 */
public interface VirtioDevice {

    /** Virtio device ID (virtio 1.2 §5: 2 = block). */
    int deviceId();

    /** Feature bits the device offers (virtio 1.2 §6), including transport bits such as VERSION_1. */
    long deviceFeatures();

    /** The device-specific configuration space as the driver reads it (little-endian). */
    byte[] configSpace();

    /** Number of virtqueues. */
    int queueCount();

    /** Largest queue size the device accepts. */
    int maxQueueSize();

    /**
     * Creates the request handler of queue {@code index} once the driver is ready (DRIVER_OK), with the
     * features both sides agreed on. Called on the control thread; the handler is then used only by that
     * queue's poller thread.
     */
    QueueHandler openQueue(int index, long negotiatedFeatures, int queueSize);
}
