package io.github.vduse4j.engine.vduse;

import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Ioctl;
import io.github.vduse4j.bindings.uapi.Uapi;
import io.github.vduse4j.bindings.uapi.vduse_config_data;
import io.github.vduse4j.bindings.uapi.vduse_vq_config;
import io.github.vduse4j.bindings.uapi.vduse_vq_eventfd;
import io.github.vduse4j.bindings.uapi.vduse_vq_info;
import io.github.vduse4j.bindings.uapi.vduse_vq_state_packed;
import io.github.vduse4j.bindings.uapi.vduse_vq_state_split;
import io.github.vduse4j.engine.EventFdKick;
import io.github.vduse4j.engine.IotlbMapCache;
import io.github.vduse4j.engine.PollerSettings;
import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.engine.QueuePoller;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.TransportException;
import io.github.vduse4j.engine.control.LifecycleEvent;
import io.github.vduse4j.engine.VirtioDevice;
import io.github.vduse4j.engine.inflight.PackedInflightTracker;
import io.github.vduse4j.engine.inflight.SplitInflightTracker;
import io.github.vduse4j.engine.inflight.TrackedVirtqueue;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.PackedVirtqueue;
import io.github.vduse4j.ring.SplitVirtqueue;
import io.github.vduse4j.ring.Translation;
import io.github.vduse4j.ring.Virtqueue;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.ArrayList;
import java.util.List;

/**
 * One VDUSE device ({@code /dev/vduse/NAME}) serving a {@link VirtioDevice}: queue setup, kick eventfds, the
 * control thread that answers every {@code vduse_dev_request}, queue pollers started on DRIVER_OK and
 * stopped on reset, IOTLB mappings, interrupts and config updates.
 *
 * <p>Lifecycle (as QEMU's libvduse): {@link #create} (CREATE_DEV, open, VQ_SETUP, kick fds, control thread)
 * -> attach to the vdpa bus ({@link VdpaBus}) -> serve -> detach -> {@link #close()} (stop, DESTROY_DEV).
 * Every failure inside {@link #create} destroys what it made, so no half-created device is left behind.
 */
public final class VduseDevice implements AutoCloseable {
    /** virtio 1.2 §2.1 device status bits. */
    static final int STATUS_DRIVER_OK = 4;

    private static final Ioctl.Request VQ_SETUP = Ioctl.request("VDUSE_VQ_SETUP", Uapi.VDUSE_VQ_SETUP());
    private static final Ioctl.Request VQ_SETUP_KICKFD =
            Ioctl.request("VDUSE_VQ_SETUP_KICKFD", Uapi.VDUSE_VQ_SETUP_KICKFD());
    private static final Ioctl.Request VQ_GET_INFO = Ioctl.request("VDUSE_VQ_GET_INFO", Uapi.VDUSE_VQ_GET_INFO());
    private static final Ioctl.Request DEV_GET_FEATURES =
            Ioctl.request("VDUSE_DEV_GET_FEATURES", Uapi.VDUSE_DEV_GET_FEATURES());
    private static final Ioctl.Request DEV_SET_CONFIG =
            Ioctl.request("VDUSE_DEV_SET_CONFIG", Uapi.VDUSE_DEV_SET_CONFIG());
    private static final Ioctl.Request DEV_INJECT_CONFIG_IRQ =
            Ioctl.request("VDUSE_DEV_INJECT_CONFIG_IRQ", Uapi.VDUSE_DEV_INJECT_CONFIG_IRQ());
    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Default queue alignment told to the kernel (VDUSE_CREATE_DEV vq_align): one page, as libvduse. */
    public static final int VQ_ALIGN = 4096;
    /** IOTLB entries cached at most (libvduse keeps up to 256). */
    static final int MAX_IOTLB_ENTRIES = 1024;

    private final VduseControl control;
    private final String name;
    private final VirtioDevice device;
    private final int fd;
    private final EventFdKick[] kicks;
    private final IotlbMapCache iotlb;
    private final QueuePoller[] pollers;
    private final QueueState[] saved;
    private final VduseRequestLoop loop;
    private final PollerSettings pollerSettings;
    private final HugepageBounceBuffer bounce;
    private final VduseIotlbSource iotlbSource;
    private final ReconnectLog log;
    /** IOVA ranges {@code [start, last]} of the ring areas the running queues hold segments of (control thread). */
    private final List<long[]> ringAreas = new ArrayList<>();
    /** Set while a takeover waits for its first completion: when it began (System.nanoTime). */
    private volatile long takeoverStart;
    private long negotiatedFeatures;
    private boolean started;
    private boolean closed;

