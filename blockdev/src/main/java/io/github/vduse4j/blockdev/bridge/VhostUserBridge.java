package io.github.vduse4j.blockdev.bridge;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;

import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.engine.PollerSettings;
import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.TransportException;
import io.github.vduse4j.engine.VirtioDevice;
import io.github.vduse4j.engine.control.ExportPublication;
import io.github.vduse4j.engine.control.LifecycleEvent;
import io.github.vduse4j.engine.control.MetricsEndpoint;
import io.github.vduse4j.engine.frontend.FrontendQueue;
import io.github.vduse4j.engine.frontend.MemoryRegion;
import io.github.vduse4j.engine.frontend.MemoryTable;
import io.github.vduse4j.engine.frontend.VhostFrontend;
import io.github.vduse4j.engine.frontend.VhostUserFrontend;
import io.github.vduse4j.engine.vduse.HugepageBounceBuffer;
import io.github.vduse4j.engine.vduse.VdpaBus;
import io.github.vduse4j.engine.vduse.VduseControl;
import io.github.vduse4j.engine.vduse.VduseDevice;
import io.github.vduse4j.ring.VirtioRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code vduse4j export --vhost-user-target SOCKET}: an existing vhost-user-blk target (qemu-storage-daemon, SPDK)
 * as a local VDUSE virtio-blk device, zero copy. The VDUSE bounce buffer is a hugetlb memfd registered with
 * VDUSE_IOTLB_REG_UMEM; the same memfd is the target's memory region 0 at guest physical address 0 (GPA = IOVA), and
 * the bridge's own rings and indirect tables are a second region: the tail of that one sealed memfd (whole hugepages
 * after the bounce part; see {@link #RING_GPA} for the layout), so the target is handed one hugetlb file in 2 MiB
 * pieces, as SPDK's {@code spdk_mem_register} wants. Each VDUSE queue is relayed to one target queue by a
 * {@link RelayQueueHandler}; the config (capacity, block size, seg/size max, topology, discard and write-zeroes
 * limits) and the block features come from the target (minus CONFIG_WCE; a size_max of 0, which Linux 6.1's
 * virtblk_probe would take as a limit of 0, drops SIZE_MAX).
 *
 * <p>Everything about the target is checked before a VDUSE device exists; a failure after that destroys the device.
 * A target that hangs up (killed, restarted) is reconnected by a {@link TargetWatch}: the relays pause, the
 * frontend reconnects (waiting up to 30 s for the target to listen again) and every outstanding request is
 * resubmitted. Like any export it publishes itself ({@link Service}): the stats file and control socket under the run
 * directory ({@link ExportPublication}, the one implementation {@code BlockExport} uses too), so {@code vduse4j list},
 * {@code stats} and {@code stop} see it, and optionally the Prometheus endpoint.
 *
 * <p>With the kernel bounce ({@code --bounce kernel}, no hugepages) region 0 is the VDUSE IOVA domain file itself
 * ({@link VduseDevice#iotlbDomainFd()}: IOVA x at file offset x, 4 KiB kernel pages). That file only has entries
 * once the driver set up its rings, so the target's memory table and vrings are set up when the driver starts the
 * device (DRIVER_OK, the first {@code openQueue}) instead of before the device exists. The target faults in only
 * pages that descriptors point at, and the kernel allocated each of those when the driver mapped the buffer, so it
 * never meets the SIGBUS of an untouched page. The backing never changes while the target has it mapped (no
 * REG_UMEM in this mode).
 */
public final class VhostUserBridge implements AutoCloseable {
    /** Target features the bridge needs: indirect tables (one ring descriptor per request). */
    static final long REQUIRED = bit(VirtioRing.F_VERSION_1) | bit(F_PROTOCOL_FEATURES) | bit(VirtioRing.F_INDIRECT_DESC);
    /** Block features relayed as the target negotiates them (§5.2.3). */
    static final long RELAYED = bit(VirtioBlk.F_SIZE_MAX) | bit(VirtioBlk.F_SEG_MAX) | bit(VirtioBlk.F_RO)
            | bit(VirtioBlk.F_BLK_SIZE) | bit(VirtioBlk.F_FLUSH) | bit(VirtioBlk.F_TOPOLOGY) | bit(VirtioBlk.F_DISCARD)
            | bit(VirtioBlk.F_WRITE_ZEROES);
    static final long PROTOCOL = bit(PF_MQ) | bit(PF_REPLY_ACK) | bit(PF_CONFIG);
    /** Bytes of struct virtio_blk_config (§5.2.4) up to write_zeroes_may_unmap and its padding. */
    static final int CONFIG_BYTES = 60;
    /** Most elements of one request: header + up to 126 data segments + status (Linux: sg_elems = seg_max + 2). */
    static final int MAX_ELEMENTS = 128;
    /**
     * Where the target sees the bridge's rings and indirect tables (region 1): 1 TiB, far above every IOVA a VDUSE
     * device uses (Linux 6.1: [0, 128 MiB), 6.12: below 1 GiB + 128 MiB; the relay forwards only [0, bounce size),
     * region 0). So the target's address space is the bounce region at GPA = IOVA, a hole, and the rings: no IOVA
     * of the VDUSE side, forwarded or stale, can name bridge memory. With hugepages region 1 is the memfd's tail
     * (file offset = bounce size); with the kernel bounce a small memfd of its own.
     */
    static final long RING_GPA = 1L << 40;
    /** How long a reconnection waits for a restarted target to listen again. */
    static final Duration RESTART_PATIENCE = Duration.ofSeconds(30);
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final VhostFrontend target;
    private final List<FrontendQueue> queues;
    private final MemoryRegion rings;
    private final VduseDevice vduse;
    private final Path blockDevice;
    private final TargetWatch watch;
    private final Device device;
    private final Path socket;
    private final long capacity;
    private final List<QueueStats> stats;
    private final ExportPublication publication;
    private MetricsEndpoint metricsEndpoint;
    private boolean closed;

    /**
     * How the bridge shows itself to operators, as {@code BlockExport.Builder}'s options of the same names do.
     *
     * @param runRoot publish {@code runRoot/NAME/stats} and {@code runRoot/NAME/control}; null: not
     * @param onStop what the control socket's {@code stop} does (null: close the bridge on a new thread)
     * @param metrics serve Prometheus metrics there; null: not
     * @param slowRequestNanos report requests at least this slow as JFR events (Long.MAX_VALUE: never)
     */
    public record Service(Path runRoot, Runnable onStop, InetSocketAddress metrics, long slowRequestNanos) {
        /** Not published, no metrics, no slow-request events. */
        public static final Service NONE = new Service(null, null, null, Long.MAX_VALUE);
    }

    private VhostUserBridge(VhostFrontend target, List<FrontendQueue> queues, MemoryRegion rings, VduseDevice vduse,
            Path blockDevice, TargetWatch watch, Device device, Path socket, long capacity, List<QueueStats> stats,
            ExportPublication publication) {
        this.socket = socket;
        this.capacity = capacity;
        this.stats = stats;
        this.publication = publication;
        this.watch = watch;
        this.device = device;
        this.target = target;
        this.queues = queues;
        this.rings = rings;
        this.vduse = vduse;
        this.blockDevice = blockDevice;
    }

    /**
     * Connects to the target at {@code socket}, checks it, sets up the shared memory and the target queues, then
     * creates VDUSE device {@code name} (and attaches it to virtio-vdpa when {@code attach}).
     *
     * @param bounceSize hugepage bounce buffer bytes (0: the kernel bounce, shared as the VDUSE domain file)
     * @throws IllegalArgumentException for bad options, TransportException / IllegalStateException with one line
     */
    public static VhostUserBridge start(Path socket, String name, int queues, int queueSize, long bounceSize,
            boolean attach, PollerSettings pollers) {
        return start(socket, name, queues, queueSize, bounceSize, attach, pollers, Service.NONE);
    }

    /** As above, published as {@code service} says. */
    public static VhostUserBridge start(Path socket, String name, int queues, int queueSize, long bounceSize,
            boolean attach, PollerSettings pollers, Service service) {
        final boolean kernelBounce = bounceSize == 0;
        final long regionSize = kernelBounce ? HugepageBounceBuffer.DEFAULT_SIZE : bounceSize;
        if (queues < 1 || queueSize < 2 || Integer.bitCount(queueSize) != 1 || queueSize > 1024) {
            throw new IllegalArgumentException("--queues must be >= 1 and --queue-size a power of two in [2, 1024]");
        }
        VduseControl.checkedName(name);
        // The first connection fails at once (bad input); a reconnection waits up to 30 s for a restarted target.
        boolean[] first = {true};
        VhostFrontend fe = VhostFrontend.open(() -> {
                    Duration patience = first[0] ? Duration.ZERO : RESTART_PATIENCE;
                    first[0] = false;
                    return VhostUserFrontend.open(socket, PROTOCOL, patience);
                },
                REQUIRED | RELAYED | bit(VirtioRing.F_EVENT_IDX) | (queues > 1 ? bit(VirtioBlk.F_MQ) : 0), REQUIRED);
        List<FrontendQueue> targetQueues = new ArrayList<>();
        HugepageBounceBuffer bounce = null;
        MemoryRegion ringRegion = null;
        VduseDevice vduse = null;
        Device device = null;
        ExportPublication pub = null;
        VhostUserBridge bridge;
        try {
            if (!fe.transport().hasConfig()) {
                throw new IllegalStateException(socket + " exposes no config space (VHOST_USER_PROTOCOL_F_CONFIG):"
                        + " not a vhost-user-blk target");
            }
            if (queues > fe.maxQueues()) {
                throw new IllegalArgumentException("--queues " + queues + " but the target has " + fe.maxQueues());
            }
            byte[] config = fe.config(0, CONFIG_BYTES);
            long features = fe.features();
            int segMax = MAX_ELEMENTS - 2;
            MemorySegment c = MemorySegment.ofArray(config);
            if ((features & bit(VirtioBlk.F_SEG_MAX)) != 0) {
                segMax = Math.max(1, Math.min(segMax, c.get(LE_INT, 12)));
            }
            c.set(LE_INT, 12, segMax);
            if ((features & bit(VirtioBlk.F_SIZE_MAX)) != 0 && c.get(LE_INT, 8) == 0) {
                features &= ~bit(VirtioBlk.F_SIZE_MAX);   // 0 = "no limit" for the target, a limit of 0 for Linux 6.1
            }
            c.set(LE_SHORT, 34, (short) queues);
            c.set(ValueLayout.JAVA_BYTE, 32, (byte) 0);   // writeback field: CONFIG_WCE is not offered
            if (!kernelBounce) {
                // one sealed hugetlb memfd: the bounce part (REG_UMEM, region 0) and the rings' tail (region 1)
                bounce = HugepageBounceBuffer.allocate(bounceSize, queues * ringBytes(queueSize));
                ringRegion = MemoryRegion.map(bounce.fd(), false, bounce.tailOffset(), bounce.tailSize(), RING_GPA);
                System.err.println("vduse4j: shared memory: one sealed hugetlb memfd of "
                        + ((bounce.size() + bounce.tailSize()) >> 20) + " MiB (seals "
                        + HugepageBounceBuffer.sealNames(bounce.seals()) + "): bounce " + (bounce.size() >> 20)
                        + " MiB at GPA 0 = IOVA (REG_UMEM), rings " + (bounce.tailSize() >> 20)
                        + " MiB at GPA 0x" + Long.toHexString(RING_GPA));
            } else {
                ringRegion = MemoryRegion.memfd(queues * ringBytes(queueSize), RING_GPA);
            }
            for (int i = 0; i < queues; i++) {
                targetQueues.add(new FrontendQueue(fe.newRing(ringRegion, queueSize, MAX_ELEMENTS)));
            }
            List<QueueStats> stats;
            if (service.runRoot() != null) {
                pub = ExportPublication.create(service.runRoot(), name, queues);
                stats = pub.queues();
            } else {
                stats = new ArrayList<>();
                for (int i = 0; i < queues; i++) {
                    stats.add(new QueueStats());
                }
            }
            stats.forEach(q -> q.slowRequestThreshold(service.slowRequestNanos()));
            device = new Device(features & RELAYED, config, queues, queueSize, targetQueues, segMax + 2, fe,
                    ringRegion, regionSize, stats);
            if (!kernelBounce) {
                device.startTarget(MemoryRegion.of(bounce.fd(), 0, bounce.segment(), 0));
            }
            VduseControl control = VduseControl.open();
            try {
                vduse = VduseDevice.create(control, name, device, pollers, bounce);   // owns control and bounce
            } catch (RuntimeException e) {
                control.close();
                throw e;
            }
            bounce = null;
            device.vduse = vduse;
            Path dev = null;
            if (attach) {
                dev = VdpaBus.attach(name).orElseThrow(() -> new TransportException("device '" + name
                        + "' was added to the vdpa bus but no block device appeared: is virtio_vdpa loaded?"
                        + " (modprobe virtio_vdpa)"));
            }
            TargetWatch watch = new TargetWatch(fe, device::relays, m -> System.err.println("vduse4j: " + m));
            long capacity = c.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0) * 512;
            bridge = new VhostUserBridge(fe, targetQueues, ringRegion, vduse, dev, watch, device, socket, capacity,
                    List.copyOf(stats), pub);
        } catch (RuntimeException e) {
            if (vduse != null) {
                try {
                    VdpaBus.detach(name);
                } catch (RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
                vduse.close();
            }
            targetQueues.forEach(FrontendQueue::close);
            fe.close();
            if (ringRegion != null) {
                ringRegion.close();
            }
            if (bounce != null) {
                bounce.close();
            }
            if (device != null) {
                device.closeDomain();
            }
            if (pub != null) {
                pub.close();
            }
            throw e;
        }
        LifecycleEvent.report(name, "create", "vhost-user target " + socket);
        bridge.publish(service);   // a failure closes the bridge
        return bridge;
    }

    /** Metrics endpoint and control socket, once the device exists; a failure closes the bridge. */
    private void publish(Service service) {
        try {
            if (service.metrics() != null) {
                metricsEndpoint = MetricsEndpoint.start(service.metrics(), name(), () -> stats);
            }
            if (publication != null) {
                Runnable onStop = service.onStop() != null ? service.onStop()
                        : () -> Thread.ofPlatform().daemon(true).start(this::close);
                publication.serve(new ExportPublication.Commands() {
                    @Override
                    public Map<String, Object> info() {
                        return ExportPublication.info(name(), "vduse",
                                blockDevice().map(Path::toString).orElse("/dev/vduse/" + name()),
                                "vhost-user target " + socket, capacity, stats.size(),
                                isClosed() ? "stopped" : vduse.isStarted() ? "running" : "waiting",
                                metricsAddress().orElse(null));
                    }

                    @Override
                    public List<QueueStats> stats() {
                        return stats;
                    }

                    @Override
                    public long resize(Long bytes) {
                        throw new IllegalArgumentException("a bridge has the size of its target: resize the target");
                    }
                }, onStop);
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private synchronized boolean isClosed() {
        return closed;
    }

    /** Where the Prometheus endpoint listens, if there is one. */
    public Optional<InetSocketAddress> metricsAddress() {
        return metricsEndpoint == null ? Optional.empty() : Optional.of(metricsEndpoint.address());
    }

    /** The run directory the bridge publishes itself in ({@code root/NAME}), if it does. */
    public Optional<Path> runDirectory() {
        return publication == null ? Optional.empty() : Optional.of(publication.dir());
    }

    /** Bytes of the ring region one target queue takes: split ring parts and its indirect tables. */
    static long ringBytes(int queueSize) {
        return 3 * 4096L + ((16L * queueSize + 4095) & -4096L) + ((8L * queueSize + 4095) & -4096L)
                + (long) queueSize * MAX_ELEMENTS * VirtioRing.DESC_SIZE;
    }

    public String name() {
        return vduse.name();
    }

    /** The host block device the kernel made ({@code /dev/vdX}), if attached. */
    public Optional<Path> blockDevice() {
        return Optional.ofNullable(blockDevice);
    }

    /** The hugepage bounce buffer once the kernel uses it (REG_UMEM done at the first transfer). */
    public Optional<MemorySegment> bounceBuffer() {
        return vduse.bounceBuffer();
    }

    /** Per-queue counters; they survive device resets and target reconnects. */
    public List<QueueStats> stats() {
        return stats;
    }

    /** Buffer bytes of every request relayed to the target (payload, headers, status; none of it copied). */
    public long relayedBytes() {
        return device.allRelays().stream().mapToLong(RelayQueueHandler::relayedBytes).sum();
    }

    /** Payload bytes the relays copied in userspace: 0 (they forward descriptors, never data). */
    public long copiedBytes() {
        return device.allRelays().stream().mapToLong(RelayQueueHandler::copiedBytes).sum();
    }

    /** Kicks the bridge sent the target (all queues): with EVENT_IDX only when the target asked for one. */
    public long targetKicks() {
        return queues.stream().mapToLong(FrontendQueue::kicks).sum();
    }

    /** Call eventfd wake-ups the bridge took from the target (all queues). */
    public long targetCalls() {
        return queues.stream().mapToLong(FrontendQueue::calls).sum();
    }

    /** Times the bridge reconnected to a restarted target. */
    public int reconnects() {
        return watch.reconnects();
    }

    /** Destroys the VDUSE device (the pollers drain the target first), then stops and leaves the target. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (metricsEndpoint != null) {
            metricsEndpoint.close();
        }
        if (publication != null) {
            publication.closeControl();   // no more commands; the stats stay readable until the queues have stopped
        }
        LifecycleEvent.report(name(), "stop", "vhost-user target " + socket);
        watch.close();
        try {
            VdpaBus.detach(vduse.name());
        } catch (RuntimeException e) {
            // not attached, or already gone (vdpa dev del)
        }
        vduse.close();
        try {
            target.stop();
        } catch (RuntimeException e) {
            // a target that went away: nothing left to stop
        }
        target.close();
        queues.forEach(FrontendQueue::close);
        rings.close();
        device.closeDomain();
        if (publication != null) {
            publication.close();   // after the pollers stopped: nobody writes the stats file any more
        }
    }

    private static long bit(int n) {
        return 1L << n;
    }

    /** The VDUSE side: a virtio-blk device with the target's config, each queue relayed to a target queue. */
    private static final class Device implements VirtioDevice {
        private final long blockFeatures;
        private final byte[] config;
        private final int queues;
        private final int queueSize;
        private final List<FrontendQueue> targetQueues;
        private final int maxElements;
        private final RelayQueueHandler[] relays;
        private final List<RelayQueueHandler> everyRelay = new ArrayList<>();
        private final VhostFrontend target;
        private final MemoryRegion ringRegion;
        private final long bounceSize;
        /** Set once the device exists; the kernel bounce takes the domain file from it at the first openQueue. */
        volatile VduseDevice vduse;
        /** The target's region 0 as this process maps it, once the target's vrings run. */
        private MemoryRegion bounceRegion;
        /** Our own mapping of the VDUSE domain file (kernel bounce), closed with the bridge. */
        private MemoryRegion domainRegion;
        private final List<QueueStats> stats;

        Device(long blockFeatures, byte[] config, int queues, int queueSize, List<FrontendQueue> targetQueues,
                int maxElements, VhostFrontend target, MemoryRegion ringRegion, long bounceSize, List<QueueStats> stats) {
            this.stats = stats;
            this.blockFeatures = blockFeatures;
            this.config = config;
            this.queues = queues;
            this.queueSize = queueSize;
            this.targetQueues = targetQueues;
            this.maxElements = maxElements;
            this.relays = new RelayQueueHandler[queues];
            this.target = target;
            this.ringRegion = ringRegion;
            this.bounceSize = bounceSize;
        }

        /**
         * Announces {@code bounce} as the target's region 0 (GPA 0) and the rings as region 1, and starts the target's
         * vrings; under the frontend's lock, which the {@link TargetWatch} holds while it reconnects.
         */
        synchronized void startTarget(MemoryRegion bounce) {
            synchronized (target) {
                target.start(MemoryTable.of(bounce, ringRegion), targetQueues.toArray(FrontendQueue[]::new));
            }
            bounceRegion = bounce;
        }

        /** Kernel bounce: the VDUSE domain file as region 0, mapped here too (for the status byte of a failure). */
        private void startTargetOnDomain() {
            int fd = vduse.iotlbDomainFd();
            MemoryRegion domain;
            try {
                domain = MemoryRegion.map(fd, true, 0, bounceSize, 0);
            } catch (RuntimeException e) {
                io.github.vduse4j.bindings.FileIo.close(fd);
                throw e;
            }
            domainRegion = domain;
            startTarget(domain);
            System.err.println("vduse4j: bounce buffer: the kernel's, " + (bounceSize >> 20) + " MiB of the VDUSE"
                    + " IOVA domain shared with the target (VDUSE_IOTLB_GET_FD)");
        }

        synchronized void closeDomain() {
            if (domainRegion != null) {
                domainRegion.close();
                domainRegion = null;
            }
        }

        /** Every relay made so far (for the totals). */
        synchronized List<RelayQueueHandler> allRelays() {
            return new ArrayList<>(everyRelay);
        }

        /** The relays serving now (one per started queue). */
        synchronized List<RelayQueueHandler> relays() {
            List<RelayQueueHandler> out = new ArrayList<>();
            for (RelayQueueHandler r : relays) {
                if (r != null) {
                    out.add(r);
                }
            }
            return out;
        }

        @Override
        public int deviceId() {
            return VirtioBlk.DEVICE_ID;
        }

        /** §5.2.3: the target's block features, our ring features (split, indirect, event idx) and MQ. */
        @Override
        public long deviceFeatures() {
            return blockFeatures | bit(VirtioBlk.F_VERSION_1) | bit(VirtioBlk.F_ACCESS_PLATFORM)
                    | bit(VirtioBlk.F_EVENT_IDX) | bit(VirtioBlk.F_INDIRECT_DESC)
                    | (queues > 1 ? bit(VirtioBlk.F_MQ) : 0);
        }

        @Override
        public byte[] configSpace() {
            return config.clone();
        }

        @Override
        public int queueCount() {
            return queues;
        }

        @Override
        public int maxQueueSize() {
            return queueSize;
        }

        @Override
        public synchronized QueueHandler openQueue(int index, long negotiatedFeatures, int size) {
            if (bounceRegion == null) {
                startTargetOnDomain();   // the kernel bounce: the domain file exists now that the rings are mapped
            }
            RelayQueueHandler r = new RelayQueueHandler(targetQueues.get(index), size, maxElements,
                    bounceRegion.segment(), 0, 0, stats.get(index));
            relays[index] = r;
            everyRelay.add(r);
            return r;
        }
    }
}
