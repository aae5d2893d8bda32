package io.github.vduse4j.blockdev;

import io.github.vduse4j.blockdev.backend.BlockBackend;
import io.github.vduse4j.blockdev.virtio.VirtioBlkDevice;
import io.github.vduse4j.blockdev.virtio.VirtioBlkSettings;
import io.github.vduse4j.engine.PollerSettings;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.TransportException;
import io.github.vduse4j.engine.control.ExportPublication;
import io.github.vduse4j.engine.control.LifecycleEvent;
import io.github.vduse4j.engine.control.MetricsEndpoint;
import io.github.vduse4j.engine.control.RunDirectory;
import io.github.vduse4j.engine.vduse.HugepageBounceBuffer;
import io.github.vduse4j.engine.vduse.VduseKernelFeatures;
import io.github.vduse4j.engine.vduse.VdpaBus;
import io.github.vduse4j.engine.vduse.VduseControl;
import io.github.vduse4j.engine.vduse.VduseDevice;
import io.github.vduse4j.engine.vduse.ReconnectLog;
import io.github.vduse4j.engine.vhostuser.VhostUserServer;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
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
    /** /dev/vhost-vdpa-N when attached with {@link VdpaBus.Driver#VHOST_VDPA}. */
    private Path vhostVdpaDevice;
    private final String name;
    private final ExportPublication publication;
    private MetricsEndpoint metricsEndpoint;
    private boolean closed;

    private BlockExport(VirtioBlkDevice blk, VduseDevice vduse, VhostUserServer vhostUser, boolean attached,
                        Path blockDevice, String name, ExportPublication publication) {
        this.blk = blk;
        this.vduse = vduse;
        this.vhostUser = vhostUser;
        this.attached = attached;
        this.blockDevice = blockDevice;
        this.name = name;
        this.publication = publication;
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
     * @return the VDUSE device name (e.g. {@code vduse4j0}); for vhost-user the one it was given
     */
    public String name() {
        return name;
    }

    /**
     * Where the export publishes its control socket and stats file ({@code /run/vduse4j/NAME}), if it does.
     *
     * @return the export's own directory under {@link Builder#runDirectory(Path)}'s root, if one was given
     */
    public Optional<Path> runDirectory() {
        return publication == null ? Optional.empty() : Optional.of(publication.dir());
    }

    /**
     * What the driver side is doing: {@code running} (the driver started the device, or a frontend is connected),
     * {@code waiting} (no driver yet / no frontend connected) or {@code stopped}.
     *
     * @return {@code running}, {@code waiting} or {@code stopped} (after {@link #close()})
     */
    public synchronized String state() {
        if (closed) {
            return "stopped";
        }
        boolean up = vduse != null ? vduse.isStarted() : vhostUser.isConnected();
        return up ? "running" : "waiting";
    }

    /**
     * Where the Prometheus endpoint listens, if there is one.
     *
     * @return the bound address (the real port when 0 was asked for), if {@link Builder#metrics} was set
     */
    public Optional<InetSocketAddress> metricsAddress() {
        return metricsEndpoint == null ? Optional.empty() : Optional.of(metricsEndpoint.address());
    }

    /**
     * The backend's description, e.g. {@code null 1073741824 bytes}.
     *
     * @return {@link BlockBackend#describe()} of the export's backend
     */
    public String backendDescription() {
        return blk.backend().describe();
    }

    /**
     * How many queues the device has.
     *
     * @return the queue count
     */
    public int queueCount() {
        return blk.queueCount();
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
     * The vhost-vdpa character device a VMM (or {@code vduse4j bench --vhost-vdpa}) opens.
     *
     * @return {@code /dev/vhost-vdpa-N}, if attached to vhost_vdpa
     */
    public Optional<Path> vhostVdpaDevice() {
        return Optional.ofNullable(vhostVdpaDevice);
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
     * Per-queue counters (live: they keep counting; they survive device resets and reconnects).
     *
     * @return one entry per queue
     */
    public List<QueueStats> stats() {
        return blk.queueStats();
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
            vduse.capacityChanged(size); // first: a process taking over later must match the new size
            vduse.updateConfig(blk.configSpace());
        } else {
            vhostUser.configChanged(); // the frontend re-reads the config space with GET_CONFIG
        }
        LifecycleEvent.report(name, "resize", size + " bytes");
        return size;
    }

    /**
     * Sets the size of a backend whose size is its own (null, memory) and tells the driver, as {@link #resize()}.
     *
     * @param bytes the new size in bytes, a multiple of the block size
     * @return the new size in bytes
     * @throws UnsupportedOperationException for file-backed exports (resize the file, then {@link #resize()})
     * @throws IllegalArgumentException for a size the backend cannot take
     */
    public synchronized long resize(long bytes) {
        if (bytes % blk.settings().blockSize() != 0) {
            throw new IllegalArgumentException("size " + bytes + " is not a multiple of the block size "
                    + blk.settings().blockSize());
        }
        blk.backend().resize(bytes);
        return resize();
    }

    /**
     * Upgrade stop (VDUSE with a reconnect log): drains every queue, keeps the log and leaves the device in the
     * kernel, attached, for the next process exporting the same configuration to take over; then closes the backend
     * and the run directory's control socket and stats file.
     *
     * @throws IllegalStateException without a reconnect log, or over vhost-user
     */
    public synchronized void upgradeStop() {
        if (vduse == null) {
            throw new IllegalStateException("an upgrade stop is for VDUSE exports");
        }
        if (closed) {
            return;
        }
        closed = true;
        if (metricsEndpoint != null) {
            metricsEndpoint.close();
        }
        if (publication != null) {
            publication.closeControl();
        }
        LifecycleEvent.report(name, "upgrade-stop", "device kept");
        RuntimeException failure = null;
        try {
            vduse.upgradeStop();
        } catch (RuntimeException e) {
            failure = e;
        }
        try {
            blk.backend().close();
        } catch (RuntimeException e) {
            failure = chain(failure, e);
        }
        if (publication != null) {
            publication.close();
        }
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        RuntimeException failure = null;
        if (metricsEndpoint != null) {
            metricsEndpoint.close();
        }
        if (publication != null) {
            publication.closeControl(); // no more commands; the stats stay readable until the queues have stopped
        }
        LifecycleEvent.report(name, "stop", transport().toString());
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
        if (publication != null) {
            publication.close(); // after the pollers stopped: nobody writes the stats file any more
        }
        if (failure != null) {
            throw failure;
        }
    }

    /** What the control socket's commands do to this export. */
    private ExportPublication.Commands commands() {
        return new ExportPublication.Commands() {
            @Override
            public Map<String, Object> info() {
                String device = blockDevice().or(BlockExport.this::socket).map(Path::toString)
                        .orElse("/dev/vduse/" + name);
                return ExportPublication.info(name, transport() == Transport.VDUSE ? "vduse" : "vhost-user", device,
                        backendDescription(), capacity(), queueCount(), state(), metricsAddress().orElse(null));
            }

            @Override
            public List<QueueStats> stats() {
                return BlockExport.this.stats();
            }

            @Override
            public long resize(Long bytes) {
                return bytes == null ? BlockExport.this.resize() : BlockExport.this.resize(bytes);
            }
        };
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
        private VdpaBus.Driver vdpaDriver = VdpaBus.Driver.VIRTIO_VDPA;
        private PollerSettings pollerSettings = PollerSettings.DEFAULT;
        private long bounceSize;
        private long kernelBounceSize;
        private VduseKernelFeatures.IrqAffinity irqAffinity = VduseKernelFeatures.IrqAffinity.BLK_MQ;
        private boolean irqAffinityExplicit;
        private Transport transport = Transport.VDUSE;
        private Path socket;
        private boolean nameSet;
        private Path runRoot;
        private Runnable onStop;
        private Duration slowRequest;
        private InetSocketAddress metrics;
        private Path reconnectLog;

        private Builder() {}

        /**
         * VDUSE: where the reconnect log lives (default: {@code NAME/inflight} in the run directory when there is
         * one, else none). With a log, a restart of the same export after a crash or an upgrade stop takes the device
         * over instead of creating it ({@code /dev/vduse/NAME} still there, the log matching the configuration).
         *
         * @param path the log file, or null for the default
         * @return this builder
         */
        public Builder reconnectLog(Path path) {
            this.reconnectLog = path;
            return this;
        }

        /**
         * Serve Prometheus metrics at {@code http://ADDRESS/metrics} (port 0: any free one; see
         * {@link BlockExport#metricsAddress()}). Default: no endpoint.
         *
         * @param address where to listen, or null for no endpoint
         * @return this builder
         */
        public Builder metrics(InetSocketAddress address) {
            this.metrics = address;
            return this;
        }

        /**
         * Publish the export under {@code root} ({@code root/NAME/control}, the control socket, and
         * {@code root/NAME/stats}, the live stats file; see {@code RunDirectory.defaultRoot()}); null (default): not.
         *
         * @param root the directory to publish under, or null
         * @return this builder
         */
        public Builder runDirectory(Path root) {
            this.runRoot = root;
            return this;
        }

        /**
         * What the control socket's {@code stop} command does (default: close the export on a new daemon thread).
         * Only used with {@link #runDirectory(Path)}.
         *
         * @param onStop the action, or null for the default
         * @return this builder
         */
        public Builder onStop(Runnable onStop) {
            this.onStop = onStop;
            return this;
        }

        /**
         * Report requests at least this slow as JFR {@code vduse4j.SlowRequest} events (default: none).
         *
         * @param threshold the latency from which a request is reported, or null for none
         * @return this builder
         */
        public Builder slowRequestThreshold(Duration threshold) {
            this.slowRequest = threshold;
            return this;
        }

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
         * The export's name (default {@code vduse4j0}; for vhost-user the socket's file name without extension): for
         * VDUSE also {@code /dev/vduse/NAME} and the vdpa device name; the run directory's {@code NAME}.
         *
         * @param name at most 63 characters, no {@code /}
         * @return this builder
         */
        public Builder name(String name) {
            this.name = name;
            this.nameSet = true;
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
         * VDUSE: the kernel's bounce buffer size (sysfs {@code bounce_size}, set before attach), 1 MiB .. 1 GiB;
         * 0 (default) keeps the kernel's 64 MiB. Where the kernel has no such file (Linux 6.1) a size other than
         * 64 MiB is refused. With {@link #hugepageBounce} the two sizes must agree.
         *
         * @param size bytes, or 0
         * @return this builder
         */
        public Builder kernelBounceSize(long size) {
            this.kernelBounceSize = size;
            return this;
        }

        /**
         * VDUSE: where each queue's completion interrupt runs (sysfs {@code vqN/irq_cb_affinity}, set after
         * attach). Default {@link VduseKernelFeatures.IrqAffinity#BLK_MQ} where the kernel has the file, else the
         * kernel's; {@code explicit} refuses a kernel without it.
         *
         * @param mode blk-mq's CPUs of the queue, every CPU, or the kernel's choice
         * @param explicit whether the user asked for it (then a kernel without the setting is an error)
         * @return this builder
         */
        public Builder irqAffinity(VduseKernelFeatures.IrqAffinity mode, boolean explicit) {
            this.irqAffinity = mode;
            this.irqAffinityExplicit = explicit;
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
         * The vdpa bus driver to bind the device to when attaching (default virtio_vdpa: /dev/vdX; vhost_vdpa:
         * /dev/vhost-vdpa-N for a VMM).
         *
         * @param driver the driver
         * @return this builder
         */
        public Builder vdpaDriver(VdpaBus.Driver driver) {
            this.vdpaDriver = driver;
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
            ExportPublication pub = null;
            try {
                VirtioBlkDevice blk = new VirtioBlkDevice(backend,
                        new VirtioBlkSettings(queues, queueSize, blockSize, serial, packed));
                if (transport == Transport.VHOST_USER && socket == null) {
                    throw new IllegalArgumentException("vhost-user needs a socket path: --socket PATH");
                }
                String exportName = transport == Transport.VHOST_USER && !nameSet ? defaultName(socket) : name;
                if (transport == Transport.VDUSE) {
                    VduseControl.checkedName(exportName); // the kernel's rules first: its message names them
                }
                RunDirectory.checkedName(exportName);
                if (runRoot != null) {
                    pub = ExportPublication.create(runRoot, exportName, blk.queueCount());
                    blk.countInto(pub.queues());
                }
                if (slowRequest != null) {
                    blk.queueStats().forEach(q -> q.slowRequestThreshold(slowRequest.toNanos()));
                }
                BlockExport export = startTransport(blk, exportName, pub);
                LifecycleEvent.report(exportName, "create", transport + " " + backend.describe());
                if (metrics != null) {
                    try {
                        export.metricsEndpoint = MetricsEndpoint.start(metrics, exportName, blk::queueStats);
                    } catch (RuntimeException e) {
                        export.close();
                        throw e;
                    }
                }
                if (pub != null) {
                    pub.serve(export.commands(), onStop != null ? onStop
                            : () -> Thread.ofPlatform().daemon(true).start(export::close));
                }
                return export;
            } catch (RuntimeException e) {
                if (pub != null) {
                    pub.close();
                }
                backend.close();
                throw e;
            }
        }

        /** vhost-user: the socket's file name without its extension ({@code /run/vblk.sock} -> {@code vblk}). */
        static String defaultName(Path socket) {
            String f = socket.getFileName().toString();
            int dot = f.lastIndexOf('.');
            String n = (dot > 0 ? f.substring(0, dot) : f).replaceAll("[^A-Za-z0-9._-]", "_").replaceFirst("^\\.", "_");
            return n.isEmpty() ? "vhost-user" : n.substring(0, Math.min(n.length(), 63));
        }

        private BlockExport startTransport(VirtioBlkDevice blk, String name, ExportPublication pub) {
            if (transport == Transport.VHOST_USER) {
                return new BlockExport(blk, null, VhostUserServer.start(socket, blk, pollerSettings), false, null,
                        name, pub);
            }
            requireRoot();
            if (attach && vdpaDriver == VdpaBus.Driver.VHOST_VDPA) {
                VdpaBus.requireDriver(vdpaDriver);   // before anything is created
            }
            Path logPath = reconnectLog != null ? reconnectLog
                    : runRoot != null ? ReconnectLog.defaultPath(runRoot, name) : null;
            ReconnectLog.Identity identity = new ReconnectLog.Identity(VduseDevice.offeredFeatures(blk),
                    blk.queueCount(), blk.maxQueueSize(), blk.settings().blockSize(), blk.capacityBytes(),
                    blk.backend().identity());
            boolean takeover = logPath != null && Files.exists(VduseControl.DEVICE_DIR.resolve(name))
                    && Files.exists(logPath);
            ReconnectLog log = null;
            if (takeover) {
                try {
                    log = ReconnectLog.open(logPath, identity); // checks it; touches nothing on a mismatch
                } catch (TransportException e) {
                    throw new TransportException("VDUSE device '" + name + "' is left from an earlier export that this"
                            + " one cannot take over (" + e.getMessage() + "): remove it with vduse4j destroy --name "
                            + name + ", or restart with the earlier configuration");
                }
            }
            // Memory first (hugepages, RLIMIT_MEMLOCK): a refusal then leaves nothing in the kernel to undo.
            HugepageBounceBuffer bounce = null;
            VduseControl control = null;
            VduseDevice vduse;
            try {
                bounce = bounceSize > 0 ? HugepageBounceBuffer.allocate(bounceSize) : null;
                control = VduseControl.open();
                if (takeover) {
                    vduse = VduseDevice.reconnect(control, name, blk, pollerSettings, bounce, log);
                } else {
                    if (logPath != null && !Files.exists(VduseControl.DEVICE_DIR.resolve(name))) {
                        log = ReconnectLog.create(logPath, identity);
                    }
                    vduse = VduseDevice.create(control, name, blk, pollerSettings, bounce, kernelBounceSize, log); // owns them from here on
                }
            } catch (RuntimeException e) {
                if (bounce != null) {
                    bounce.close();
                }
                if (control != null) {
                    control.close();
                }
                if (log != null) {
                    if (takeover) {
                        log.close();
                    } else {
                        log.delete();
                    }
                }
                throw e;
            }
            if (takeover) { // a device taken over keeps its interrupt affinity and bounce size: no refusal may destroy it
                Path dev = VdpaBus.blockDevice(name).orElse(null);
                boolean attached = VdpaBus.isAttached(name);
                LifecycleEvent.report(name, "takeover", dev == null ? "no block device" : dev.toString());
                return new BlockExport(blk, vduse, null, attached, dev, name, pub);
            }
            if (irqAffinityExplicit && irqAffinity != VduseKernelFeatures.IrqAffinity.KERNEL
                    && !VduseKernelFeatures.system().irqAffinitySettable(name)) {
                vduse.close(); // refused before attach: nothing reached the vdpa bus
                throw new TransportException(VduseKernelFeatures.irqAffinityUnavailable());
            }
            Path dev = null;
            try {
                if (attach && vdpaDriver == VdpaBus.Driver.VHOST_VDPA) {
                    dev = VdpaBus.attach(name, vdpaDriver).orElseThrow(() -> new TransportException("device '" + name
                            + "' was bound to vhost_vdpa but no /dev/vhost-vdpa-N appeared"));
                } else if (attach) {
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
            if (attach) {
                LifecycleEvent.report(name, "attach", dev.toString());
            }
            reportKernelFeatures(vduse, name, dev);
            if (vdpaDriver == VdpaBus.Driver.VHOST_VDPA) {
                BlockExport e = new BlockExport(blk, vduse, null, attach, null, name, pub);
                e.vhostVdpaDevice = dev;
                return e;
            }
            return new BlockExport(blk, vduse, null, attach, dev, name, pub);
        }

        /**
         * Sets the interrupt affinity (after attach: blk-mq's map exists only then) and prints one line of the
         * kernel's VDUSE features in use. A failure there is fatal only if the user asked for the feature.
         */
        private void reportKernelFeatures(VduseDevice vduse, String name, Path dev) {
            VduseKernelFeatures k = VduseKernelFeatures.system();
            boolean canAffinity = k.irqAffinitySettable(name);
            String bounceText = k.bounceSizeSettable(name)
                    ? "bounce_size " + (k.bounceSize(name) >> 20) + " MiB" + (kernelBounceSize > 0 || bounceSize > 0 ? " (set)" : " (kernel default)")
                    : "bounce_size unavailable (fixed 64 MiB)";
            String affinityText;
            if (!canAffinity) {
                affinityText = "irq_cb_affinity unavailable (completions on any CPU)";
            } else if (dev == null && irqAffinity == VduseKernelFeatures.IrqAffinity.BLK_MQ) {
                affinityText = "irq_cb_affinity kernel's (not attached: no blk-mq map) "
                        + k.applyIrqAffinity(name, "", vduse.device().queueCount(), VduseKernelFeatures.IrqAffinity.KERNEL);
            } else {
                try {
                    affinityText = "irq_cb_affinity " + irqAffinity.name().toLowerCase(java.util.Locale.ROOT).replace('_', '-')
                            + " " + k.applyIrqAffinity(name, dev == null ? "" : dev.getFileName().toString(),
                                    vduse.device().queueCount(), irqAffinity);
                } catch (TransportException e) {
                    if (irqAffinityExplicit) {
                        detachQuietly(vduse, name);
                        throw e;
                    }
                    affinityText = "irq_cb_affinity not set (" + e.getMessage() + ")";
                }
            }
            System.err.println("vduse4j: kernel VDUSE features: " + bounceText + ", " + affinityText);
        }

        private void detachQuietly(VduseDevice vduse, String name) {
            try {
                VdpaBus.detach(name);
            } catch (RuntimeException ignored) {
                // closing the device below still removes it
            }
            vduse.close();
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