    /** Last known ring state of a queue, kept across IOTLB remaps and reported after a stop. */
    record QueueState(int availIndex, boolean availWrap, int usedIndex, boolean usedWrap) {
        static final QueueState ZERO = new QueueState(0, true, 0, true);
    }

    private VduseDevice(VduseControl control, String name, VirtioDevice device, int fd, EventFdKick[] kicks,
            PollerSettings pollerSettings, HugepageBounceBuffer bounce, ReconnectLog log) {
        this.control = control;
        this.log = log;
        this.pollerSettings = pollerSettings;
        this.bounce = bounce;
        this.name = name;
        this.device = device;
        this.fd = fd;
        this.kicks = kicks;
        this.iotlbSource = new VduseIotlbSource(fd, bounce);
        this.iotlb = new IotlbMapCache(iotlbSource, MAX_IOTLB_ENTRIES);
        this.pollers = new QueuePoller[device.queueCount()];
        this.saved = new QueueState[device.queueCount()];
        this.loop = new VduseRequestLoop(new VduseRequestLoop.Device() {
            @Override public String name() { return VduseDevice.this.name(); }
            @Override public long negotiatedFeatures() { return VduseDevice.this.negotiatedFeatures(); }
            @Override public boolean onSetStatus(int status) { return VduseDevice.this.onSetStatus(status); }
            @Override public QueueState onGetVqState(int index) { return VduseDevice.this.onGetVqState(index); }
            @Override public boolean onUpdateIotlb(long start, long last) {
                return VduseDevice.this.onUpdateIotlb(start, last);
            }
        }, fd);
    }

    /**
     * Creates {@code /dev/vduse/NAME} for {@code device}, sets up its queues and starts answering the kernel.
     * The device is not yet on the vdpa bus: attach it with {@link VdpaBus#attach}. On success the device
     * owns {@code control} (it destroys the device through it and closes it) and {@code bounce}; on failure the
     * caller keeps them.
     *
     * @param bounce a hugepage bounce buffer to register with VDUSE_IOTLB_REG_UMEM, or null for the kernel's own
     */
    public static VduseDevice create(VduseControl control, String name, VirtioDevice device,
            PollerSettings pollerSettings, HugepageBounceBuffer bounce) {
        return create(control, name, device, pollerSettings, bounce, 0, null);
    }

    /**
     * As {@link #create(VduseControl, String, VirtioDevice, PollerSettings, HugepageBounceBuffer)}, with the
     * kernel's bounce buffer sized {@code bounceSize} bytes (sysfs bounce_size, before attach; 0 keeps the
     * kernel's 64 MiB; a hugepage {@code bounce} sets the size to its own, as REG_UMEM must cover the whole region),
     * and logging every queue into {@code log} (a fresh one; null: none) so that another process can take the
     * device over ({@link #reconnect}). On success the device owns the log; on failure the caller keeps it.
     */
    public static VduseDevice create(VduseControl control, String name, VirtioDevice device,
            PollerSettings pollerSettings, HugepageBounceBuffer bounce, long bounceSize, ReconnectLog log) {
        if (bounce != null && bounceSize > 0 && bounceSize != bounce.size()) {
            throw new TransportException("--bounce-size " + bounceSize + " differs from the hugepage bounce buffer's "
                    + bounce.size() + " bytes: give one size");
        }
        if (bounceSize > 0) {
            VduseKernelFeatures.checkBounceSize(bounceSize);
        }
        control.createDevice(name, device.deviceId(), offeredFeatures(device), device.queueCount(), VQ_ALIGN,
                device.configSpace());
        int fd = -1;
        List<EventFdKick> kicks = new ArrayList<>();
        try {
            if (bounce != null || bounceSize > 0) {
                setBounceSize(name, bounce != null ? bounce.size() : bounceSize);
            }
            fd = openDeviceFile(name);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment cfg = arena.allocate(vduse_vq_config.layout());
                for (int i = 0; i < device.queueCount(); i++) {
                    cfg.fill((byte) 0);
                    vduse_vq_config.index(cfg, i);
                    vduse_vq_config.max_size(cfg, (short) device.maxQueueSize());
                    Ioctl.ioctl(fd, VQ_SETUP, cfg);
                    kicks.add(new EventFdKick());
                }
            }
            VduseDevice dev = new VduseDevice(control, name, device, fd, kicks.toArray(new EventFdKick[0]),
                    pollerSettings, bounce, log);
            dev.loop.start();
            return dev;
        } catch (RuntimeException e) {
            kicks.forEach(EventFdKick::close);
            if (fd >= 0) {
                FileIo.close(fd);
            }
            try {
                control.destroyDevice(name);
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e instanceof TransportException ? e
                    : new TransportException("cannot set up VDUSE device '" + name + "': " + e.getMessage(), e);
        }
    }

