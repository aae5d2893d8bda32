package io.github.vduse4j.blockdev.cli;

import io.github.vduse4j.blockdev.bench.BenchOptions;
import io.github.vduse4j.blockdev.bench.BenchResult;
import io.github.vduse4j.blockdev.bench.BenchRunner;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code vduse4j bench}: a vhost-user-blk load generator. It is the frontend itself (no VM, no kernel driver):
 * it shares memfd memory with the back-end, drives split (or, with {@code --packed}, packed) rings directly and
 * busy-polls completions, then prints IOPS, MB/s and latency percentiles (live on a terminal; one JSON object with
 * {@code --json}).
 */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Load a vhost-user-blk back-end (vduse4j, qemu-storage-daemon, ...) or a vhost-vdpa block device"
                + " as its frontend.")
final class BenchCommand implements Callable<Integer> {

    @Option(names = "--socket", paramLabel = "PATH", description = "the back-end's vhost-user socket")
    Path socket;

    @Option(names = "--vhost-vdpa", paramLabel = "DEVICE",
            description = "instead of --socket: a vDPA device's /dev/vhost-vdpa-N, driven as a VMM does"
                    + " (e.g. vduse4j export --vdpa-driver vhost_vdpa)")
    Path vhostVdpa;

    @Option(names = "--remap-interval-ms", defaultValue = "0", paramLabel = "MS",
            description = "--vhost-vdpa: every MS ms move one data buffer per queue to new memory (IOTLB invalidate +"
                    + " update from a new memfd) while I/O runs (default: never)")
    long remapIntervalMillis;

    @Option(names = "--stop-start-interval-ms", defaultValue = "0", paramLabel = "MS",
            description = "--vhost-vdpa: every MS ms drain, stop the device (GET_VRING_BASE, checked) and start it"
                    + " again where it stopped (default: never)")
    long stopStartIntervalMillis;

    @Option(names = "--rw", defaultValue = "randread", paramLabel = "PATTERN",
            description = "read, write, randread, randwrite or randrw (default: ${DEFAULT-VALUE})")
    String rw;

    @Option(names = "--bs", defaultValue = "4k", converter = SizeParser.class, paramLabel = "SIZE",
            description = "block size, a multiple of 512 (default: ${DEFAULT-VALUE})")
    long blockSize;

    @Option(names = {"--iodepth", "--qd"}, defaultValue = "1", description = "requests in flight per queue (default: ${DEFAULT-VALUE})")
    int depth;

    @Option(names = "--queues", defaultValue = "1", description = "queues, one thread each (default: ${DEFAULT-VALUE})")
    int queues;

    @Option(names = "--runtime", defaultValue = "10", paramLabel = "SECONDS",
            description = "seconds of load (default: ${DEFAULT-VALUE}); fractions allowed")
    double runtime;

    @Option(names = "--verify", description = "write offset-derived patterns, check reads of written blocks, read back everything written")
    boolean verify;

    @Option(names = "--size", converter = SizeParser.class, paramLabel = "SIZE",
            description = "use only the first SIZE bytes of the device")
    Long size;

    @Option(names = "--rwmixread", defaultValue = "50", description = "percentage of reads for randrw (default: ${DEFAULT-VALUE})")
    int readMix;

    @Option(names = "--ring-size", defaultValue = "0", description = "descriptors per ring (default: enough for the depth, at least 64)")
    int ringSize;

    @Option(names = "--packed", description = "drive packed virtqueues (VIRTIO_F_RING_PACKED) instead of split ones;"
            + " the back-end must offer them")
    boolean packed;

    @Option(names = "--seed", defaultValue = "1", description = "random seed and verify pattern key (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--rate-iops", defaultValue = "0", paramLabel = "N",
            description = "issue N requests per second in all (evenly spaced, each queue its share; as fio's"
                    + " --rate_iops); 0: as fast as the depth allows (default)")
    long rateIops;

    @Option(names = "--completions", defaultValue = "poll", paramLabel = "HOW",
            description = "poll: busy-poll the used rings (default); call: spin " + BenchOptions.SPIN_BEFORE_SLEEP_NANOS / 1000
                    + " us, then sleep on the call eventfd (the device injects an interrupt), as a VM's driver waits")
    String completions;

    @Option(names = "--iodepth-batch", defaultValue = "" + BenchOptions.DEFAULT_SUBMIT_BATCH, paramLabel = "N",
            description = "publish new requests to the device after at most N of them (as fio's --iodepth_batch_submit);"
                    + " 0: once all free slots are filled (default: ${DEFAULT-VALUE})")
    int submitBatch;

