package io.github.vduse4j.blockdev.backend;

import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.blockdev.uring.IoUringRing;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * A regular file or block device served through io_uring: each queue (poller thread) owns one ring, writes SQEs in
 * {@link BackendQueue#submit}, and submits and reaps them in {@link BackendQueue#poll} (one {@code io_uring_enter}
 * per poll for everything prepared since the last one). READ/WRITE move data straight between the file and the
 * driver's buffers ({@code IORING_OP_READ/WRITE} for one buffer, {@code READV/WRITEV} with a preallocated iovec
 * array otherwise); FLUSH is {@code IORING_OP_FSYNC} with {@code IORING_FSYNC_DATASYNC}; DISCARD and WRITE_ZEROES are
 * {@code IORING_OP_FALLOCATE} with the same fallbacks as {@link FileBackend} (a discard the file system cannot do is
 * ignored; zeroing falls back from punch hole / zero range to writing zeros). The file is registered as a fixed file
 * per ring. Optional {@code O_DIRECT}.
 *
 * <p>Where io_uring is unavailable ({@code io_uring_setup} fails with EPERM/ENOSYS: {@code kernel.io_uring_disabled},
 * seccomp), use {@link FileBackend}; {@link #openFile} makes that choice.
 *
 * <p>Registered buffers ({@code IORING_REGISTER_BUFFERS}, READ_FIXED/WRITE_FIXED) are not used: the data buffers are
 * the driver's memory (VDUSE IOTLB / vhost-user memory-table mappings) which come and go with the device, are
 * remapped on IOTLB updates, and can be far larger than what is sensible to pin; registration would have to follow
 * every mapping change on every ring. Their gain (no page pinning per I/O) matters most for O_DIRECT at high IOPS.
 */
public final class IoUringFileBackend extends FileBackedBackend {
    static final int ZERO_CHUNK = 1 << 20;

    /** Largest in-flight request count per queue (the virtio maximum queue size). */
    public static final int MAX_QUEUE_DEPTH = 32768;

    /**
     * Per-queue sizing and file flags.
     *
     * @param queueDepth  requests a queue may have in flight (use the virtqueue size); sizes the per-queue pools
     * @param ringEntries SQ entries of each ring; 0 picks {@code min(queueDepth, 1024)}. Fewer than in flight is fine:
     *                    the rest wait in the queue and go in as the kernel consumes SQEs
     * @param direct      open with {@code O_DIRECT} (buffers and offsets must then suit the device's alignment)
     * @param fixedFile   register the file with each ring ({@code IORING_REGISTER_FILES}) and use it as fixed file 0
     */
    public record Options(int queueDepth, int ringEntries, boolean direct, boolean fixedFile) {
        /** Checks the sizes. */
        public Options {
            if (queueDepth < 1 || queueDepth > MAX_QUEUE_DEPTH) {
                throw new IllegalArgumentException("io_uring queue depth must be 1.." + MAX_QUEUE_DEPTH + ", got " + queueDepth);
            }
            if (ringEntries < 0 || ringEntries > 32768) {
                throw new IllegalArgumentException("io_uring ring entries must be 0..32768, got " + ringEntries);
            }
        }

        /**
         * Queue depth 256, ring size from it, buffered I/O, fixed file.
         *
         * @return the default options
         */
        public static Options defaults() {
            return new Options(256, 0, false, true);
        }

        /**
         * A copy with another queue depth.
         *
         * @param depth the new queue depth
         * @return a copy with it
         */
        public Options withQueueDepth(int depth) {
            return new Options(depth, ringEntries, direct, fixedFile);
        }

        /**
         * A copy with another ring size.
         *
         * @param entries the new SQ entries per ring (0: from the queue depth)
         * @return a copy with them
         */
        public Options withRingEntries(int entries) {
            return new Options(queueDepth, entries, direct, fixedFile);
        }

        /**
         * A copy with or without O_DIRECT.
         *
         * @param d open with O_DIRECT
         * @return a copy with it
         */
        public Options withDirect(boolean d) {
            return new Options(queueDepth, ringEntries, d, fixedFile);
        }

        /**
         * A copy with or without the fixed file.
         *
         * @param f register the file with each ring
         * @return a copy with it
         */
        public Options withFixedFile(boolean f) {
            return new Options(queueDepth, ringEntries, direct, f);
        }
    }

    private final Options options;
    /** Zeros for WRITE_ZEROES where fallocate cannot do it; shared read-only by all queues; 4 KiB aligned for O_DIRECT. */
    final MemorySegment zeros = Arena.ofAuto().allocate(ZERO_CHUNK, 4096);

    /**
     * Opens {@code path} with {@link Options#defaults()}.
     *
     * @param path     a regular file or block device
     * @param readOnly open it read-only
     */
    public IoUringFileBackend(Path path, boolean readOnly) {
        this(path, readOnly, Options.defaults());
    }

    /**
     * Opens {@code path} read-write, or read-only when {@code readOnly}. Rings are created per queue, in
     * {@link #openQueue}; {@link #openFile} checks first that io_uring is available.
     *
     * @param path     a regular file or block device
     * @param readOnly open it read-only
     * @param options  queue depth, ring size, O_DIRECT, fixed file
     * @throws IllegalArgumentException with a one-line reason a user can act on
     */
    public IoUringFileBackend(Path path, boolean readOnly, Options options) {
        super(BackingFile.open(path, readOnly, options.direct()));
        this.options = options;
    }

    /**
     * The file backend the CLI asks for. {@code engine}: {@code "io_uring"}, {@code "pread"}, or {@code null} for
     * the default: io_uring with {@code direct} (O_DIRECT, which needs it), {@link FileBackend} without.
     *
     * @param path       a regular file or block device
     * @param readOnly   open it read-only
     * @param engine     {@code "io_uring"}, {@code "pread"} or {@code null}
     * @param direct     open with O_DIRECT
     * @param queueDepth requests one queue may have in flight (the virtqueue size)
     * @return an {@code IoUringFileBackend} or a {@link FileBackend}
     * @throws IllegalArgumentException with a one-line reason (io_uring asked for but unavailable, O_DIRECT refused, ...)
     */
    public static BlockBackend openFile(Path path, boolean readOnly, String engine, boolean direct, int queueDepth) {
        boolean wantsUring = engine == null ? direct : engine.equals("io_uring");
        return openFile(path, readOnly, engine, direct, queueDepth, wantsUring ? IoUringRing.probe() : null);
    }

    /** {@link #openFile} with the probe result given ({@code null} = io_uring works), for tests. */
    static BlockBackend openFile(Path path, boolean readOnly, String engine, boolean direct, int queueDepth,
                                 String ioUringUnavailable) {
        if (engine != null && !engine.equals("io_uring") && !engine.equals("pread")) {
            throw new IllegalArgumentException("--io-engine must be pread or io_uring, got " + engine);
        }
        // Default: io_uring for O_DIRECT, where it wins (~4x at QD32 here); pread/pwrite for buffered I/O, where
        // io_uring hands every request to an io-wq worker thread and loses 2-7x (docs/benchmarks.md).
        boolean uring = engine == null ? direct : engine.equals("io_uring");
        if (uring && ioUringUnavailable != null) {
            throw new IllegalArgumentException((engine == null ? "--direct needs io_uring, which" : "io_uring")
                    + " is unavailable here: " + ioUringUnavailable + "; export with --io-engine pread"
                    + (direct ? " and without --direct" : "") + " (or allow io_uring: sysctl kernel.io_uring_disabled=0)");
        }
        if (!uring) {
            if (direct) {
                throw new IllegalArgumentException("--direct needs --io-engine io_uring");
            }
            return new FileBackend(path, readOnly);
        }
        int depth = Math.max(1, Math.min(queueDepth, MAX_QUEUE_DEPTH));
        return new IoUringFileBackend(path, readOnly, Options.defaults().withQueueDepth(depth).withDirect(direct));
    }

    /**
     * The options it was opened with.
     *
     * @return queue depth, ring size, O_DIRECT, fixed file
     */
    public Options options() {
        return options;
    }

    int fd() {
        return file.fd;
    }

    /**
     * Creates this queue's ring and pools (control path).
     *
     * @throws ErrnoException when io_uring_setup or the ring mapping fails
     */
    @Override
    public BackendQueue openQueue(int queueIndex) {
        return new IoUringFileQueue(this, options);
    }

    @Override
    public String describe() {
        return file.describe("io_uring" + (options.direct() ? ", O_DIRECT" : ""));
    }

}