    /**
     * Takes over {@code /dev/vduse/NAME}, left by a process that died or stopped for an upgrade, whose
     * {@code log} matched this export: opens the device file again (EBUSY while the old process is still exiting),
     * and if the driver runs the device rebuilds every queue from the rings and the log, resubmits what was in
     * flight (oldest first), hands the kernel new kick eventfds (kicks sent meanwhile went to the old, dead one),
     * starts the pollers (each polls its ring at once) and injects one interrupt per queue. The device stays on the
     * vdpa bus; the kernel resends the control messages nobody answered. No create, setup or attach. On success the
     * device owns {@code control}, {@code bounce} and {@code log}; on failure the caller keeps them and nothing was
     * changed in the kernel.
     *
     * @throws TransportException with one line, naming {@code vduse4j destroy --name NAME} when the log cannot be used
     */
    public static VduseDevice reconnect(VduseControl control, String name, VirtioDevice device,
            PollerSettings pollerSettings, HugepageBounceBuffer bounce, ReconnectLog log) {
        long begin = System.nanoTime();
        int fd = openForTakeover(name);
        List<EventFdKick> kicks = new ArrayList<>();
        try {
            for (int i = 0; i < device.queueCount(); i++) {
                kicks.add(new EventFdKick());
            }
            VduseDevice dev = new VduseDevice(control, name, device, fd, kicks.toArray(new EventFdKick[0]),
                    pollerSettings, bounce, log);
            int state = log.state();
            if (state == ReconnectLog.STATE_RUNNING || state == ReconnectLog.STATE_UPGRADE_STOP) {
                synchronized (dev) {
                    dev.takeoverStart = begin;
                    try {
                        dev.recoverQueues(state == ReconnectLog.STATE_UPGRADE_STOP);
                    } catch (RuntimeException e) {
                        dev.stopQueues();
                        throw e;
                    }
                }
            }
            dev.loop.start();
            if (dev.started) {
                for (int i = 0; i < device.queueCount(); i++) {
                    if (dev.pollers[i] != null) {
                        new VduseIrq(fd, i).notifyDriver(); // completions the old process published but never signalled
                    }
                }
            }
            LifecycleEvent.report(name, "reconnect", dev.started ? "queues recovered" : "driver not running");
            return dev;
        } catch (RuntimeException e) {
            kicks.forEach(EventFdKick::close);
            FileIo.close(fd);
            throw e instanceof TransportException ? e
                    : new TransportException("cannot take over VDUSE device '" + name + "': " + e.getMessage(), e);
        }
    }

    /** Opens /dev/vduse/NAME for a takeover: EBUSY while the old process still holds it, so retry for ~10 s. */
    private static int openForTakeover(String name) {
        String path = VduseControl.DEVICE_DIR.resolve(name).toString();
        for (int attempt = 0; ; attempt++) {
            try {
                return FileIo.open(path, FileIo.O_RDWR | FileIo.O_CLOEXEC);
            } catch (ErrnoException e) {
                if (e.errno() != Errno.EBUSY || attempt >= 500) {
                    throw new TransportException("cannot open " + path + (e.errno() == Errno.EBUSY
                            ? ": another process still serves it (EBUSY); stop it first" : ": " + e.getMessage()), e);
                }
                sleepMillis(20);
            }
        }
    }

    /**
     * The features a VDUSE device offers: {@link VirtioDevice#deviceFeatures()} only, never
     * {@link VirtioDevice#configWriteFeatures()}. The kernel does not forward the driver's config writes to
     * userspace (Linux 6.1 {@code vduse_vdpa_set_config} is empty), so a feature that makes a config field writable
     * (VIRTIO_BLK_F_CONFIG_WCE) would let the driver believe in a write that never arrived.
     */
    public static long offeredFeatures(VirtioDevice device) {
        return device.deviceFeatures() & ~device.configWriteFeatures();
    }

