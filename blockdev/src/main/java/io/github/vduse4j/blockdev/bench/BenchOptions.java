package io.github.vduse4j.blockdev.bench;

import java.nio.file.Path;
import java.time.Duration;

/**
 * What {@code vduse4j bench} runs.
 *
 * @param socket    the back-end's vhost-user socket, or with {@code vhostVdpa} its {@code /dev/vhost-vdpa-N}
 * @param pattern   access pattern
 * @param blockSize bytes per request, a multiple of 512
 * @param depth     requests in flight per queue
 * @param queues    queues (one thread each)
 * @param runtime   how long to submit
 * @param verify    check data: writes carry an offset-derived pattern; reads of blocks written earlier in the
 *                  run are checked, and every written block is read back and checked at the end
 * @param size      bytes of the device to use from offset 0 (0: all of it)
 * @param readMix   percentage of reads for {@link Pattern#RANDRW}
 * @param ringSize  descriptors per ring (a power of two, at least 3 * depth)
 * @param seed      random seed
 * @param packed    drive packed virtqueues (VIRTIO_F_RING_PACKED, which the back-end must offer) instead of split
 * @param rateIops  requests per second over all queues, issued at even intervals (each queue its share; 0: as fast
 *                  as the depth allows). Open loop, as fio's {@code --rate_iops}: a request due while the depth is
 *                  used up goes out as soon as a slot frees, and a backlog of more than one depth is dropped
 * @param vhostVdpa {@code socket} is a vhost-vdpa character device (the VMM's path to a vDPA device)
 * @param remapIntervalMillis vhost-vdpa: every so many ms move one data buffer of each queue to new memory (IOTLB
 *                  invalidate + update from a new memfd, one batch) while I/O runs; 0: never
 * @param stopStartIntervalMillis vhost-vdpa: every so many ms pause the load, stop the device (GET_VRING_BASE,
 *                  checked against the driver's position, then reset) and start it again where it stopped; 0: never
 * @param awaitCalls with requests in flight and none completed for {@link #SPIN_BEFORE_SLEEP_NANOS}, sleep on the
 *                  queue's call eventfd (used-buffer notifications on) instead of busy-polling the used ring. On a
 *                  small machine a busy-polling frontend takes the CPU the kick and completion paths need (vhost-vdpa:
 *                  VDUSE defers a kick made from inside an eventfd write to a kworker on the writer's CPU)
 * @param submitBatch publish the available ring (and kick, where the device asks for kicks) after at most this many
 *                  new requests, as fio's {@code --iodepth_batch_submit}; 0: once per pass, after every free slot is
 *                  filled. Smaller batches let the device start on the first requests while the frontend writes the
 *                  rest (docs/benchmarks.md, "Where the time goes at vhost-user QD32")
 */
public record BenchOptions(Path socket, Pattern pattern, int blockSize, int depth, int queues, Duration runtime,
                           boolean verify, long size, int readMix, int ringSize, long seed, boolean packed,
                           long rateIops, boolean vhostVdpa, long remapIntervalMillis, long stopStartIntervalMillis,
                           boolean awaitCalls, int submitBatch) {

    /** {@link #awaitCalls}: how long a queue spins on an empty used ring before it sleeps on the call eventfd. */
    public static final long SPIN_BEFORE_SLEEP_NANOS = 50_000;
    /** {@link #submitBatch} of {@code vduse4j bench} unless {@code --iodepth-batch} says otherwise. */
    public static final int DEFAULT_SUBMIT_BATCH = 0;

    /** Options with {@link #DEFAULT_SUBMIT_BATCH}. */
    public BenchOptions(Path socket, Pattern pattern, int blockSize, int depth, int queues, Duration runtime,
                        boolean verify, long size, int readMix, int ringSize, long seed, boolean packed,
                        long rateIops, boolean vhostVdpa, long remapIntervalMillis, long stopStartIntervalMillis,
                        boolean awaitCalls) {
        this(socket, pattern, blockSize, depth, queues, runtime, verify, size, readMix, ringSize, seed, packed, rateIops,
                vhostVdpa, remapIntervalMillis, stopStartIntervalMillis, awaitCalls, DEFAULT_SUBMIT_BATCH);
    }

    /** A vhost-user run without a rate limit. */
    public BenchOptions(Path socket, Pattern pattern, int blockSize, int depth, int queues, Duration runtime,
                        boolean verify, long size, int readMix, int ringSize, long seed, boolean packed) {
        this(socket, pattern, blockSize, depth, queues, runtime, verify, size, readMix, ringSize, seed, packed, 0,
                false, 0, 0, false);
    }

    /** Access patterns, named as fio's {@code --rw}. */
    public enum Pattern {
        READ(false, 100), WRITE(false, 0), RANDREAD(true, 100), RANDWRITE(true, 0), RANDRW(true, -1);

        final boolean random;
        final int reads; // percent, -1: from readMix

        Pattern(boolean random, int reads) {
            this.random = random;
            this.reads = reads;
        }

        public String fioName() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    public BenchOptions {
        if (blockSize < 512 || blockSize % 512 != 0 || blockSize > (1 << 20)) {
            throw new IllegalArgumentException("block size must be a multiple of 512 up to 1M, got " + blockSize);
        }
        if (depth < 1 || depth > 1024) {
            throw new IllegalArgumentException("queue depth must be 1..1024, got " + depth);
        }
        if (queues < 1 || queues > 64) {
            throw new IllegalArgumentException("queues must be 1..64, got " + queues);
        }
        if (readMix < 0 || readMix > 100) {
            throw new IllegalArgumentException("read mix must be 0..100, got " + readMix);
        }
        if (rateIops < 0 || rateIops > 1_000_000_000L) {
            throw new IllegalArgumentException("rate must be 0..1000000000 IOPS, got " + rateIops);
        }
        if (submitBatch < 0 || submitBatch > depth) {
            throw new IllegalArgumentException("submit batch must be 0..queue depth (" + depth + "), got " + submitBatch);
        }
        if (remapIntervalMillis < 0 || stopStartIntervalMillis < 0) {
            throw new IllegalArgumentException("intervals must not be negative");
        }
        if (!vhostVdpa && (remapIntervalMillis > 0 || stopStartIntervalMillis > 0)) {
            throw new IllegalArgumentException("--remap-interval-ms and --stop-start-interval-ms need --vhost-vdpa");
        }
        if (ringSize == 0) {
            ringSize = Math.max(64, Integer.highestOneBit(3 * depth - 1) << 1);
        }
        if (Integer.bitCount(ringSize) != 1 || ringSize > 32768 || ringSize < 3 * depth) {
            throw new IllegalArgumentException("ring size must be a power of two of at least 3 x depth, got " + ringSize);
        }
    }

    /** "split" or "packed": the ring layout, as the text and JSON results name it. */
    public String ringKind() {
        return packed ? "packed" : "split";
    }

    /** Nanoseconds between two requests of one queue at {@link #rateIops} (0: no limit). */
    long issueIntervalNanos() {
        return rateIops == 0 ? 0 : Math.max(1, Math.round(queues * 1e9 / rateIops));
    }

    int readPercent() {
        return pattern.reads >= 0 ? pattern.reads : readMix;
    }
}
