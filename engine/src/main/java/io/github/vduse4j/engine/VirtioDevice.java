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

    /**
     * Feature bits the device offers only over a transport that delivers the driver's configuration-space writes
     * to {@link #writeConfig} (vhost-user: SET_CONFIG). A transport that cannot deliver them must not offer these
     * bits: VDUSE on Linux 6.1 drops config writes ({@code vduse_vdpa_set_config} is empty), and a driver that
     * negotiated e.g. VIRTIO_BLK_F_CONFIG_WCE would believe a write took effect that never arrived. Not part of
     * {@link #deviceFeatures()}. Default: none.
     */
    default long configWriteFeatures() {
        return 0;
    }

    /**
     * True when a driver that negotiated {@code negotiatedFeatures} may write some field of the config space, i.e.
     * {@link #writeConfig} can succeed at all. Default: false (the config space is read-only).
     */
    default boolean acceptsConfigWrites(long negotiatedFeatures) {
        return false;
    }

    /**
     * A driver's write of {@code data} at byte {@code offset} of the config space, on the transport's control
     * thread. The transport has checked that the range lies inside {@link #configSpace()}; the device checks the
     * rest (which fields are writable, which values are valid, the features) and applies the write whole or not at
     * all. It must not throw for bad input.
     *
     * @return null when the write was applied; otherwise the reason it was refused (nothing changed)
     */
    default String writeConfig(int offset, byte[] data, long negotiatedFeatures) {
        return "the config space is read-only";
    }

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