    /**
     * Linux 6.4+ lets the bounce size be set in sysfs before the device is attached; 6.1 fixes it at 64 MiB, and
     * VDUSE_IOTLB_REG_UMEM must cover exactly the bounce region.
     */
    private static void setBounceSize(String name, long size) {
        VduseKernelFeatures k = VduseKernelFeatures.system();
        if (k.bounceSizeSettable(name)) {
            k.setBounceSize(name, size);
        } else if (size != HugepageBounceBuffer.DEFAULT_SIZE) {
            throw new TransportException(VduseKernelFeatures.bounceUnavailable());
        }
    }

    /** Opens /dev/vduse/NAME; devtmpfs creates the node asynchronously, so wait for it briefly. */
    private static int openDeviceFile(String name) {
        String path = VduseControl.DEVICE_DIR.resolve(name).toString();
        for (int attempt = 0; ; attempt++) {
            try {
                return FileIo.open(path, FileIo.O_RDWR | FileIo.O_CLOEXEC);
            } catch (ErrnoException e) {
                if (e.errno() != Errno.ENOENT || attempt >= 100) {
                    throw new TransportException("cannot open " + path + ": " + e.getMessage(), e);
                }
                sleepMillis(20);
            }
        }
    }

    public String name() {
        return name;
    }

    public VirtioDevice device() {
        return device;
    }

    /** Features the driver accepted; 0 before DRIVER_OK. */
    public synchronized long negotiatedFeatures() {
        return negotiatedFeatures;
    }

    /** Snapshot of each running queue's counters (index -> stats), for monitoring. */
    public synchronized List<QueueStats> stats() {
        List<QueueStats> out = new ArrayList<>();
        for (QueuePoller p : pollers) {
            out.add(p == null ? new QueueStats() : p.handler().stats());
        }
        return out;
    }

    /**
     * The hugepage bounce buffer once the kernel uses it (after the driver's first data transfer): every data
     * buffer the driver sends lies in it, so a storage stack can register it once (NVMe, RDMA, io_uring fixed
     * buffers) and do I/O without copies.
     */
    public Optional<MemorySegment> bounceBuffer() {
        return bounce != null && iotlbSource.bounceRegistered() ? Optional.of(bounce.segment()) : Optional.empty();
    }

    /**
     * The file of the device's IOVA domain (the kernel bounce region at offset = IOVA, see
     * {@code VduseIotlbSource.domainFd}), once the driver set up its rings; the caller owns the fd. For a process
     * that must see the bounce pages without VDUSE_IOTLB_REG_UMEM (the vhost-user bridge's {@code --bounce kernel}).
     */
    public int iotlbDomainFd() {
        return iotlbSource.domainFd();
    }

    /** Why a requested hugepage bounce buffer is not in use, if it is not. */
    public Optional<String> bounceFailure() {
        return Optional.ofNullable(iotlbSource.bounceFailure());
    }

    /** True while the driver has the device running (after DRIVER_OK, before reset). */
    public synchronized boolean isStarted() {
        return started;
    }

    // ---- requests from the kernel (control thread) ----

    /** SET_STATUS: DRIVER_OK starts the queues, 0 resets the device. Returns false to answer FAILED. */
    synchronized boolean onSetStatus(int status) {
        if ((status & STATUS_DRIVER_OK) != 0 && !started) {
            try {
                startQueues(null);
                if (log != null) {
                    log.running(negotiatedFeatures, status);
                }
                LifecycleEvent.report(name, "driver-ok", "features 0x" + Long.toHexString(negotiatedFeatures));
            } catch (RuntimeException e) {
                System.err.println("vduse4j: " + name + ": cannot start queues: " + e.getMessage());
                stopQueues();
                return false;
            }
        } else if (status == 0) {
            LifecycleEvent.report(name, "reset", "");
            stopQueues();
            if (log != null) {
                log.reset();
            }
            iotlb.clear();
            java.util.Arrays.fill(saved, null);
            negotiatedFeatures = 0;
        }
        return true;
    }

    /** GET_VQ_STATE: the ring position of queue {@code index}, paused while it is read. */
    synchronized QueueState onGetVqState(int index) {
        if (index < 0 || index >= pollers.length) {
            return null;
        }
        QueuePoller p = pollers[index];
        if (p == null) {
            return saved[index] == null ? QueueState.ZERO : saved[index];
        }
        p.pause();
        try {
            return stateOf(p.queue());
        } finally {
            p.resume();
        }
    }

