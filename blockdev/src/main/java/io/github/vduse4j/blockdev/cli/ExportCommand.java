package io.github.vduse4j.blockdev.cli;

import io.github.vduse4j.blockdev.BlockExport;
import io.github.vduse4j.blockdev.bridge.VhostUserBridge;
import io.github.vduse4j.blockdev.backend.BlockBackend;
import io.github.vduse4j.blockdev.backend.FaultInjectingBackend;
import io.github.vduse4j.blockdev.backend.IoUringFileBackend;
import io.github.vduse4j.blockdev.backend.MemoryBackend;
import io.github.vduse4j.blockdev.backend.NullBackend;
import io.github.vduse4j.blockdev.backend.RbdBackend;
import io.github.vduse4j.engine.PollMode;
import io.github.vduse4j.engine.PollerSettings;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.vduse.VdpaBus;
import io.github.vduse4j.engine.vduse.VduseKernelFeatures;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code vduse4j export}: serves a file, a RAM disk or a null device as a virtio-blk device and prints the
 * {@code /dev/vdX} it became. SIGINT/SIGTERM detach, destroy and exit 0; SIGHUP re-reads the size (resize).
 * With {@code --transport vhost-user --socket PATH} it serves a vhost-user-blk back-end on PATH instead (for a
 * VM's {@code vhost-user-blk-pci} or {@code vduse4j bench}) and prints PATH.
 */
@Command(name = "export", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Export a file, a Ceph RBD image, a RAM disk or a null device as a virtio-blk device over VDUSE or vhost-user.")
final class ExportCommand implements Callable<Integer> {

    static final class Source {
        @Option(names = "--null", paramLabel = "SIZE", converter = SizeParser.class,
                description = "a device of SIZE that stores nothing (e.g. 1G)")
        Long nullSize;

        @Option(names = "--memory", paramLabel = "SIZE", converter = SizeParser.class,
                description = "a RAM disk of SIZE")
        Long memorySize;

        @Option(names = "--file", paramLabel = "PATH", description = "a regular file or block device")
        Path file;

        @Option(names = "--vhost-user-target", paramLabel = "SOCKET",
                description = "bridge an existing vhost-user-blk target (qemu-storage-daemon, SPDK) listening on SOCKET,"
                        + " zero copy through the shared bounce buffer (--bounce hugepages[:SIZE], which SPDK needs, or"
                        + " the kernel's pages)")
        Path vhostUserTarget;

        @Option(names = "--rbd", paramLabel = "POOL/IMAGE[@SNAP]",
                description = "a Ceph RBD image through librbd (a snapshot needs --readonly)")
        String rbd;
    }

    @Option(names = "--ceph-conf", paramLabel = "PATH",
            description = "--rbd: ceph.conf (default: $CEPH_CONF, then /etc/ceph/ceph.conf)")
    Path cephConf;

    @Option(names = "--ceph-id", paramLabel = "NAME", description = "--rbd: client name without 'client.' (default: admin)")
    String cephId;

    @Option(names = "--ceph-timeout", paramLabel = "SECONDS", defaultValue = "10",
            description = "--rbd: bound of the cluster connect and monitor operations (default: ${DEFAULT-VALUE})")
    int cephTimeout;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    @Option(names = "--name", description = "the export's name: the VDUSE device name, and NAME in the run directory"
            + " (default: vduse4j0; for vhost-user the socket's file name without extension)")
    String name;

    @CommandLine.Mixin
    RunDirOption run;

    @Option(names = "--metrics", paramLabel = "[HOST:]PORT",
            description = "serve Prometheus metrics at http://HOST:PORT/metrics (HOST defaults to 127.0.0.1)")
    String metrics;

    @Option(names = "--slow-request-ms", paramLabel = "MS",
            description = "report requests slower than MS as JFR vduse4j.SlowRequest events (default: 100)")
    double slowRequestMillis = 100;

    @Option(names = "--readonly", description = "refuse writes (VIRTIO_BLK_F_RO)")
    boolean readOnly;

    @Option(names = "--queues", defaultValue = "1", description = "request queues (default: ${DEFAULT-VALUE})")
    int queues;

    @Option(names = "--queue-size", defaultValue = "256", description = "entries per queue, a power of two (default: ${DEFAULT-VALUE})")
    int queueSize;

    @Option(names = "--block-size", defaultValue = "512", description = "logical block size, 512 or 4096 (default: ${DEFAULT-VALUE})")
    int blockSize;

    @Option(names = "--serial", defaultValue = "vduse4j", description = "serial number the driver reads (max 20 chars)")
    String serial;

    @Option(names = "--packed", description = "offer the packed virtqueue layout (VIRTIO_F_RING_PACKED)")
    boolean packed;

    @Option(names = "--reconnect-log", paramLabel = "PATH",
            description = "VDUSE: the inflight log that lets a restart take the device over after a crash or an"
                    + " upgrade stop (SIGUSR1) (default: RUN_DIR/NAME/inflight)")
    Path reconnectLog;

    @Option(names = "--no-attach", description = "create the VDUSE device but do not add it to the vdpa bus")
    boolean noAttach;

    @Option(names = "--vdpa-driver", defaultValue = "virtio_vdpa", paramLabel = "virtio_vdpa|vhost_vdpa",
            description = "vdpa bus driver to bind: virtio_vdpa (a local /dev/vdX, default) or vhost_vdpa"
                    + " (/dev/vhost-vdpa-N for a VMM or vduse4j bench --vhost-vdpa)")
    String vdpaDriver;

    @Option(names = "--poll", paramLabel = "busy|adaptive|inflight|event|coalesce",
            description = "how queue threads wait for requests: busy (spin, one CPU each), adaptive (spin a"
                    + " self-tuning while, then sleep; default), inflight (spin while requests are outstanding at the"
                    + " backend, its completion signals off, adaptive when none are; the default with"
                    + " --vhost-user-target), event (sleep on the kick at once) or coalesce (while requests come"
                    + " faster than --coalesce-us apart, sleep that long without kicks and serve all that came; CPU"
                    + " first)")
    String poll;

    @Option(names = "--coalesce-us", paramLabel = "US",
            description = "--poll coalesce: the timer sleep, in microseconds (1..10000; default: "
                    + PollerSettings.COALESCE_NANOS / 1000 + ")")
    Long coalesceMicros;

    @Option(names = "--max-spin-us", defaultValue = "512", paramLabel = "US",
            description = "adaptive polling: longest spin before sleeping, in microseconds (default: ${DEFAULT-VALUE})")
    long maxSpinMicros;

    @Option(names = "--spin-break-even-us", paramLabel = "US",
            description = "adaptive polling: while idle periods average more than US microseconds, spin at most US"
                    + " before sleeping, and sleep at once after spins that keep missing (about what a wake-up costs"
                    + " the CPU; drivers that submit in batches keep the window; 0: always the adaptive window;"
                    + " default: " + PollerSettings.SPIN_BREAK_EVEN_NANOS / 1000 + ")")
    Long spinBreakEvenMicros;

    @Option(names = "--notify-hold-us", paramLabel = "US",
            description = "interrupt moderation: hold the driver's notification of completions while it goes on"
                    + " submitting, until no new request has come for 3 x the gap between its requests (measured), at"
                    + " most US microseconds (the hold 4 x that in all), and never over a sleep, so that one interrupt"
                    + " covers a burst; completions alone neither start nor extend a hold; stops holding where holds"
                    + " catch nothing (queue depth 1), or fewer than about half of them catch anything, but for a probe"
                    + " in 256; not with --poll event; 0: notify after"
                    + " every pass (default: "
                    + PollerSettings.NOTIFY_HOLD_NANOS / 1000 + ")")
    Long notifyHoldMicros;

    @Option(names = "--bounce", paramLabel = "kernel|hugepages[:SIZE]", defaultValue = "kernel",
            description = "VDUSE bounce buffer: the kernel's pages (default), or SIZE (default --bounce-size, else 64M,"
                    + " the only size Linux 6.1 allows) of 2 MiB hugepages registered with VDUSE_IOTLB_REG_UMEM")
    String bounce;

    @Option(names = "--bounce-size", paramLabel = "SIZE", converter = SizeParser.class,
            description = "VDUSE bounce buffer size, 1M..1G (sysfs bounce_size, Linux 6.12; 6.1 fixes it at 64M and"
                    + " refuses another size). Larger lets more data be in flight. Also sizes --bounce hugepages")
    Long kernelBounceSize;

    @Option(names = "--irq-affinity", paramLabel = "blk-mq|all|kernel",
            description = "where each queue's completion interrupt runs (sysfs vqN/irq_cb_affinity, Linux 6.12):"
                    + " blk-mq = the CPUs blk-mq maps to the queue, i.e. its submitters (default where the kernel"
                    + " has it), all = every CPU in turn, kernel = leave it; given on a kernel without it: refused")
    String irqAffinity;

    @Option(names = "--cpus", paramLabel = "LIST", converter = CpuListParser.class,
            description = "pin queue threads to these CPUs, e.g. 2,3 or 0-3 (queue i -> i-th CPU, round robin)")
    CpuListParser.CpuList cpus;

    @Option(names = "--transport", defaultValue = "vduse", paramLabel = "vduse|vhost-user",
            description = "vduse (a local /dev/vdX, default) or vhost-user (a back-end on --socket)")
    String transport;

    @Option(names = "--socket", paramLabel = "PATH", description = "vhost-user: the Unix socket to listen on")
    Path socket;

    @Option(names = "--io-engine", paramLabel = "pread|io_uring",
            description = "--file: pread (default for buffered I/O) or io_uring (default with --direct)")
    String ioEngine;

    @Option(names = "--direct", description = "--file: open with O_DIRECT, bypassing the page cache (needs io_uring)")
    boolean direct;

    @Option(names = "--inject-faults", paramLabel = "SPEC",
            description = "TEST TOOL: inject backend failures, e.g. eio:read+write:range=1M-2M,delay:write:time=35s:count=1"
                    + " (kinds eio|short|delay; ops read|write|flush|discard|all; keys rate=P range=A-B count=N"
                    + " time=DUR[-DUR]; see docs/reliability.md)")
    String injectFaults;

    @Option(names = "--fault-seed", defaultValue = "1", paramLabel = "N",
            description = "seed of --inject-faults rate= decisions (default: ${DEFAULT-VALUE})")
    long faultSeed;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** The --rbd backend (its size is watched once the export runs), else null. */
    private RbdBackend rbdBackend;

    @Override
    public Integer call() throws InterruptedException {
        validate();
        List<FaultInjectingBackend.Rule> faults = faultRules();
        InetSocketAddress metricsAddress = metricsAddress();
        if (source.vhostUserTarget != null) {
            return bridge(metricsAddress);
        }
        BlockBackend backend = openBackend();
        FaultInjectingBackend faulty = null;
        if (faults != null) {
            backend = faulty = new FaultInjectingBackend(backend, faults, faultSeed);
        }
        boolean vhostUser = "vhost-user".equals(transport);
        CountDownLatch stop = new CountDownLatch(1);
        BlockExport.Builder builder = BlockExport.builder();
        if (name != null) {
            builder.name(name);
        }
        BlockExport export = builder
                .runDirectory(run.root()).onStop(stop::countDown).metrics(metricsAddress)
                .slowRequestThreshold(Duration.ofNanos((long) (slowRequestMillis * 1e6)))
                .backend(backend).queues(queues).queueSize(queueSize).blockSize(blockSize)
                .serial(serial).packed(packed).attach(!noAttach).vdpaDriver(VdpaBus.Driver.named(vdpaDriver))
                .transport(vhostUser ? BlockExport.Transport.VHOST_USER : BlockExport.Transport.VDUSE).socket(socket)
                .pollers(pollerSettings())
                .hugepageBounce(bounceSize())
                .reconnectLog(reconnectLog)
                .kernelBounceSize(kernelBounceSize == null ? 0 : kernelBounceSize)
                .irqAffinity(irqAffinityMode(), irqAffinity != null)
                .start();
        export.metricsAddress().ifPresent(a -> System.err.println("vduse4j: metrics at http://" + hostPort(a)
                + "/metrics"));
        java.util.concurrent.atomic.AtomicBoolean upgrade = new java.util.concurrent.atomic.AtomicBoolean();
        ProcessSignals.install(stop::countDown, () -> resize(export), () -> {
            if (!vhostUser) {
                upgrade.set(true);
                stop.countDown();
            }
        });
        if (rbdBackend != null) {
            rbdBackend.watchSize(() -> resize(export), 1000); // rbd resize shows up without SIGHUP
        }
        Thread hook = new Thread(export::close, "vduse4j-shutdown");
        Runtime.getRuntime().addShutdownHook(hook); // still clean up on System.exit from elsewhere
        String where = vhostUser ? socket.toString()
                : export.blockDevice().or(export::vhostVdpaDevice).map(Path::toString)
                        .orElse("/dev/vduse/" + export.name());
        System.out.println(where);
        System.out.flush();
        System.err.printf("vduse4j: exporting %s as %s, name %s (%d queue%s x %d, %s ring, %d-byte blocks, %s polling);"
                + " stop with Ctrl-C or vduse4j stop %s%n", backend.describe(), where, export.name(), queues,
                queues == 1 ? "" : "s", queueSize, packed ? "packed" : "split", blockSize, pollerSettings(), export.name());
        stop.await();
        if (upgrade.get()) { // SIGUSR1: drain, keep the device and its log for the next process
            export.upgradeStop();
            Runtime.getRuntime().removeShutdownHook(hook);
            System.err.println("vduse4j: " + export.name() + ": upgrade stop: queues drained, device kept for the"
                    + " next export of the same configuration");
            return 0;
        }
        String label = vhostUser ? socket.toString() : export.name();
        System.err.println("vduse4j: stopping " + label);
        List<QueueStats> stats = export.stats();
        for (int i = 0; i < stats.size(); i++) {
            System.err.println("vduse4j: stats queue " + i + ": " + stats.get(i));
        }
        export.close();
        Runtime.getRuntime().removeShutdownHook(hook);
        if (faulty != null) System.err.println("vduse4j: " + faulty.summary());
        System.err.println("vduse4j: " + label + " removed");
        return 0;
    }

    /** {@code --vhost-user-target}: a VDUSE device relaying to the target until a signal stops it. */
    private int bridge(InetSocketAddress metricsAddress) throws InterruptedException {
        CommandLine cl = spec.commandLine();
        if (!"vduse".equals(transport)) {
            throw new CommandLine.ParameterException(cl, "--vhost-user-target is for --transport vduse");
        }
        if (readOnly || packed || !"vduse4j".equals(serial) || blockSize != 512) {
            throw new CommandLine.ParameterException(cl, "--vhost-user-target takes the device's settings from the"
                    + " target: drop --readonly, --packed, --serial and --block-size");
        }
        String bridgeName = name != null ? name : "vduse4j0"; // the VDUSE default, as for any VDUSE export
        CountDownLatch stop = new CountDownLatch(1);
        VhostUserBridge bridge = VhostUserBridge.start(source.vhostUserTarget, bridgeName, queues, queueSize, bounceSize(),
                !noAttach, pollerSettings(), new VhostUserBridge.Service(run.root(), stop::countDown, metricsAddress,
                        (long) (slowRequestMillis * 1e6)));
        bridge.metricsAddress().ifPresent(a -> System.err.println("vduse4j: metrics at http://" + hostPort(a)
                + "/metrics"));
        ProcessSignals.install(stop::countDown, () -> { });
        Thread hook = new Thread(bridge::close, "vduse4j-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        String where = bridge.blockDevice().map(Path::toString).orElse("/dev/vduse/" + bridgeName);
        System.out.println(where);
        System.out.flush();
        System.err.printf("vduse4j: bridging vhost-user-blk target %s as %s, name %s (%d queue%s x %d, %s polling);"
                + " stop with Ctrl-C or vduse4j stop %s%n", source.vhostUserTarget, where, bridgeName, queues,
                queues == 1 ? "" : "s", queueSize, pollerSettings(), bridgeName);
        stop.await();
        List<QueueStats> stats = bridge.stats();
        for (int i = 0; i < stats.size(); i++) {
            System.err.println("vduse4j: stats queue " + i + ": " + stats.get(i));
        }
        bridge.close();
        System.err.println("vduse4j: bridge: " + bridge.relayedBytes() + " bytes relayed, " + bridge.copiedBytes()
                + " payload bytes copied in userspace, " + bridge.reconnects() + " reconnects, target kicks "
                + bridge.targetKicks() + ", target calls " + bridge.targetCalls());
        Runtime.getRuntime().removeShutdownHook(hook);
        System.err.println("vduse4j: " + bridgeName + " removed");
        return 0;
    }

    private static void resize(BlockExport export) {
        try {
            long size = export.resize();
            System.err.println("vduse4j: " + export.name() + " resized to " + size + " bytes");
        } catch (RuntimeException e) {
            System.err.println("vduse4j: resize failed: " + Main.oneLine(e));
        }
    }

    /** {@code --metrics [HOST:]PORT}; the host is loopback unless given. */
    private InetSocketAddress metricsAddress() {
        if (metrics == null) {
            return null;
        }
        int colon = metrics.lastIndexOf(':');
        String host = colon < 0 ? "127.0.0.1" : metrics.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = Integer.parseInt(metrics.substring(colon + 1));
        } catch (NumberFormatException e) {
            port = -1;
        }
        if (port < 0 || port > 65535 || host.isEmpty()) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--metrics must be [HOST:]PORT, e.g."
                    + " 127.0.0.1:9464, got " + metrics);
        }
        InetSocketAddress a = new InetSocketAddress(host, port);
        if (a.isUnresolved()) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--metrics: unknown host " + host);
        }
        return a;
    }

    private static String hostPort(InetSocketAddress a) {
        String h = a.getAddress().getHostAddress();
        return (h.contains(":") ? "[" + h + "]" : h) + ":" + a.getPort();
    }

    /** 0 for the kernel's bounce pages, else the hugepage bounce size. */
    private long bounceSize() {
        if (bounce.equals("kernel")) {
            return 0;
        }
        if (bounce.equals("hugepages")) {
            return kernelBounceSize != null ? kernelBounceSize : 64L << 20;
        }
        return new SizeParser().convert(bounce.substring("hugepages:".length()));
    }

    VduseKernelFeatures.IrqAffinity irqAffinityMode() {
        return irqAffinity == null ? VduseKernelFeatures.IrqAffinity.BLK_MQ
                : VduseKernelFeatures.IrqAffinity.valueOf(irqAffinity.toUpperCase(Locale.ROOT).replace('-', '_'));
    }

    /** --poll, or its default: inflight for the bridge (its backend is a queue it can poll), adaptive otherwise. */
    String pollMode() {
        return poll != null ? poll : source != null && source.vhostUserTarget != null ? "inflight" : "adaptive";
    }

    PollerSettings pollerSettings() {
        return new PollerSettings(PollMode.valueOf(pollMode().toUpperCase(Locale.ROOT)), maxSpinMicros * 1000,
                spinBreakEvenMicros == null ? PollerSettings.SPIN_BREAK_EVEN_NANOS : spinBreakEvenMicros * 1000,
                coalesceMicros == null ? PollerSettings.COALESCE_NANOS : coalesceMicros * 1000,
                cpus == null ? null : cpus.cpus(),
                notifyHoldMicros == null ? PollerSettings.NOTIFY_HOLD_NANOS : notifyHoldMicros * 1000);
    }

    /** The --inject-faults rules, null without the option; a bad SPEC is a parameter error. */
    private List<FaultInjectingBackend.Rule> faultRules() {
        if (injectFaults == null) return null;
        try {
            return FaultInjectingBackend.parse(injectFaults);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--inject-faults: " + e.getMessage());
        }
    }

    /** Checks every number before anything is created. */
    private void validate() {
        CommandLine cl = spec.commandLine();
        if (!List.of("busy", "adaptive", "inflight", "event", "coalesce").contains(pollMode())) {
            throw new CommandLine.ParameterException(cl, "--poll must be busy, adaptive, inflight, event or coalesce,"
                    + " got " + poll);
        }
        if (coalesceMicros != null && (coalesceMicros < 1 || coalesceMicros > 10_000)) {
            throw new CommandLine.ParameterException(cl, "--coalesce-us must be 1..10000, got " + coalesceMicros);
        }
        if (coalesceMicros != null && !"coalesce".equals(pollMode())) {
            throw new CommandLine.ParameterException(cl, "--coalesce-us is for --poll coalesce");
        }
        if (notifyHoldMicros != null && notifyHoldMicros > 0 && "event".equals(pollMode())) {
            throw new CommandLine.ParameterException(cl, "--notify-hold-us is not for --poll event (it sleeps after"
                    + " every pass, and nothing is held over a sleep)");
        }
        if (VdpaBus.Driver.named(vdpaDriver) == null) {
            throw new CommandLine.ParameterException(cl, "--vdpa-driver must be virtio_vdpa or vhost_vdpa, got "
                    + vdpaDriver);
        }
        if (!"virtio_vdpa".equals(vdpaDriver) && ("vhost-user".equals(transport) || noAttach
                || source.vhostUserTarget != null)) {
            throw new CommandLine.ParameterException(cl, "--vdpa-driver is for a VDUSE export attached to the vdpa bus"
                    + " (not with --transport vhost-user, --no-attach or --vhost-user-target)");
        }
        if (!bounce.equals("kernel") && !bounce.equals("hugepages") && !bounce.startsWith("hugepages:")) {
            throw new CommandLine.ParameterException(cl, "--bounce must be kernel, hugepages or hugepages:SIZE, got "
                    + bounce);
        }
        if (bounce.startsWith("hugepages:") && bounceSize() % (2 << 20) != 0) {
            throw new CommandLine.ParameterException(cl, "--bounce hugepages size must be a multiple of 2M, got "
                    + bounce.substring("hugepages:".length()));
        }
        if (irqAffinity != null && !List.of("blk-mq", "all", "kernel").contains(irqAffinity)) {
            throw new CommandLine.ParameterException(cl, "--irq-affinity must be blk-mq, all or kernel, got "
                    + irqAffinity);
        }
        if (kernelBounceSize != null) {
            try {
                VduseKernelFeatures.checkBounceSize(kernelBounceSize);
            } catch (RuntimeException e) {
                throw new CommandLine.ParameterException(cl, e.getMessage());
            }
            if (bounce.startsWith("hugepages") && kernelBounceSize % (2 << 20) != 0) {
                throw new CommandLine.ParameterException(cl, "--bounce-size with --bounce hugepages must be a multiple"
                        + " of 2M, got " + kernelBounceSize);
            }
            if (bounce.startsWith("hugepages:") && bounceSize() != kernelBounceSize) {
                throw new CommandLine.ParameterException(cl, "--bounce-size and --bounce hugepages:SIZE differ: give"
                        + " one size");
            }
        }
        if ((kernelBounceSize != null || irqAffinity != null) && "vhost-user".equals(transport)) {
            throw new CommandLine.ParameterException(cl, "--bounce-size and --irq-affinity are for --transport vduse");
        }
        if (!bounce.equals("kernel") && "vhost-user".equals(transport)) {
            throw new CommandLine.ParameterException(cl, "--bounce is for --transport vduse");
        }
        if (!(slowRequestMillis > 0) || slowRequestMillis > 3_600_000) {
            throw new CommandLine.ParameterException(cl, "--slow-request-ms must be above 0, got " + slowRequestMillis);
        }
        if (maxSpinMicros < 0 || maxSpinMicros > 1_000_000) {
            throw new CommandLine.ParameterException(cl, "--max-spin-us must be 0..1000000, got " + maxSpinMicros);
        }
        if (notifyHoldMicros != null && (notifyHoldMicros < 0 || notifyHoldMicros > 10_000)) {
            throw new CommandLine.ParameterException(cl, "--notify-hold-us must be 0..10000, got " + notifyHoldMicros);
        }
        if (spinBreakEvenMicros != null && (spinBreakEvenMicros < 0 || spinBreakEvenMicros > 1_000_000)) {
            throw new CommandLine.ParameterException(cl, "--spin-break-even-us must be 0..1000000, got "
                    + spinBreakEvenMicros);
        }
        if (ioEngine != null && !"pread".equals(ioEngine) && !"io_uring".equals(ioEngine)) {
            throw new CommandLine.ParameterException(cl, "--io-engine must be pread or io_uring, got " + ioEngine);
        }
        if ((ioEngine != null || direct) && source.file == null) {
            throw new CommandLine.ParameterException(cl, "--io-engine and --direct are for --file");
        }
        if (!"vduse".equals(transport) && !"vhost-user".equals(transport)) {
            throw new CommandLine.ParameterException(cl, "--transport must be vduse or vhost-user, got " + transport);
        }
        if ("vhost-user".equals(transport) && socket == null) {
            throw new CommandLine.ParameterException(cl, "--transport vhost-user needs --socket PATH");
        }
        if ("vduse".equals(transport) && socket != null) {
            throw new CommandLine.ParameterException(cl, "--socket is for --transport vhost-user");
        }
        if (blockSize != 512 && blockSize != 4096) {
            throw new CommandLine.ParameterException(cl, "--block-size must be 512 or 4096, got " + blockSize);
        }
        if (queues < 1 || queues > 64) {
            throw new CommandLine.ParameterException(cl, "--queues must be 1..64, got " + queues);
        }
        if (queueSize < 4 || queueSize > 32768 || Integer.bitCount(queueSize) != 1) {
            throw new CommandLine.ParameterException(cl, "--queue-size must be a power of two in 4..32768, got " + queueSize);
        }
        if ((cephConf != null || cephId != null) && source.rbd == null) {
            throw new CommandLine.ParameterException(cl, "--ceph-conf and --ceph-id are for --rbd");
        }
        if (cephTimeout < 1 || cephTimeout > 3600) {
            throw new CommandLine.ParameterException(cl, "--ceph-timeout must be 1..3600 seconds, got " + cephTimeout);
        }
        if (source.rbd != null) {
            try {
                RbdBackend.Spec.parse(source.rbd);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(cl, e.getMessage());
            }
        }
        Long size = source.nullSize != null ? source.nullSize : source.memorySize;
        if (size != null && size % blockSize != 0) {
            throw new CommandLine.ParameterException(cl, "size " + size + " is not a multiple of the block size "
                    + blockSize + ": pick a size that is");
        }
    }

    private BlockBackend openBackend() {
        if (source.nullSize != null) {
            return new NullBackend(source.nullSize, readOnly);
        }
        if (source.memorySize != null) {
            return new MemoryBackend(source.memorySize, readOnly);
        }
        if (source.rbd != null) {
            return openRbd();
        }
        BlockBackend f = IoUringFileBackend.openFile(source.file, readOnly, ioEngine, direct, queueSize);
        if (f.capacity() == 0 || f.capacity() % blockSize != 0) {
            f.close();
            throw new CommandLine.ParameterException(spec.commandLine(), "size of " + source.file + " (" + f.capacity()
                    + " bytes) is not a positive multiple of the block size " + blockSize
                    + ": resize it (truncate -s) or pick --block-size 512");
        }
        return f;
    }

    /**
     * Connects from this (the CLI's main, unpinned) thread: librados' threads inherit its CPU mask. Zero-copy writes
     * only over VDUSE (bounce pages the driver does not touch while a request is in flight).
     */
    private BlockBackend openRbd() {
        CommandLine cl = spec.commandLine();
        RbdBackend.Spec rbd = RbdBackend.Spec.parse(source.rbd);
        RbdBackend b;
        try {
            b = RbdBackend.open(rbd, cephConf, cephId, readOnly, "vduse".equals(transport), queues, cephTimeout);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cl, e.getMessage());
        }
        if (b.capacity() == 0 || b.capacity() % blockSize != 0) {
            b.close();
            throw new CommandLine.ParameterException(cl, "size of " + rbd + " (" + b.capacity()
                    + " bytes) is not a positive multiple of the block size " + blockSize + ": rbd resize it");
        }
        rbdBackend = b;
        return b;
    }
}
