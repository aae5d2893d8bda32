package io.github.vduse4j.blockdev.backend;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.bindings.RbdLibrary;
import io.github.vduse4j.bindings.rbd.iovec;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A Ceph RBD image through librbd: one rados connection and one image handle per export, shared by all queues
 * (two handles on one image fight over its exclusive lock).
 *
 * <p>Completions without upcalls: {@code rbd_set_image_notification(image, eventfd, EVENT_TYPE_EVENTFD)} before the
 * first I/O; librbd writes the eventfd when a completion is ready (and never drains it); the reaper reads it, calls
 * {@code rbd_poll_io_events} until it returns fewer than asked, and finishes each request from
 * {@code rbd_aio_get_arg} (queue and slot) and {@code rbd_aio_get_return_value}, then {@code rbd_aio_release}.
 * The image has one completion queue for all its I/O, so who reaps depends on the queue count:
 * <ul>
 *   <li>one queue: its poller (run-to-completion, as io_uring): {@link BackendQueue#completionFd()} is librbd's
 *       eventfd and {@link BackendQueue#poll()} reaps;</li>
 *   <li>several queues: one unpinned reaper thread per image sleeps on the eventfd and completes each request with
 *       {@link BlockRequest#complete(int)}, which hands it to its own queue's poller (the cross-thread handoff), so no
 *       poller ever finishes another queue's request and no poller can sleep through its own completion.</li>
 * </ul>
 *
 * <p>Policies: the librbd cache is off ({@code rbd_cache=false}), so a write is durable when it completes; FLUSH is
 * still offered and sent ({@code rbd_aio_flush}). Writes are zero copy ({@code rbd_disable_zero_copy_writes=false})
 * only when the caller says the buffers cannot change under librbd (VDUSE bounce pages); guest memory a vhost-user
 * frontend shares may change while librbd still holds it, so there librbd copies. Connect is bounded by
 * {@code client_mount_timeout} and mon ops by {@code rados_mon_op_timeout}; OSD ops are not (an OSD restart stalls I/O,
 * it does not fail it). A cluster error completes the request with IOERR and logs one line per error kind.
 * Snapshots ({@code POOL/IMAGE@SNAP}) are read-only. Live resize without upcalls: {@link #watchSize} polls
 * {@code rbd_get_size} once a second on a thread of its own (librbd refreshes the image header when its watch saw an
 * {@code rbd resize}) and calls the export's resize path, the same one SIGHUP takes. Discards smaller than an object's 64 KiB allocation unit may be
 * skipped by the OSD (Pacific), so the device advertises a 64 KiB discard granularity and never promises that a
 * discarded range reads back zero; WRITE_ZEROES does zero.
 */
public final class RbdBackend implements BlockBackend {
    /** What Pacific's OSD discards at the least inside an object (bluestore min alloc / rbd discard granularity). */
    public static final int DISCARD_GRANULARITY = 64 * 1024;
    /** The most request slots a queue can have (queue size + writethrough flush carriers). */
    private static final int MAX_SLOTS = 2 * 32768;
    private static final int REAP_BATCH = 64;
    private static final long IOV_BYTES = iovec.sizeof();

    /**
     * {@code POOL/IMAGE[@SNAP]}.
     *
     * @param pool     the rados pool
     * @param image    the RBD image in that pool
     * @param snapshot the image's snapshot to open (read-only), or null for the image itself
     */
    public record Spec(String pool, String image, String snapshot) {
        /**
         * Parses {@code POOL/IMAGE[@SNAP]}.
         *
         * @param s the text, e.g. {@code rbd/disk1} or {@code rbd/disk1@snap1}
         * @return the parsed spec
         * @throws IllegalArgumentException with one line if {@code s} is not of that form
         */
        public static Spec parse(String s) {
            int slash = s.indexOf('/');
            int at = s.indexOf('@');
            if (slash <= 0 || slash == s.length() - 1 || s.indexOf('/', slash + 1) >= 0
                    || (at >= 0 && (at < slash + 2 || at == s.length() - 1))) {
                throw new IllegalArgumentException("--rbd wants POOL/IMAGE or POOL/IMAGE@SNAP, got '" + s + "'");
            }
            return at < 0 ? new Spec(s.substring(0, slash), s.substring(slash + 1), null)
                    : new Spec(s.substring(0, slash), s.substring(slash + 1, at), s.substring(at + 1));
        }

        @Override
        public String toString() {
            return pool + "/" + image + (snapshot == null ? "" : "@" + snapshot);
        }
    }

    private final Spec spec;
    private final long cluster;
    private final long ioctx;
    private final long image;
    private final boolean readOnly;
    private final int notifyFd;
    private volatile long capacity;
    private final Queue[] queues;
    private final int queueCount;
    private Thread reaper;
    private volatile boolean closing;
    private final AtomicLong errors = new AtomicLong();
    /** Guards the image handle against {@link #close()} for the size calls of other threads (watch, SIGHUP). */
    private final Object sizeLock = new Object();
    private boolean imageClosed;
    private Thread sizeWatch;
    /** Error kinds already logged (bit = errno & 63): one line each. */
    private final AtomicLong loggedErrnos = new AtomicLong();

    /**
     * Connects and opens the image. Call from an unpinned thread: librados' threads inherit the caller's CPU mask.
     *
     * @param spec            the image (and snapshot) to open
     * @param cephConf        ceph.conf path, or null for librados' default search ($CEPH_CONF, /etc/ceph/ceph.conf)
     * @param cephId          client name without "client." (null: admin)
     * @param readOnly        open read-only (forced for a snapshot: a snapshot opened writable is refused)
     * @param zeroCopyWrites  let librbd send write buffers without copying (only if they cannot change meanwhile)
     * @param queues          how many queues will be opened (decides who reaps completions)
     * @param connectTimeoutSeconds bound of the connect and of mon operations
     * @return the open backend
     * @throws IllegalArgumentException with one line on bad input or a cluster that cannot be used
     */
    public static RbdBackend open(Spec spec, Path cephConf, String cephId, boolean readOnly, boolean zeroCopyWrites,
            int queues, int connectTimeoutSeconds) {
        if (spec.snapshot() != null && !readOnly) {
            throw new IllegalArgumentException("snapshot " + spec + " is read-only: add --readonly");
        }
        if (cephConf != null && !Files.isReadable(cephConf)) {
            throw new IllegalArgumentException("ceph.conf not found or not readable: " + cephConf
                    + " (pass --ceph-conf PATH)");
        }
        if (cephConf == null && System.getenv("CEPH_CONF") == null && !Files.isReadable(Path.of("/etc/ceph/ceph.conf"))) {
            throw new IllegalArgumentException("no ceph.conf: pass --ceph-conf PATH, or set CEPH_CONF");
        }
        try {
            RbdLibrary.load();
        } catch (IllegalStateException e) {
            throw new IllegalArgumentException(e.getMessage());
        }
        long cluster = RbdLibrary.radosCreate(cephId);
        long ioctx = 0;
        long image = 0;
        try {
            try {
                RbdLibrary.confReadFile(cluster, cephConf == null ? null : cephConf.toString());
            } catch (ErrnoException e) {
                throw new IllegalArgumentException("cannot read ceph.conf "
                        + (cephConf == null ? "(default search)" : cephConf) + ": " + Errno.description(e.errno()));
            }
            String t = Integer.toString(connectTimeoutSeconds);
            RbdLibrary.confSet(cluster, "client_mount_timeout", t);
            RbdLibrary.confSet(cluster, "rados_mon_op_timeout", t);
            RbdLibrary.confSet(cluster, "rbd_cache", "false");
            RbdLibrary.confSet(cluster, "rbd_disable_zero_copy_writes", zeroCopyWrites ? "false" : "true");
            try {
                RbdLibrary.connect(cluster);
            } catch (ErrnoException e) {
                throw new IllegalArgumentException(connectError(e.errno(), cephId, connectTimeoutSeconds));
            }
            try {
                ioctx = RbdLibrary.ioctxCreate(cluster, spec.pool());
            } catch (ErrnoException e) {
                throw new IllegalArgumentException(e.errno() == Errno.ENOENT ? "no such pool: " + spec.pool()
                        : "cannot open pool " + spec.pool() + ": " + Errno.description(e.errno()));
            }
            try {
                image = RbdLibrary.open(ioctx, spec.image(), spec.snapshot(), readOnly);
            } catch (ErrnoException e) {
                throw new IllegalArgumentException(e.errno() == Errno.ENOENT
                        ? (spec.snapshot() == null ? "no such image: " + spec.pool() + "/" + spec.image()
                                : "no such image or snapshot: " + spec)
                        : "cannot open image " + spec + ": " + Errno.description(e.errno()));
            }
            return new RbdBackend(spec, cluster, ioctx, image, readOnly, queues);
        } catch (RuntimeException e) {
            if (image != 0) {
                RbdLibrary.close(image);
            }
            if (ioctx != 0) {
                RbdLibrary.ioctxDestroy(ioctx);
            }
            RbdLibrary.shutdown(cluster);
            throw e;
        }
    }

    private static String connectError(int errno, String id, int timeout) {
        String who = "client." + (id == null ? "admin" : id);
        return switch (errno) {
            case Errno.ETIMEDOUT -> "Ceph cluster unreachable: no monitor answered within " + timeout
                    + " s (check mon_host in ceph.conf)";
            case Errno.EACCES, Errno.EPERM -> "Ceph authentication failed for " + who
                    + " (check --ceph-id and the keyring)";
            case Errno.ENOENT -> "Ceph keyring for " + who + " not found (check --ceph-id, keyring in ceph.conf)";
            default -> "cannot connect to the Ceph cluster as " + who + ": " + Errno.description(errno);
        };
    }

    private RbdBackend(Spec spec, long cluster, long ioctx, long image, boolean readOnly, int queues) {
        this.spec = spec;
        this.cluster = cluster;
        this.ioctx = ioctx;
        this.image = image;
        this.readOnly = readOnly;
        this.capacity = RbdLibrary.size(image) & ~511L;
        this.queueCount = Math.max(1, queues);
        this.queues = new Queue[queueCount];
        this.notifyFd = EventFd.create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK);
        try {
            RbdLibrary.setImageNotification(image, notifyFd);
        } catch (RuntimeException e) {
            FileIo.close(notifyFd);
            throw e;
        }
        if (queueCount > 1) {
            reaper = Thread.ofPlatform().name("vduse4j-rbd-reaper").daemon(true).unstarted(this::reapLoop);
            reaper.start();
        }
    }

    @Override
    public long capacity() {
        return capacity;
    }

    /** Re-reads the image size ({@code rbd resize} is seen here: SIGHUP, or {@link #watchSize}). */
    @Override
    public long refreshCapacity() {
        synchronized (sizeLock) {
            if (!imageClosed) {
                capacity = RbdLibrary.size(image) & ~511L;
            }
            return capacity;
        }
    }

    /**
     * Starts watching the image's size: once per {@code periodMillis}, on a daemon thread of its own (no librbd upcall
     * into Java), compares {@code rbd_get_size} with {@link #capacity()} and runs {@code onChange} when they differ
     * (the export's resize: {@code BlockExport::resize}, which calls {@link #refreshCapacity()}). Stopped by
     * {@link #close()}. A failed size read (cluster unreachable) is skipped until the next period.
     *
     * @param onChange     what to run on a size change (on the watch thread)
     * @param periodMillis how often to look
     */
    public synchronized void watchSize(Runnable onChange, long periodMillis) {
        if (sizeWatch != null || spec.snapshot() != null) {
            return; // a snapshot's size is fixed
        }
        sizeWatch = Thread.ofPlatform().name("vduse4j-rbd-size").daemon(true).start(() -> {
            while (!closing) {
                try {
                    Thread.sleep(periodMillis);
                } catch (InterruptedException e) {
                    return;
                }
                long now;
                synchronized (sizeLock) {
                    if (imageClosed) {
                        return;
                    }
                    try {
                        now = RbdLibrary.size(image) & ~511L;
                    } catch (RuntimeException e) {
                        continue;
                    }
                }
                if (now != capacity && !closing) {
                    try {
                        onChange.run();
                    } catch (RuntimeException e) {
                        System.err.println("vduse4j: rbd " + spec + ": resize to " + now + " bytes failed: " + e);
                    }
                }
            }
        });
    }

    @Override
    public boolean isReadOnly() {
        return readOnly;
    }

    @Override
    public boolean supportsDiscard() {
        return true;
    }

    @Override
    public boolean supportsWriteZeroes() {
        return true;
    }

    @Override
    public boolean supportsFlush() {
        return true;
    }

    @Override
    public int discardGranularity() {
        return DISCARD_GRANULARITY;
    }

    /** rbd_cache is off: a completed write is already durable. */
    @Override
    public void flush() {}

    /**
     * Cluster errors so far (each completed a request with IOERR).
     *
     * @return how many requests librbd failed
     */
    public long errors() {
        return errors.get();
    }

    @Override
    public synchronized BackendQueue openQueue(int queueIndex) {
        if (queueIndex < 0 || queueIndex >= queueCount) {
            throw new IllegalArgumentException("queue " + queueIndex + " out of 0.." + (queueCount - 1));
        }
        Queue q = new Queue(queueIndex);
        queues[queueIndex] = q;
        return q;
    }

    @Override
    public String describe() {
        return "rbd " + spec + (readOnly ? " (read-only)" : "");
    }

    @Override
    public void close() {
        closing = true;
        Thread watch;
        synchronized (this) {
            watch = sizeWatch;
        }
        if (watch != null) {
            watch.interrupt();
        }
        synchronized (sizeLock) {
            imageClosed = true; // from here on no size call touches the image
        }
        if (reaper != null) {
            EventFd.signal(notifyFd);
            try {
                reaper.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        RbdLibrary.close(image); // waits for librbd's in-flight I/O
        RbdLibrary.ioctxDestroy(ioctx);
        RbdLibrary.shutdown(cluster);
        FileIo.close(notifyFd);
    }

    // ---- completions ----

    /** The reaper of a multi-queue export: sleeps on librbd's eventfd, hands completions to their pollers. */
    private void reapLoop() {
        CallState st = new CallState();
        Poll p = new Poll(1);
        p.add(notifyFd, Poll.POLLIN);
        Reaped scratch = new Reaped();
        while (!closing) {
            int n = p.pollRaw(st, 1000);
            if (n > 0) {
                EventFd.consumeRaw(st, notifyFd);
            }
            reap(scratch);
        }
    }

    /** Per reaping thread: where rbd_poll_io_events writes completion addresses. */
    private static final class Reaped {
        final MemorySegment completions = Arena.ofAuto().allocate(8L * REAP_BATCH, 8);
        final long address = completions.address();
    }

    /** Finishes every ready completion; returns how many requests completed. */
    private int reap(Reaped r) {
        int total = 0;
        int n;
        do {
            n = RbdLibrary.pollIoEvents(image, r.address, REAP_BATCH);
            for (int i = 0; i < n; i++) {
                long c = r.completions.getAtIndex(ValueLayout.JAVA_LONG, i);
                long arg = RbdLibrary.aioArg(c);
                long rv = RbdLibrary.aioReturnValue(c);
                RbdLibrary.aioRelease(c);
                if (rv < 0) {
                    logError("I/O", -1, rv);
                }
                Queue q = queues[(int) (arg >>> 32)];
                if (q != null && q.finish((int) arg, rv)) {
                    total++;
                }
            }
        } while (n == REAP_BATCH);
        return total;
    }

    private void logError(String op, long offset, long rv) {
        errors.incrementAndGet();
        int errno = (int) Math.min(-rv, 4095);
        long bit = 1L << (errno & 63);
        long seen = loggedErrnos.get();
        if ((seen & bit) == 0 && loggedErrnos.compareAndSet(seen, seen | bit)) {
            System.err.println("vduse4j: rbd " + spec + ": " + op + " at " + offset + " failed: "
                    + Errno.name(errno) + " (" + Errno.description(errno) + "); completing with IOERR"
                    + " (further " + Errno.name(errno) + " errors not logged)");
        }
    }

    /** One queue: its poller submits; completions come from {@link #reap} on the poller or the reaper. */
    private final class Queue implements BackendQueue {
        private final int index;
        private final BlockRequest[] inflight = new BlockRequest[MAX_SLOTS];
        /** Sub-operations (a DISCARD/WRITE_ZEROES per range) still outstanding per slot. */
        private final AtomicIntegerArray pending = new AtomicIntegerArray(MAX_SLOTS);
        private final int[] status = new int[MAX_SLOTS];
        private final MemorySegment[] iovecs = new MemorySegment[MAX_SLOTS];
        private final Arena arena = Arena.ofAuto(); // librbd may hold a read's iovecs until image close
        private final MemorySegment completionOut = arena.allocate(8, 8);
        private final Reaped reaped = queueCount == 1 ? new Reaped() : null;

        Queue(int index) {
            this.index = index;
        }

        @Override
        public void submit(BlockRequest req) {
            int slot = req.slot();
            if (slot >= MAX_SLOTS) {
                req.complete(BlockRequest.STATUS_IOERR);
                return;
            }
            switch (req.op()) {
                case BlockRequest.READ, BlockRequest.WRITE -> data(req, slot);
                case BlockRequest.FLUSH -> {
                    start(req, slot, 1);
                    long c = completion(slot);
                    submitted(slot, c, c == 0 ? -Errno.ENOMEM : RbdLibrary.aioFlush(image, c), "flush", 0);
                }
                case BlockRequest.DISCARD, BlockRequest.WRITE_ZEROES -> ranges(req, slot);
                default -> req.complete(BlockRequest.STATUS_UNSUPP);
            }
        }

        private void start(BlockRequest req, int slot, int parts) {
            inflight[slot] = req;
            status[slot] = BlockRequest.STATUS_OK;
            pending.set(slot, parts); // volatile: ordered before the submissions below
        }

        private void data(BlockRequest req, int slot) {
            int n = req.bufferCount();
            MemorySegment iov = iovecs[slot];
            if (iov == null || iov.byteSize() < n * IOV_BYTES) {
                // Once per slot (sized for the queue's largest chain), never per request.
                iov = iovecs[slot] = arena.allocate((long) req.maxBuffers() * IOV_BYTES, 8);
            }
            for (int i = 0; i < n; i++) {
                MemorySegment b = req.buffer(i);
                if (!b.isNative()) {
                    req.complete(BlockRequest.STATUS_IOERR); // librbd needs native addresses
                    return;
                }
                iov.set(ValueLayout.JAVA_LONG, i * IOV_BYTES + iovec.iov_base$offset(), b.address() + req.bufferOffset(i));
                iov.set(ValueLayout.JAVA_LONG, i * IOV_BYTES + iovec.iov_len$offset(), req.bufferLength(i));
            }
            boolean read = req.op() == BlockRequest.READ;
            start(req, slot, 1);
            long c = completion(slot);
            int r = c == 0 ? -Errno.ENOMEM : read
                    ? RbdLibrary.aioReadv(image, iov.address(), n, req.offset(), c)
                    : RbdLibrary.aioWritev(image, iov.address(), n, req.offset(), c);
            submitted(slot, c, r, read ? "read" : "write", req.offset());
        }

        private void ranges(BlockRequest req, int slot) {
            int n = req.rangeCount();
            boolean zeroes = req.op() == BlockRequest.WRITE_ZEROES;
            start(req, slot, n);
            for (int i = 0; i < n; i++) {
                long off = req.rangeOffset(i);
                long len = req.rangeLength(i);
                long c = completion(slot);
                int r = c == 0 ? -Errno.ENOMEM : zeroes
                        ? RbdLibrary.aioWriteZeroes(image, off, len, c)
                        : RbdLibrary.aioDiscard(image, off, len, c);
                submitted(slot, c, r, zeroes ? "write-zeroes" : "discard", off);
            }
        }

        /** A completion whose arg says queue and slot; 0 if librbd could not make one. */
        private long completion(int slot) {
            int r = RbdLibrary.aioCreateCompletion(((long) index << 32) | slot, completionOut.address());
            return r < 0 ? 0 : completionOut.get(ValueLayout.JAVA_LONG, 0);
        }

        /** After a submission call: a failed one finishes its part here (librbd will not complete it). */
        private void submitted(int slot, long c, int r, String op, long offset) {
            if (r < 0) {
                if (c != 0) {
                    RbdLibrary.aioRelease(c);
                }
                logError(op, offset, r);
                finish(slot, r);
            }
        }

        /** One part of slot's request finished with {@code rv}; completes the request after its last part. */
        boolean finish(int slot, long rv) {
            if (rv < 0) {
                status[slot] = BlockRequest.STATUS_IOERR;
            }
            if (pending.decrementAndGet(slot) != 0) {
                return false;
            }
            BlockRequest req = inflight[slot];
            inflight[slot] = null;
            req.complete(status[slot]);
            return true;
        }

        @Override
        public int poll() {
            return reaped == null ? 0 : reap(reaped);
        }

        @Override
        public int completionFd() {
            return queueCount == 1 ? notifyFd : -1;
        }

        @Override
        public void close() {
            synchronized (RbdBackend.this) {
                queues[index] = null;
            }
        }
    }
}