    /**
     * UPDATE_IOTLB: mappings of {@code [start, last]} may have changed (linux/vduse.h VDUSE_UPDATE_IOTLB; the
     * kernel waits for the reply, which goes out after this returns, so every stale mapping is unmapped before).
     * On vhost-vdpa the range is always the whole IOVA space (Linux 6.1 and 6.12 vduse_vdpa_set_map sends 0 ..
     * ULLONG_MAX for every map change), so the range alone would drop every mapping, rings included. Instead each
     * cached entry of the range is checked against the kernel's IOTLB ({@link IotlbMapCache#revalidate}); only the
     * entries that changed are taken out, so new translations of their IOVAs map the kernel's new entry. Then:
     * <ul>
     * <li>nothing stale: no poller can hold a stale translation; nothing to do;</li>
     * <li>stale data buffers only: every queue pauses, which drains its in-flight requests (a request popped before
     *     the table changed may still use an old mapping), the stale mappings are unmapped, the queues go on where
     *     they were (same rings, same threads);</li>
     * <li>a ring area in a stale entry (its queue keeps a segment of it): every queue stops (draining), the stale
     *     mappings are unmapped, and the queues restart from their saved positions with fresh ring translations.</li>
     * </ul>
     */
    synchronized boolean onUpdateIotlb(long start, long last) {
        String range = "0x" + Long.toHexString(start) + "-0x" + Long.toHexString(last);
        if (!started) {
            LifecycleEvent.report(name, "iotlb-update", range + ": " + iotlb.invalidate(start, last) + " unmapped");
            return true;
        }
        IotlbMapCache.Stale stale = iotlb.revalidate(start, last);
        if (stale.isEmpty()) {
            LifecycleEvent.report(name, "iotlb-update", range + ": nothing stale");
            return true;
        }
        boolean rings = ringsIn(stale);
        LifecycleEvent.report(name, "iotlb-update", range + ": " + stale.size() + " stale"
                + (rings ? ", a ring among them: queues restart" : ", data only: queues drain and go on"));
        if (!rings) {
            for (QueuePoller p : pollers) {
                if (p != null) {
                    p.pause(); // returns once its in-flight requests completed
                }
            }
            stale.release();
            for (QueuePoller p : pollers) {
                if (p != null) {
                    p.resume();
                }
            }
            return true;
        }
        QueueState[] states = new QueueState[pollers.length];
        for (int i = 0; i < pollers.length; i++) {
            if (pollers[i] != null) {
                states[i] = stateOf(quiesce(i));
            }
        }
        stopQueues();
        stale.release();
        try {
            startQueues(states);
            return true;
        } catch (RuntimeException e) {
            System.err.println("vduse4j: " + name + ": cannot restart queues after IOTLB update: " + e.getMessage());
            stopQueues();
            return false;
        }
    }

    /** Whether a stale entry holds a ring area of a running queue. */
    private boolean ringsIn(IotlbMapCache.Stale stale) {
        for (long[] area : ringAreas) {
            if (stale.overlaps(area[0], area[1])) {
                return true;
            }
        }
        return false;
    }

    private Virtqueue quiesce(int i) {
        pollers[i].pause();
        return pollers[i].queue();
    }

    private static QueueState stateOf(Virtqueue q) {
        return new QueueState(q.lastAvailIndex(), q.lastAvailWrapCounter(), q.lastUsedIndex(), q.lastUsedWrapCounter());
    }

