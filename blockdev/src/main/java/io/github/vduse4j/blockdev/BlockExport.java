package io.github.vduse4j.blockdev;

import io.github.vduse4j.blockdev.backend.BlockBackend;
import io.github.vduse4j.blockdev.virtio.VirtioBlkDevice;
import io.github.vduse4j.blockdev.virtio.VirtioBlkSettings;
import io.github.vduse4j.engine.PollerSettings;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.TransportException;
import io.github.vduse4j.engine.vduse.HugepageBounceBuffer;
import io.github.vduse4j.engine.vduse.VdpaBus;
import io.github.vduse4j.engine.vduse.VduseControl;
import io.github.vduse4j.engine.vduse.VduseDevice;
import io.github.vduse4j.engine.vhostuser.VhostUserServer;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * A running block device export: the library API that the CLI uses too.
 *
 * <pre>{@code
 * try (BlockExport export = BlockExport.builder()
 *         .backend(new FileBackend(Path.of("disk.img"), false))
 *         .name("disk0").queues(2).queueSize(256)
 *         .start()) {
 *     System.out.println(export.blockDevice().orElseThrow()); // e.g. /dev/vda
 *     ...
 * }
 * }</pre>
 *
 * <p>{@link #close()} detaches the device from the vdpa bus (the driver finishes or fails what is in flight
 * and resets the device), stops the queues, destroys the VDUSE device and closes the backend.
 *
 * <p>With {@code .transport(Transport.VHOST_USER).socket(path)} the device is served to a vhost-user frontend
 * (QEMU's {@code vhost-user-blk-pci}) on a Unix socket instead; {@link #close()} then stops the server.
 */
public final class BlockExport implements AutoCloseable {
    /** How the device reaches its driver. */
    public enum Transport {
        /** The kernel's VDUSE: a local /dev/vdX (virtio-vdpa) or a VM through vhost-vdpa. */
        VDUSE,
        /** A vhost-user back-end on a Unix socket (a VM's vhost-user-blk, or {@code vduse4j bench}). */
        VHOST_USER
    }

    private final VirtioBlkDevice blk;
    private final VduseDevice vduse;
    private final VhostUserServer vhostUser;
    private final boolean attached;
    private final Path blockDevice;
    private boolean closed;

    private BlockExport(VirtioBlkDevice blk, VduseDevice vduse, VhostUserServer vhostUser, boolean attached,
                        Path blockDevice) {
        this.blk = blk;
        this.vduse = vduse;
        this.vhostUser = vhostUser;
        this.attached = attached;
        this.blockDevice = blockDevice;
    }

    /**
     * Starts describing an export.
     *
     * @return a builder with the defaults: VDUSE, name vduse4j0, 1 queue of 256, 512-byte blocks, split ring
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The export's name.
     *
     * @return the VDUSE device name, e.g. {@code vduse4j0}; for vhost-user the socket path
     */
    public String name() {
        return vduse != null ? vduse.name() : vhostUser.socketPath().toString();
    }

    /**
     * How the device reaches its driver.
     *
     * @return the transport
     */
    public Transport transport() {
        return vduse != null ? Transport.VDUSE : Transport.VHOST_USER;
    }

    /**
     * The vhost-user socket.
     *
     * @return the socket path, if that is the transport
     */
    public Optional<Path> socket() {
        return vhostUser == null ? Optional.empty() : Optional.of(vhostUser.socketPath());
    }

    /**
     * The host block device the kernel made.
     *
     * @return {@code /dev/vdX}, if attached to virtio-vdpa
     */
    public Optional<Path> blockDevice() {
        return Optional.ofNullable(blockDevice);
    }

    /**
     * The size as the driver sees it.
     *
     * @return bytes
     */
    public long capacity() {
        return blk.capacityBytes();
    }

    /**
     * VDUSE with {@link Builder#hugepageBounce}: the hugepage bounce buffer, once the kernel uses it. Every data
     * buffer of every request lies in it, so a backend can register it once for zero-copy I/O.
     *
     * @return the bounce buffer's memory, once registered
     */
    public Optional<MemorySegment> bounceBuffer() {
        return vduse == null ? Optional.empty() : vduse.bounceBuffer();
    }

    /**
     * Per-queue counters (read without locks: values may be slightly stale).
     *
     * @return one entry per queue
     */
    public List<QueueStats> stats() {
        return vduse != null ? vduse.stats() : vhostUser.stats();
    }

    /**
     * Features the driver accepted.
     *
     * @return the negotiated feature bits, 0 before the driver started the device
     */
    public long negotiatedFeatures() {
        return vduse != null ? vduse.negotiatedFeatures() : vhostUser.negotiatedFeatures();
    }

    /**
     * Re-reads the backend's size (e.g. the file grew) and tells the driver: new config space plus a config
     * interrupt, so the kernel updates the disk size live.
     *
     * @return the new size in bytes
     */
    public synchronized long resize() {
        long size = blk.refreshCapacity();
        if (vduse != null) {
            vduse.updateConfig(blk.configSpace());
        } else {
            vhostUser.configChanged(); // the frontend re-reads the config space with GET_CONFIG
        }
        return size;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        RuntimeException failure = null;
        try {
            if (attached) {
                VdpaBus.detach(vduse.name());
            }
        } catch (RuntimeException e) {
            failure = e;
        }
        try {
            if (vduse != null) {
                vduse.close();
            } else {
                vhostUser.close();
            }
        } catch (RuntimeException e) {
            failure = chain(failure, e);
        }
        try {
            blk.backend().close();
        } catch (RuntimeException e) {
            failure = chain(failure, e);
        }
        if (failure != null) {
            throw failure;
        }
    }

    private static RuntimeException chain(RuntimeException first, RuntimeException next) {
        if (first == null) {
            return next;
        }
        first.addSuppressed(next);
        return first;
    }

    /** Options of an export; {@link #start()} validates them and creates the device. */
    public static final class Builder {
        private BlockBackend backend;
        private String name = "vduse4j0";
        private int queues = 1;
        private int queueSize = 256;
        private int blockSize = 512;
        private String serial = "vduse4j";
        private boolean packed;
        private boolean attach = true;
        private PollerSettings pollerSettings = PollerSettings.DEFAULT;
        private long bounceSize;
        private Transport transport = Transport.VDUSE;
        private Path socket;

        private Builder() {}

        /**
         * VDUSE (default) or vhost-user (needs {@link #socket(Path)}).
         *
         * @param transport the transport
         * @return this builder
         */
        public Builder transport(Transport transport) {
            this.transport = transport;
            return this;
        }

        /**
         * The Unix socket a vhost-user export listens on.
         *
         * @param socket its path (created by {@link #start()}, removed by {@link BlockExport#close()})
         * @return this builder
         */
        public Builder socket(Path socket) {
            this.socket = socket;
            return this;
        }

        /**
         * The storage; the export owns it from {@link #start()} on and closes it.
         *
         * @param backend the storage
         * @return this builder
         */
        public Builder backend(BlockBackend backend) {
            this.backend = backend;
            return this;
        }

        /**
         * VDUSE device name: {@code /dev/vduse/NAME} and the vdpa device name.
         *
         * @param name at most 63 characters, no {@code /}
         * @return this builder
         */
        public Builder name(String name) {
            this.name = name;
            return this;
        }

        /**
         * Request queues (virtqueues).
         *
         * @param queues 1..64, one poller thread each
         * @return this builder
         */
        public Builder queues(int queues) {
            this.queues = queues;
            return this;
        }

        /**
         * Entries per queue.
         *
         * @param queueSize a power of two, 4..32768
         * @return this builder
         */
        public Builder queueSize(int queueSize) {
            this.queueSize = queueSize;
            return this;
        }

        /**
         * Logical block size.
         *
         * @param blockSize 512 or 4096
         * @return this builder
         */
        public Builder blockSize(int blockSize) {
            this.blockSize = blockSize;
            return this;
        }

        /**
         * The serial the driver reads (GET_ID).
         *
         * @param serial at most 20 ASCII characters
         * @return this builder
         */
        public Builder serial(String serial) {
            this.serial = serial;
            return this;
        }

        /**
         * Offer the packed ring layout (VIRTIO_F_RING_PACKED).
         *
         * @param packed true to offer it
         * @return this builder
         */
        public Builder packed(boolean packed) {
            this.packed = packed;
            return this;
        }

        /**
         * How queue pollers wait and which CPUs they run on (default: adaptive polling, not pinned).
         *
         * @param settings poll mode, spin limit, CPUs
         * @return this builder
         */
        public Builder pollers(PollerSettings settings) {
            this.pollerSettings = settings;
            return this;
        }

        /**
         * VDUSE: put the bounce buffer in {@code size} bytes of 2 MiB hugepages registered with
         * VDUSE_IOTLB_REG_UMEM (0: the kernel's own pages, the default). Linux 6.1 fixes the size at 64 MiB.
         *
         * @param size bytes, a multiple of 2 MiB, or 0
         * @return this builder
         */
        public Builder hugepageBounce(long size) {
            this.bounceSize = size;
            return this;
        }

        /**
         * Attach to the vdpa bus (default); false leaves that to the caller ({@code vdpa dev add}).
         *
         * @param attach whether {@link #start()} attaches the device
         * @return this builder
         */
        public Builder attach(boolean attach) {
            this.attach = attach;
            return this;
        }

        /**
         * Creates the device and, unless disabled, attaches it. On any failure everything created so far is
         * destroyed and the backend is closed before the exception (one actionable line) propagates.
         *
         * @return the running export; close it to stop
         *
         * @throws IllegalArgumentException for bad options
         * @throws TransportException when the kernel side cannot be set up
         */
        public BlockExport start() {
            if (backend == null) {
                throw new IllegalArgumentException("no backend: choose --null SIZE, --memory SIZE or --file PATH");
            }
            try {
                VirtioBlkDevice blk = new VirtioBlkDevice(backend,
                        new VirtioBlkSettings(queues, queueSize, blockSize, serial, packed));
                if (transport == Transport.VHOST_USER) {
                    if (socket == null) {
                        throw new IllegalArgumentException("vhost-user needs a socket path: --socket PATH");
                    }
                    return new BlockExport(blk, null, VhostUserServer.start(socket, blk, pollerSettings), false, null);
                }
                VduseControl.checkedName(name);
                requireRoot();
                // Memory first (hugepages, RLIMIT_MEMLOCK): a refusal then leaves nothing in the kernel to undo.
                HugepageBounceBuffer bounce = bounceSize > 0 ? HugepageBounceBuffer.allocate(bounceSize) : null;
                VduseControl control = null;
                VduseDevice vduse;
                try {
                    control = VduseControl.open();
                    vduse = VduseDevice.create(control, name, blk, pollerSettings, bounce); // owns both from here on
                } catch (RuntimeException e) {
                    if (bounce != null) {
                        bounce.close();
                    }
                    if (control != null) {
                        control.close();
                    }
                    throw e;
                }
                Path dev = null;
                try {
                    if (attach) {
                        dev = VdpaBus.attach(name).orElseThrow(() -> new TransportException("device '" + name
                                + "' was added to the vdpa bus but no block device appeared: is virtio_vdpa loaded?"
                                + " (modprobe virtio_vdpa)"));
                    }
                } catch (RuntimeException e) {
                    try {
                        VdpaBus.detach(name);
                    } catch (RuntimeException suppressed) {
                        e.addSuppressed(suppressed);
                    }
                    vduse.close();
                    throw e;
                }
                return new BlockExport(blk, vduse, null, attach, dev);
            } catch (RuntimeException e) {
                backend.close();
                throw e;
            }
        }

        private static void requireRoot() {
            try {
                Object uid = Files.getAttribute(Path.of("/proc/self"), "unix:uid");
                if (!Integer.valueOf(0).equals(uid)) {
                    throw new TransportException("exporting a VDUSE device needs root: run vduse4j as root (sudo)");
                }
            } catch (IOException | UnsupportedOperationException e) {
                // cannot tell: let the kernel decide (open of /dev/vduse/control)
            }
        }
    }
}
