package io.github.vduse4j.engine.frontend;

import io.github.vduse4j.ring.VirtioRing;
import io.github.vduse4j.ring.driver.DriverRing;
import java.util.Arrays;
import java.util.stream.LongStream;

/**
 * A vhost frontend over any {@link VhostTransport}: negotiates features (what the caller wants of what the device
 * offers, failing if a required one is missing), passes config and the memory table through, starts and stops
 * queues, and reconnects to a restarted device: {@link #reconnect()} opens a new transport, checks the device still
 * offers the negotiated features, announces the same memory table and starts every queue again on an emptied ring;
 * the caller then resubmits the requests that were in flight (it knows them by their ring tokens). Control path
 * only: one thread at a time.
 */
public final class VhostFrontend implements AutoCloseable {
    /** Opens a transport to the device (a vhost-user socket path, a vhost-vdpa chardev), ready for SET_FEATURES. */
    @FunctionalInterface
    public interface Connector {
        VhostTransport connect();
    }

    private final Connector connector;
    private VhostTransport transport;
    private final long offered;
    private final long features;
    private MemoryTable memory;
    private FrontendQueue[] queues = new FrontendQueue[0];
    private int reconnects;

    private VhostFrontend(Connector connector, VhostTransport transport, long offered, long features) {
        this.connector = connector;
        this.transport = transport;
        this.offered = offered;
        this.features = features;
    }

    /**
     * Connects and settles the features: {@code wanted} of those offered, which must include all of {@code required}
     * (else an IllegalStateException naming the missing bits). SET_FEATURES is sent by {@link #start}.
     */
    public static VhostFrontend open(Connector connector, long wanted, long required) {
        VhostTransport t = connector.connect();
        try {
            long offered = t.deviceFeatures();
            long missing = required & ~offered;
            if (missing != 0) {
                throw new IllegalStateException("the device lacks required feature bits " + bits(missing));
            }
            return new VhostFrontend(connector, t, offered, offered & (wanted | required));
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
    }

    public VhostTransport transport() { return transport; }
    /** Features the device offered at the first connection. */
    public long offeredFeatures() { return offered; }
    /** Features negotiated (sent with SET_FEATURES). */
    public long features() { return features; }
    public boolean hasFeature(int bit) { return (features & (1L << bit)) != 0; }
    /** Times {@link #reconnect()} succeeded. */
    public int reconnects() { return reconnects; }

    /**
     * A driver ring of {@code size} in {@code memory} for the negotiated features: packed with VIRTIO_F_RING_PACKED,
     * EVENT_IDX and INDIRECT_DESC as negotiated ({@code indirectEntries} per buffer with INDIRECT_DESC).
     */
    public DriverRing newRing(MemoryRegion memory, int size, int indirectEntries) {
        boolean indirect = hasFeature(VirtioRing.F_INDIRECT_DESC);
        return DriverRing.create(memory, size, hasFeature(VirtioRing.F_RING_PACKED), hasFeature(VirtioRing.F_EVENT_IDX),
                indirect, indirect ? indirectEntries : 0);
    }

    /** Queues the device has. */
    public int maxQueues() { return transport.maxQueues(); }

    /** {@code size} bytes of the config space from {@code offset}. */
    public byte[] config(int offset, int size) {
        if (!transport.hasConfig()) {
            throw new IllegalStateException("the device does not expose its config space (VHOST_USER_PROTOCOL_F_CONFIG)");
        }
        return transport.config(offset, size);
    }

    /** SET_FEATURES, the memory table, then every queue i as vring i from its ring's current base. */
    public void start(MemoryTable table, FrontendQueue... queues) {
        this.memory = table;
        this.queues = queues.clone();
        transport.setFeatures(features);
        transport.setMemoryTable(table);
        for (int i = 0; i < queues.length; i++) {
            DriverRing r = queues[i].ring();
            transport.startVring(i, r, r.vringBase(), queues[i].kickFd(), queues[i].callFd());
        }
        transport.started();
    }

    /** Stops every queue; returns where each stopped (GET_VRING_BASE). */
    public int[] stop() {
        int[] bases = new int[queues.length];
        for (int i = 0; i < queues.length; i++) {
            bases[i] = transport.stopVring(i);
        }
        transport.stopped();
        return bases;
    }

    /**
     * After the device went away (its socket closed, a request failed): drops the old transport, connects again (the
     * connector decides how patiently), checks the device still offers every negotiated feature, and starts again
     * with the same memory table and emptied rings. Whatever was in flight is forgotten by the rings: the caller
     * resubmits it.
     */
    public void reconnect() {
        transport.close();
        VhostTransport t = connector.connect();
        try {
            long missing = features & ~t.deviceFeatures();
            if (missing != 0) {
                throw new IllegalStateException("the restarted device lacks negotiated feature bits " + bits(missing));
            }
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
        transport = t;
        for (FrontendQueue q : queues) {
            q.ring().reset();
        }
        if (memory != null) {
            start(memory, queues);
        }
        reconnects++;
    }

    @Override
    public void close() {
        transport.close();
    }

    private static String bits(long mask) {
        return Arrays.toString(LongStream.range(0, 64).filter(b -> (mask & (1L << b)) != 0).toArray());
    }

}