    private void startQueues(QueueState[] states) {
        long features;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment f = arena.allocate(ValueLayout.JAVA_LONG);
            Ioctl.ioctl(fd, DEV_GET_FEATURES, f);
            features = f.get(ValueLayout.JAVA_LONG, 0);
            negotiatedFeatures = features;
            boolean packed = (features & (1L << Uapi.VIRTIO_F_RING_PACKED())) != 0;
            boolean eventIdx = (features & (1L << Uapi.VIRTIO_RING_F_EVENT_IDX())) != 0;
            boolean indirect = (features & (1L << Uapi.VIRTIO_RING_F_INDIRECT_DESC())) != 0;
            MemorySegment info = arena.allocate(vduse_vq_info.layout());
            for (int i = 0; i < pollers.length; i++) {
                info.fill((byte) 0);
                vduse_vq_info.index(info, i);
                Ioctl.ioctl(fd, VQ_GET_INFO, info);
                if (vduse_vq_info.ready(info) == 0) {
                    continue; // the driver did not enable this queue
                }
                int num = vduse_vq_info.num(info);
                if (num <= 0 || num > device.maxQueueSize()) {
                    throw new TransportException("queue " + i + ": driver set size " + num + " beyond the maximum "
                            + device.maxQueueSize());
                }
                Virtqueue vq;
                if (packed) {
                    MemorySegment desc = ring(i, "descriptor ring", vduse_vq_info.desc_addr(info), 16L * num,
                            GuestMemory.READ | GuestMemory.WRITE);
                    MemorySegment drv = ring(i, "driver event", vduse_vq_info.driver_addr(info), 4, GuestMemory.READ);
                    MemorySegment dev = ring(i, "device event", vduse_vq_info.device_addr(info), 4, GuestMemory.WRITE);
                    PackedVirtqueue pq = new PackedVirtqueue(num, desc, drv, dev, iotlb, eventIdx, indirect);
                    QueueState s = states != null && states[i] != null ? states[i] : packedState(info);
                    pq.restore(s.availIndex(), s.availWrap(), s.usedIndex(), s.usedWrap());
                    vq = pq;
                    if (log != null) { // drained (or fresh): nothing in flight, the log starts at the used position
                        PackedInflightTracker t = new PackedInflightTracker(
                                log.formatQueue(i, num, true, s.usedIndex(), s.usedWrap()), num);
                        t.recover(desc); // hands it the descriptor ring it copies lists from
                        vq = new TrackedVirtqueue(i, pq, t, null, null);
                    }
                } else {
                    MemorySegment desc = ring(i, "descriptor table", vduse_vq_info.desc_addr(info), 16L * num,
                            GuestMemory.READ);
                    MemorySegment avail = ring(i, "avail ring", vduse_vq_info.driver_addr(info), 6 + 2L * num,
                            GuestMemory.READ);
                    MemorySegment used = ring(i, "used ring", vduse_vq_info.device_addr(info), 6 + 8L * num,
                            GuestMemory.WRITE);
                    SplitVirtqueue sq = new SplitVirtqueue(num, desc, avail, used, iotlb, eventIdx, indirect);
                    QueueState s = states != null && states[i] != null ? states[i] : new QueueState(
                            Short.toUnsignedInt(vduse_vq_state_split.avail_index(vduse_vq_info.split(info))), true,
                            Short.toUnsignedInt(used.get(LE_SHORT, 2)), true);
                    sq.restore(s.availIndex(), true, s.usedIndex(), true);
                    vq = sq;
                    if (log != null) { // the log's used_idx must be the ring's, or recovery would clear a batch
                        vq = new TrackedVirtqueue(i, sq, new SplitInflightTracker(
                                log.formatQueue(i, num, false, sq.usedIndexInRing(), true), num), null, null);
                    }
                }
                // The kernel drops kick eventfds on every reset (vduse_dev_reset), so hand ours over again
                // now; a kick that came before is replayed by the kernel into the eventfd.
                MemorySegment efd = arena.allocate(vduse_vq_eventfd.layout());
                vduse_vq_eventfd.index(efd, i);
                vduse_vq_eventfd.fd(efd, kicks[i].fd());
                Ioctl.ioctl(fd, VQ_SETUP_KICKFD, efd);
                QueueHandler handler = device.openQueue(i, features, num);
                pollers[i] = new QueuePoller(i, vq, handler, kicks[i], new VduseIrq(fd, i), pollerSettings);
            }
        }
        for (QueuePoller p : pollers) {
            if (p != null) {
                p.start();
            }
        }
        started = true;
    }

    /**
     * Takeover: every ready queue rebuilt from its ring and its log region. The kernel's VDUSE_VQ_GET_INFO gives the
     * ring addresses and size, but its positions are only what virtio-vdpa set at queue setup, so: split, the avail
     * position is {@code used->idx} plus the heads logged in flight (every chain popped was used or is one of them,
     * as libvduse's {@code vduse_queue_check_inflights}); packed, there is no index in shared memory at all, so used
     * position and wrap counter come from the log, and the avail position is that plus every descriptor logged in
     * flight (§2.8.1), whose lists are resubmitted from the log's copies. Any log region that does not make sense
     * refuses the takeover.
     */
    private void recoverQueues(boolean drained) {
        long features;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment f = arena.allocate(ValueLayout.JAVA_LONG);
            Ioctl.ioctl(fd, DEV_GET_FEATURES, f);
            features = f.get(ValueLayout.JAVA_LONG, 0);
            if (features != log.negotiatedFeatures()) {
                throw refuse("the driver's features 0x" + Long.toHexString(features) + " are not the logged 0x"
                        + Long.toHexString(log.negotiatedFeatures()));
            }
            negotiatedFeatures = features;
            boolean packed = (features & (1L << Uapi.VIRTIO_F_RING_PACKED())) != 0;
            boolean eventIdx = (features & (1L << Uapi.VIRTIO_RING_F_EVENT_IDX())) != 0;
            boolean indirect = (features & (1L << Uapi.VIRTIO_RING_F_INDIRECT_DESC())) != 0;
            MemorySegment info = arena.allocate(vduse_vq_info.layout());
            StringBuilder report = new StringBuilder();
            for (int i = 0; i < pollers.length; i++) {
                info.fill((byte) 0);
                vduse_vq_info.index(info, i);
                Ioctl.ioctl(fd, VQ_GET_INFO, info);
                if (vduse_vq_info.ready(info) == 0) {
                    continue;
                }
                int num = vduse_vq_info.num(info);
                if (num != log.ringSize(i)) {
                    throw refuse("queue " + i + " has " + num + " entries, the log " + log.ringSize(i));
                }
                QueueRecovery.Result r;
                try {
                    if (packed) {
                        r = QueueRecovery.packed(i, num,
                                ring(i, "descriptor ring", vduse_vq_info.desc_addr(info), 16L * num,
                                        GuestMemory.READ | GuestMemory.WRITE),
                                ring(i, "driver event", vduse_vq_info.driver_addr(info), 4, GuestMemory.READ),
                                ring(i, "device event", vduse_vq_info.device_addr(info), 4, GuestMemory.WRITE),
                                iotlb, eventIdx, indirect, log.region(i), this::firstCompletion);
                    } else {
                        r = QueueRecovery.split(i, num,
                                ring(i, "descriptor table", vduse_vq_info.desc_addr(info), 16L * num, GuestMemory.READ),
                                ring(i, "avail ring", vduse_vq_info.driver_addr(info), 6 + 2L * num, GuestMemory.READ),
                                ring(i, "used ring", vduse_vq_info.device_addr(info), 6 + 8L * num, GuestMemory.WRITE),
                                iotlb, eventIdx, indirect, log.region(i), this::firstCompletion);
                    }
                } catch (IllegalStateException e) {
                    throw refuse(e.getMessage());
                }
                int resubmitted = r.resubmitted();
                report.append(' ').append(r.report()).append(';');
                if (drained && resubmitted > 0) {
                    System.err.println("vduse4j: " + name + ": queue " + i + ": the log of an upgrade stop still holds "
                            + resubmitted + " requests in flight; resubmitting them");
                }
                Virtqueue vq = r.queue();
                MemorySegment efd = arena.allocate(vduse_vq_eventfd.layout());
                vduse_vq_eventfd.index(efd, i);
                vduse_vq_eventfd.fd(efd, kicks[i].fd());
                Ioctl.ioctl(fd, VQ_SETUP_KICKFD, efd); // kicks sent while nobody listened went to the dead eventfd
                QueueHandler handler = device.openQueue(i, features, num);
                pollers[i] = new QueuePoller(i, vq, handler, kicks[i], new VduseIrq(fd, i), pollerSettings);
            }
            System.err.println("vduse4j: " + name + ": took over the device (" + (packed ? "packed" : "split")
                    + (drained ? ", after an upgrade stop" : ", after a crash") + "):" + report);
        }
        for (QueuePoller p : pollers) {
            if (p != null) {
                p.start(); // its first pass polls the ring: no kick needed
            }
        }
        started = true;
        log.running(negotiatedFeatures, log.deviceStatus());
    }

    private TransportException refuse(String problem) {
        return new TransportException("cannot take over VDUSE device '" + name + "': " + problem
                + "; remove it with vduse4j destroy --name " + name + " and export again");
    }

    /** Poller thread, once per queue after a takeover: the first completion the driver can see. */
    private void firstCompletion(int queue) {
        long begin = takeoverStart;
        if (begin == 0) {
            return;
        }
        long sinceTakeover = (System.nanoTime() - begin) / 1_000_000;
        String sinceStart = ProcessHandle.current().info().startInstant()
                .map(t -> java.time.Duration.between(t, java.time.Instant.now()).toMillis() + " ms after the process started, ")
                .orElse("");
        System.err.println("vduse4j: " + name + ": queue " + queue + ": first request completed " + sinceStart
                + sinceTakeover + " ms after the takeover began");
    }

    private static QueueState packedState(MemorySegment info) {
        MemorySegment p = vduse_vq_info.packed(info);
        return new QueueState(
                Short.toUnsignedInt(vduse_vq_state_packed.last_avail_idx(p)) & 0x7fff,
                (vduse_vq_state_packed.last_avail_counter(p) & 1) != 0,
                Short.toUnsignedInt(vduse_vq_state_packed.last_used_idx(p)) & 0x7fff,
                (vduse_vq_state_packed.last_used_counter(p) & 1) != 0);
    }

    /** Translates one ring area; it must be mapped whole and contiguous. Recorded in {@link #ringAreas}. */
    private MemorySegment ring(int queue, String what, long iova, long size, int access) {
        Translation t = new Translation();
        if (!iotlb.translate(iova, size, access, t) || t.length != size) {
            throw new TransportException("queue " + queue + ": " + what + " at iova 0x" + Long.toHexString(iova)
                    + " (" + size + " bytes) is not mapped");
        }
        ringAreas.add(new long[] {iova, iova + size - 1});
        return t.segment.asSlice(t.offset, size);
    }

    private void stopQueues() {
        ringAreas.clear();
        for (int i = 0; i < pollers.length; i++) {
            QueuePoller p = pollers[i];
            if (p != null) {
                p.stop();
                saved[i] = stateOf(p.queue());
                p.handler().close();
                pollers[i] = null;
            }
        }
        started = false;
    }

    // ---- to the driver ----

    /**
     * The device's capacity changed (a resize): recorded in the reconnect log, if any, so that the process taking the
     * device over after a crash or an upgrade stop matches it. Call before {@link #updateConfig} tells the driver.
     */
    public void capacityChanged(long bytes) {
        if (log != null) {
            log.capacity(bytes);
        }
    }

    /**
     * Replaces the config space the driver reads (VDUSE_DEV_SET_CONFIG) and raises a config interrupt
     * (VDUSE_DEV_INJECT_CONFIG_IRQ), e.g. after a resize.
     */
    public void updateConfig(byte[] config) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment c = arena.allocate(vduse_config_data.layout().byteSize() + config.length, 8);
            vduse_config_data.offset(c, 0);
            vduse_config_data.length(c, config.length);
            MemorySegment.copy(config, 0, c, ValueLayout.JAVA_BYTE, vduse_config_data.buffer$offset(), config.length);
            Ioctl.ioctl(fd, DEV_SET_CONFIG, c);
            Ioctl.ioctl(fd, DEV_INJECT_CONFIG_IRQ);
        } catch (ErrnoException e) {
            throw new TransportException("cannot update the config space of '" + name + "': " + e.getMessage(), e);
        }
    }

    /**
     * Stops the control thread and the queues, closes the device file and destroys the device. Detach it
     * from the vdpa bus first (the kernel resets the device through the control thread while detaching).
     */
    @Override
    public void close() {
        if (!release(false)) {
            return;
        }
        try {
            control.destroyDevice(name);
            if (log != null) {
                log.delete(); // the device is gone: nothing left to take over
            }
        } finally {
            control.close();
        }
    }

    /**
     * Stops the control thread and the queues (draining them), then closes the kick eventfds, the device file and
     * the bounce buffer; with {@code upgrade} the log is marked drained first. False if already closed.
     */
    private boolean release(boolean upgrade) {
        synchronized (this) {
            if (closed) {
                return false;
            }
            closed = true;
        }
        loop.stop();
        synchronized (this) {
            boolean running = started;
            stopQueues();
            iotlb.clear();
            if (upgrade && running) {
                log.upgradeStop();
            }
        }
        for (EventFdKick k : kicks) {
            k.close();
        }
        FileIo.close(fd); // the kernel unpins a registered bounce buffer here (vduse_dev_release)
        if (bounce != null) {
            bounce.close();
        }
        return true;
    }

    /**
     * Upgrade stop: the queues stop taking requests and drain what is in flight (every completion published and
     * logged), the log is marked drained and kept, the device file is closed, and the device stays in the kernel
     * and on the vdpa bus for the next process to {@link #reconnect}. Without a log this is refused.
     */
    public void upgradeStop() {
        if (log == null) {
            throw new IllegalStateException("no reconnect log: an upgrade stop would leave a device nobody can serve");
        }
        if (release(true)) {
            log.close();
            control.close();
        }
    }

    /** True once /dev/vduse/NAME is gone (after {@link #close()}). */
    public boolean isDestroyed() {
        return !Files.exists(VduseControl.DEVICE_DIR.resolve(name));
    }

    private static void sleepMillis(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new TransportException("interrupted", e);
        }
    }
}