    @Option(names = "--json", description = "print one JSON object instead of text")
    boolean json;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        BenchOptions o = options();
        if (vhostVdpa == null) {
            checkSocket();
        } else {
            checkVhostVdpa();
        }
        boolean tty = System.console() != null && !json;
        BenchResult r = BenchRunner.run(o, tty ? line -> {
            System.err.print("\r" + line);
            System.err.flush();
        } : null);
        if (tty) {
            System.err.println();
        }
        System.out.println(json ? r.toJson() : r.summary());
        return r.ok() ? 0 : 1;
    }

    /** Every option checked, naming the option, before anything connects. */
    private BenchOptions options() {
        CommandLine cl = spec.commandLine();
        if ((socket == null) == (vhostVdpa == null)) {
            throw new CommandLine.ParameterException(cl, "give the back-end as exactly one of --socket PATH and"
                    + " --vhost-vdpa DEVICE");
        }
        if (remapIntervalMillis < 0 || remapIntervalMillis > 3_600_000 || stopStartIntervalMillis < 0
                || stopStartIntervalMillis > 3_600_000) {
            throw new CommandLine.ParameterException(cl, "--remap-interval-ms and --stop-start-interval-ms must be"
                    + " 0..3600000");
        }
        if (vhostVdpa == null && (remapIntervalMillis > 0 || stopStartIntervalMillis > 0)) {
            throw new CommandLine.ParameterException(cl, "--remap-interval-ms and --stop-start-interval-ms need"
                    + " --vhost-vdpa");
        }
        BenchOptions.Pattern pattern;
        try {
            pattern = BenchOptions.Pattern.valueOf(rw.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cl, "--rw must be read, write, randread, randwrite or randrw, got " + rw);
        }
        if (blockSize % 512 != 0 || blockSize > (1 << 20)) {
            throw new CommandLine.ParameterException(cl, "--bs must be a multiple of 512 up to 1M, got " + blockSize);
        }
        if (depth < 1 || depth > 1024) {
            throw new CommandLine.ParameterException(cl, "--iodepth must be 1..1024, got " + depth);
        }
        if (queues < 1 || queues > 64) {
            throw new CommandLine.ParameterException(cl, "--queues must be 1..64, got " + queues);
        }
        if (!(runtime > 0) || runtime > 86_400) {
            throw new CommandLine.ParameterException(cl, "--runtime must be in (0, 86400] seconds, got " + runtime);
        }
        if (readMix < 0 || readMix > 100) {
            throw new CommandLine.ParameterException(cl, "--rwmixread must be 0..100, got " + readMix);
        }
        if (ringSize != 0 && (Integer.bitCount(ringSize) != 1 || ringSize > 32768 || ringSize < 3 * depth)) {
            throw new CommandLine.ParameterException(cl, "--ring-size must be a power of two from 3 x --iodepth ("
                    + 3 * depth + ") to 32768, got " + ringSize);
        }
        if (rateIops < 0 || rateIops > 1_000_000_000L) {
            throw new CommandLine.ParameterException(cl, "--rate-iops must be 0..1000000000, got " + rateIops);
        }
        if (size != null && size < blockSize * queues) {
            throw new CommandLine.ParameterException(cl, "--size " + size + " holds fewer than one --bs block per queue");
        }
        if (submitBatch < 0 || submitBatch > depth) {
            throw new CommandLine.ParameterException(cl, "--iodepth-batch must be 0..--iodepth (" + depth + "), got "
                    + submitBatch);
        }
        if (!completions.equals("poll") && !completions.equals("call")) {
            throw new CommandLine.ParameterException(cl, "--completions must be poll or call, got " + completions);
        }
        try {
            return new BenchOptions(vhostVdpa != null ? vhostVdpa : socket, pattern, (int) blockSize, depth, queues,
                    Duration.ofNanos((long) (runtime * 1e9)), verify, size == null ? 0 : size, readMix, ringSize, seed,
                    packed, rateIops, vhostVdpa != null, remapIntervalMillis, stopStartIntervalMillis,
                    completions.equals("call"), submitBatch);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cl, e.getMessage());
        }
    }

    /** The vhost-vdpa device must be there and be a character device. */
    private void checkVhostVdpa() {
        CommandLine cl = spec.commandLine();
        BasicFileAttributes a;
        try {
            a = Files.readAttributes(vhostVdpa, BasicFileAttributes.class);
        } catch (IOException e) {
            throw new CommandLine.ParameterException(cl, "no device at " + vhostVdpa + ": export one with"
                    + " vduse4j export --vdpa-driver vhost_vdpa");
        }
        if (!a.isOther()) {
            throw new CommandLine.ParameterException(cl, vhostVdpa + " is not a character device: --vhost-vdpa takes"
                    + " /dev/vhost-vdpa-N");
        }
    }

    /** The socket must be there and be a socket; the rest (nobody listening, ...) shows when connecting. */
    private void checkSocket() {
        CommandLine cl = spec.commandLine();
        BasicFileAttributes a;
        try {
            a = Files.readAttributes(socket, BasicFileAttributes.class);
        } catch (IOException e) {
            throw new CommandLine.ParameterException(cl, "no socket at " + socket + ": start the back-end first");
        }
        if (!a.isOther()) {
            throw new CommandLine.ParameterException(cl, socket + " is not a socket: --socket takes the back-end's"
                    + " vhost-user socket");
        }
    }
}
