package io.github.vduse4j.engine.frontend;

import io.github.vduse4j.ring.driver.DriverRing;

/**
 * The seam between a vhost frontend and the way it reaches the device: a vhost-user socket
 * ({@link VhostUserFrontend}: messages, memory shared by fd) or a {@code /dev/vhost-vdpa-N} character device (ioctls,
 * memory announced by {@code vhost_msg_v2} IOTLB updates, issue 15). Everything above it ({@link VhostFrontend}, the
 * driver rings, the kick/call eventfds of {@link FrontendQueue}) is shared. Control path only: one thread at a time.
 *
 * <p>Mapping of the calls: vhost-user GET_FEATURES / VHOST_GET_FEATURES, SET_FEATURES / VHOST_SET_FEATURES,
 * GET_CONFIG / VHOST_VDPA_GET_CONFIG, SET_MEM_TABLE / IOTLB UPDATE batch, SET_VRING_NUM/BASE/ADDR/KICK/CALL(/ENABLE) /
 * the VHOST_SET_VRING_* ioctls (+ VHOST_VDPA_SET_VRING_ENABLE), GET_VRING_BASE / VHOST_GET_VRING_BASE. The vdpa
 * status handshake (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK) is the transport's own business in
 * {@link #setFeatures} and {@link #startVring}.
 */
public interface VhostTransport extends AutoCloseable {
    /** Device features the back-end offers (virtio feature bits; vhost-user's PROTOCOL_FEATURES bit included). */
    long deviceFeatures();

    /** Queues the device has (vhost-user: GET_QUEUE_NUM with MQ, else 1). */
    int maxQueues();

    /** True if the device's config space can be read ({@link #config}). */
    boolean hasConfig();

    /** {@code size} bytes of the device config space from {@code offset}. */
    byte[] config(int offset, int size);

    /** The driver writes {@code data} at {@code offset} of the config space. */
    void setConfig(int offset, byte[] data);

    /** Acknowledges {@code features} (a subset of {@link #deviceFeatures()}). */
    void setFeatures(long features);

    /** Announces {@code table} as the device's view of guest memory (replaces any earlier table). */
    void setMemoryTable(MemoryTable table);

    /**
     * Sets up and starts vring {@code index} over {@code ring} at vring base {@code base}, with eventfds {@code kickFd}
     * (driver to device) and {@code callFd} (device to driver). The transport picks the addresses it announces:
     * vhost-user this process's user addresses of the ring's areas, vhost-vdpa their device addresses.
     */
    void startVring(int index, DriverRing ring, int base, int kickFd, int callFd);

    /**
     * Every vring of a {@link VhostFrontend#start} is set up: vhost-vdpa sets DRIVER_OK here (VHOST_VDPA_SET_STATUS);
     * vhost-user has nothing to do (its rings start at SET_VRING_KICK / ENABLE).
     */
    default void started() {
    }

    /** Stops vring {@code index} and returns where it stopped (GET_VRING_BASE). */
    int stopVring(int index);

    /**
     * Every vring of a {@link VhostFrontend#stop} was asked for its base: vhost-vdpa resets the device here (SET_STATUS
     * 0, what stops a vDPA device's queues); vhost-user has nothing to do (GET_VRING_BASE stopped each ring).
     */
    default void stopped() {
    }

    @Override
    void close();
}
