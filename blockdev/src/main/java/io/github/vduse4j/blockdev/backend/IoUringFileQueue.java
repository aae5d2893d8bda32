package io.github.vduse4j.blockdev.backend;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.uapi.Uapi;
import io.github.vduse4j.blockdev.uring.IoUringRing;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One queue of an {@link IoUringFileBackend}: its own ring, used only by the queue's poller thread (submit and reap in
 * the same loop, no handoff).
 *
 * <p>A request becomes one or more <em>ios</em> (one SQE in the kernel at a time each): a READ/WRITE is split into
 * groups of up to {@link #IOV_PER_IO} buffers at consecutive file positions (one buffer: {@code OP_READ/WRITE}; more:
 * {@code OP_READV/WRITEV} over the io's own iovec slots in native memory), a FLUSH is one FSYNC, each DISCARD /
 * WRITE_ZEROES range is one FALLOCATE. Everything an io needs is captured at {@link #submit} (the request's buffer
 * list is valid only then). The request completes when its last io does; short transfers are continued from where
 * they stopped, {@code EAGAIN}/{@code EINTR} resubmitted, a zero-byte transfer (end of file) or any other error
 * makes the request {@code STATUS_IOERR}.
 *
 * <p>Batching: {@link #submit} only writes SQEs (or parks ios when the SQ is full); {@link #poll} publishes them all
 * with one {@code io_uring_enter} and reaps the CQ. The virtio-blk handler calls {@code poll()} at the start of every
 * round and the poller keeps calling it while {@link #inflight()} is non-zero, so a round's requests go to the kernel
 * together at the start of the next round. Back-pressure: ios are a fixed pool of
 * {@code 4 x queueDepth} (a power of two); the CQ is at least as large, so it never overflows. A submit that finds too
 * few free ios waits in {@code io_uring_enter(GETEVENTS, min_complete=1)} for some to finish (only when more than the
 * configured depth is in flight).
 *
 * <p>Where the kernel cannot pin the driver's buffers (a data io completes with EFAULT: O_DIRECT or 9p/netfs over a
 * VDUSE bounce mapping on Linux 6.12, see {@link StagingBuffer}), the queue switches for good: that io and every data
 * io after it move synchronously through a staging buffer with {@code pread}/{@code pwrite} on the poller thread
 * (the buffers captured at submit stay valid until the request completes). FLUSH, DISCARD and WRITE_ZEROES still go
 * through the ring.
 *
 * <p>Nothing here allocates (but the staging buffer, once, at that switch), locks or throws after construction; the completion sink must not re-enter
 * {@code submit}/{@code poll} (the virtio-blk handler only records the slot; a writethrough flush it needs is submitted
 * after {@code poll} returned).
 */
final class IoUringFileQueue implements BackendQueue {
    /** Buffers per io (iovec slots per io); a request with more buffers uses several ios. */
    static final int IOV_PER_IO = 8;
    private static final long IOVEC_SIZE = 16; // struct iovec { void *iov_base; size_t iov_len; }

    private static final int K_READ = 0, K_WRITE = 1, K_READV = 2, K_WRITEV = 3, K_FSYNC = 4, K_DISCARD = 5,
            K_ZERO_PUNCH = 6, K_ZERO_RANGE = 7, K_ZERO_PUNCH_AFTER_RANGE = 8, K_ZERO_WRITE = 9;

    private static final int OP_READ = Uapi.IORING_OP_READ();
    private static final int OP_WRITE = Uapi.IORING_OP_WRITE();
    private static final int OP_READV = Uapi.IORING_OP_READV();
    private static final int OP_WRITEV = Uapi.IORING_OP_WRITEV();
    private static final int OP_FSYNC = Uapi.IORING_OP_FSYNC();
    private static final int OP_FALLOCATE = Uapi.IORING_OP_FALLOCATE();
    private static final int FSYNC_DATASYNC = Uapi.IORING_FSYNC_DATASYNC();
    private static final int ENTER_GETEVENTS = Uapi.IORING_ENTER_GETEVENTS();
    private static final int PUNCH = FileIo.FALLOC_FL_PUNCH_HOLE | FileIo.FALLOC_FL_KEEP_SIZE;
    private static final int ZERO_RANGE = FileIo.FALLOC_FL_ZERO_RANGE | FileIo.FALLOC_FL_KEEP_SIZE;

    private final CallState st = new CallState();
    private final IoUringRing ring;
    private final int ioFd;
    private final int fileFd;
    private final IoUringFileBackend backend;
    private final int sqeFlags;
    private final boolean fixedFile;
    private final long zerosAddress;
    private final MemorySegment zeros; // kept reachable while its address is in SQEs
    private final Arena arena = Arena.ofShared();

    // ---- the io pool (index = SQE user_data) ----
    private final int capacity;
    private final MemorySegment iovecs;
    private final BlockRequest[] request;
    private final int[] kind;
    private final long[] position;
    private final long[] remaining;
    private final long[] address;
    /** The segment of a one-buffer io, and of each iovec slot: for staged copies after EFAULT. */
    private final MemorySegment[] ioSegment;
    private final MemorySegment[] iovSegment;
    /** Set at the first EFAULT of a data io; from then on data ios are staged copies (see the class comment). */
    StagingBuffer staging;
    private final int[] iovFirst;
    private final int[] iovCount;
    private final int[] next;
    private final int[] leader;
    private final int[] groupLeft; // leader only: ios of the request not finished yet
    private final boolean[] groupFailed; // leader only
    private final int[] free;
    private int freeCount;
    /** ios waiting for SQ space, FIFO. */
    private final int[] parked;
    private int parkedHead, parkedCount;

    private int inKernel; // SQEs prepared and not reaped
    private int inflight; // requests
    private int completedNow;
    private boolean closed;

    // ---- counters (poller thread; read by tests and benchmarks) ----
    long enters;
    long resubmits;
    long waits;
    /** Test seam: WRITE_ZEROES goes straight to writing zeros, as on a file system without fallocate. */
    boolean zeroByWriting;

    /** Signalled by the kernel at every completion (IORING_REGISTER_EVENTFD), or -1 where that is refused. */
    private final int completionFd;

    IoUringFileQueue(IoUringFileBackend backend, IoUringFileBackend.Options o) {
        int ioCap = Integer.highestOneBit(Math.max(64, 4 * o.queueDepth()) - 1) << 1;
        ioCap = Math.min(ioCap, 65536); // IORING_MAX_CQ_ENTRIES
        int sqEntries = o.ringEntries() > 0 ? o.ringEntries() : Math.min(o.queueDepth(), 1024);
        this.ring = IoUringRing.openForPolling(sqEntries, Math.max(ioCap, sqEntries));
        this.capacity = Math.min(ioCap, ring.cqEntries());
        boolean fixed = false;
        try {
            if (o.fixedFile()) {
                try {
                    ring.registerFile(backend.fd());
                    fixed = true;
                } catch (ErrnoException e) {
                    fixed = false; // e.g. an old kernel or RLIMIT_NOFILE: plain fds work too
                }
            }
            this.iovecs = arena.allocate(IOVEC_SIZE * IOV_PER_IO * capacity, 4096);
            this.completionFd = completionEventFd(ring);
        } catch (RuntimeException e) {
            ring.close();
            throw e;
        }
        this.fixedFile = fixed;
        this.ioFd = fixed ? 0 : backend.fd();
        this.fileFd = backend.fd();
        this.backend = backend;
        this.sqeFlags = fixed ? Uapi.IOSQE_FIXED_FILE() : 0;
        this.zeros = backend.zeros;
        this.zerosAddress = zeros.address();

        int n = capacity;
        request = new BlockRequest[n];
        kind = new int[n];
        position = new long[n];
        remaining = new long[n];
        address = new long[n];
        ioSegment = new MemorySegment[n];
        iovSegment = new MemorySegment[n * IOV_PER_IO];
        iovFirst = new int[n];
        iovCount = new int[n];
        next = new int[n];
        leader = new int[n];
        groupLeft = new int[n];
        groupFailed = new boolean[n];
        free = new int[n];
        parked = new int[n];
        for (int i = 0; i < n; i++) {
            free[i] = n - 1 - i;
        }
        freeCount = n;
    }

    IoUringRing ring() {
        return ring;
    }

    boolean usesFixedFile() {
        return fixedFile;
    }

    int ioCapacity() {
        return capacity;
    }

    @Override
    public void submit(BlockRequest r) {
        int needed;
        switch (r.op()) {
            case BlockRequest.READ, BlockRequest.WRITE -> {
                int n = r.bufferCount();
                if (n == 0) {
                    r.complete(BlockRequest.STATUS_OK);
                    return;
                }
                for (int i = 0; i < n; i++) {
                    if (checkedAddress(r.buffer(i), r.bufferOffset(i), r.bufferLength(i)) < 0) {
                        r.complete(BlockRequest.STATUS_IOERR); // not native, freed, or out of bounds
                        return;
                    }
                }
                needed = (n + IOV_PER_IO - 1) / IOV_PER_IO;
            }
            case BlockRequest.FLUSH -> needed = 1;
            case BlockRequest.DISCARD, BlockRequest.WRITE_ZEROES -> {
                needed = r.rangeCount();
                if (needed == 0) {
                    r.complete(BlockRequest.STATUS_OK);
                    return;
                }
            }
            default -> {
                r.complete(BlockRequest.STATUS_IOERR);
                return;
            }
        }
        if (needed > capacity || (freeCount < needed && !waitForIos(needed))) {
            r.complete(BlockRequest.STATUS_IOERR);
            return;
        }
        inflight++;
        int first = free[freeCount - 1];
        groupLeft[first] = needed;
        groupFailed[first] = false;
        int prev = -1;
        for (int k = 0; k < needed; k++) {
            int io = free[--freeCount];
            request[io] = r;
            leader[io] = first;
            next[io] = -1;
            if (prev >= 0) {
                next[prev] = io;
            }
            prev = io;
        }
        // Capture the request into its ios, then queue them (in order of file position).
        switch (r.op()) {
            case BlockRequest.READ, BlockRequest.WRITE -> {
                boolean write = r.op() == BlockRequest.WRITE;
                long pos = r.offset();
                int n = r.bufferCount();
                int io = first;
                for (int start = 0; start < n; start += IOV_PER_IO) {
                    int count = Math.min(IOV_PER_IO, n - start);
                    position[io] = pos;
                    if (count == 1) {
                        kind[io] = write ? K_WRITE : K_READ;
                        address[io] = checkedAddress(r.buffer(start), r.bufferOffset(start), r.bufferLength(start));
                        ioSegment[io] = r.buffer(start);
                        remaining[io] = r.bufferLength(start);
                    } else {
                        kind[io] = write ? K_WRITEV : K_READV;
                        long slot = (long) io * IOV_PER_IO * IOVEC_SIZE;
                        long total = 0;
                        for (int j = 0; j < count; j++) {
                            int b = start + j;
                            int len = r.bufferLength(b);
                            iovecs.set(ValueLayout.JAVA_LONG, slot + j * IOVEC_SIZE,
                                    checkedAddress(r.buffer(b), r.bufferOffset(b), len));
                            iovecs.set(ValueLayout.JAVA_LONG, slot + j * IOVEC_SIZE + 8, len);
                            iovSegment[io * IOV_PER_IO + j] = r.buffer(b);
                            total += len;
                        }
                        iovFirst[io] = 0;
                        iovCount[io] = count;
                        remaining[io] = total;
                    }
                    pos += remaining[io];
                    enqueue(io);
                    io = next[io];
                }
            }
            case BlockRequest.FLUSH -> {
                kind[first] = K_FSYNC;
                enqueue(first);
            }
            default -> { // DISCARD, WRITE_ZEROES
                boolean discard = r.op() == BlockRequest.DISCARD;
                int io = first;
                for (int i = 0; i < needed; i++) {
                    position[io] = r.rangeOffset(i);
                    remaining[io] = r.rangeLength(i);
                    kind[io] = discard ? K_DISCARD : zeroByWriting ? K_ZERO_WRITE : r.rangeMayUnmap(i) ? K_ZERO_PUNCH : K_ZERO_RANGE;
                    enqueue(io);
                    io = next[io];
                }
            }
        }
    }

    /** {@code seg[off, off + len)} as an address, or -1 unless native, alive and in bounds (heap addresses are not). */
    private static long checkedAddress(MemorySegment seg, long off, long len) {
        if (seg == null || !seg.isNative() || !seg.scope().isAlive() || off < 0 || len < 0 || off > seg.byteSize() - len) {
            return -1;
        }
        return seg.address() + off;
    }

    /** Publishes everything prepared with one io_uring_enter and reaps completions; returns requests completed. */
    @Override
    public int poll() {
        completedNow = 0;
        if (inflight == 0) {
            return 0;
        }
        unpark();
        boolean taskWork = inKernel > 0 && ring.needsEnter();
        if (ring.unsubmitted() > 0 || taskWork) {
            enters++;
            // A failure (EINTR, EAGAIN, EBUSY) leaves the SQEs in the ring for the next poll.
            ring.submit(st, 0, taskWork ? ENTER_GETEVENTS : 0);
        }
        reap();
        return completedNow;
    }

    @Override
    public int inflight() {
        return inflight;
    }

    /** Puts an io in the SQ, or parks it when the SQ is full (FIFO, so parked ios keep their order). */
    private void enqueue(int io) {
        if (staging != null && kind[io] <= K_WRITEV) {
            finish(io, staged(io));
            return;
        }
        if (parkedCount == 0 && ring.hasSqSpace()) {
            prepare(io);
        } else {
            parked[(parkedHead + parkedCount) & (capacity - 1)] = io;
            parkedCount++;
        }
    }

    private void unpark() {
        while (parkedCount > 0 && ring.hasSqSpace()) {
            int io = parked[parkedHead];
            parkedHead = (parkedHead + 1) & (capacity - 1);
            parkedCount--;
            prepare(io);
        }
    }

    private void prepare(int io) {
        long pos = position[io];
        switch (kind[io]) {
            case K_READ -> ring.prepare(OP_READ, sqeFlags, ioFd, pos, address[io], (int) remaining[io], 0, io);
            case K_WRITE -> ring.prepare(OP_WRITE, sqeFlags, ioFd, pos, address[io], (int) remaining[io], 0, io);
            case K_READV, K_WRITEV -> ring.prepare(kind[io] == K_READV ? OP_READV : OP_WRITEV, sqeFlags, ioFd, pos,
                    iovecs.address() + ((long) io * IOV_PER_IO + iovFirst[io]) * IOVEC_SIZE, iovCount[io], 0, io);
            case K_FSYNC -> ring.prepare(OP_FSYNC, sqeFlags, ioFd, 0, 0, 0, FSYNC_DATASYNC, io);
            // FALLOCATE: sqe->addr is the length, sqe->len the mode.
            case K_DISCARD, K_ZERO_PUNCH, K_ZERO_PUNCH_AFTER_RANGE ->
                    ring.prepare(OP_FALLOCATE, sqeFlags, ioFd, pos, remaining[io], PUNCH, 0, io);
            case K_ZERO_RANGE -> ring.prepare(OP_FALLOCATE, sqeFlags, ioFd, pos, remaining[io], ZERO_RANGE, 0, io);
            default -> ring.prepare(OP_WRITE, sqeFlags, ioFd, pos, zerosAddress,
                    (int) Math.min(remaining[io], IoUringFileBackend.ZERO_CHUNK), 0, io); // K_ZERO_WRITE
        }
        inKernel++;
    }

    /** Reaps every ready CQE; one at a time so that completions may be re-entered safely. */
    private void reap() {
        IoUringRing q = ring;
        while (q.ready() > 0) {
            int io = (int) q.userData(0);
            int res = q.result(0);
            q.advance(1);
            inKernel--;
            handle(io, res);
        }
    }

    private void handle(int io, int res) {
        if (res == -Errno.EAGAIN || res == -Errno.EINTR) {
            retry(io);
            return;
        }
        if (res == -Errno.EFAULT && kind[io] <= K_WRITEV) {
            if (staging == null) {
                staging = backend.stagingStarted(); // the kernel cannot pin the driver's buffers
            }
            retry(io); // what is left of it, as a staged copy
            return;
        }
        switch (kind[io]) {
            case K_READ, K_WRITE, K_ZERO_WRITE -> {
                if (res <= 0) {
                    finish(io, false); // error, or end of file (the file shrank under the export)
                    return;
                }
                position[io] += res;
                remaining[io] -= res;
                if (remaining[io] == 0) {
                    finish(io, true);
                } else {
                    if (kind[io] != K_ZERO_WRITE) {
                        address[io] += res; // the zero buffer is reused from its start
                    }
                    retry(io);
                }
            }
            case K_READV, K_WRITEV -> {
                if (res <= 0) {
                    finish(io, false);
                    return;
                }
                position[io] += res;
                remaining[io] -= res;
                if (remaining[io] == 0) {
                    finish(io, true);
                } else {
                    skipIovecs(io, res);
                    retry(io);
                }
            }
            case K_FSYNC -> finish(io, res == 0);
            // Discard is a hint (virtio 1.2 §5.2.6.2): where holes are unsupported, keep the data.
            case K_DISCARD -> finish(io, res == 0 || res == -Errno.EOPNOTSUPP);
            case K_ZERO_PUNCH -> {
                if (res == 0) {
                    finish(io, true);
                } else {
                    kind[io] = K_ZERO_RANGE;
                    retry(io);
                }
            }
            case K_ZERO_RANGE -> {
                if (res == 0) {
                    finish(io, true);
                } else {
                    kind[io] = res == -Errno.EOPNOTSUPP ? K_ZERO_PUNCH_AFTER_RANGE : K_ZERO_WRITE;
                    retry(io);
                }
            }
            default -> { // K_ZERO_PUNCH_AFTER_RANGE
                if (res == 0) {
                    finish(io, true);
                } else {
                    kind[io] = K_ZERO_WRITE; // no fallocate support at all: write zeros
                    retry(io);
                }
            }
        }
    }

    private void retry(int io) {
        resubmits++;
        enqueue(io);
    }

    /** Moves what is left of a data io through the staging buffer, synchronously; false on error or end of file. */
    private boolean staged(int io) {
        boolean write = kind[io] == K_WRITE || kind[io] == K_WRITEV;
        if (kind[io] == K_READ || kind[io] == K_WRITE) {
            return staged(write, ioSegment[io], address[io], remaining[io], position[io]);
        }
        long slot = (long) io * IOV_PER_IO * IOVEC_SIZE;
        long pos = position[io];
        for (int i = iovFirst[io], end = i + iovCount[io]; i < end; i++) {
            long addr = iovecs.get(ValueLayout.JAVA_LONG, slot + i * IOVEC_SIZE);
            long len = iovecs.get(ValueLayout.JAVA_LONG, slot + i * IOVEC_SIZE + 8);
            if (!staged(write, iovSegment[io * IOV_PER_IO + i], addr, len, pos)) {
                return false;
            }
            pos += len;
        }
        return true;
    }

    /** {@code len} bytes at {@code address} (inside {@code seg}, checked at submit) to or from the file at {@code pos}. */
    private boolean staged(boolean write, MemorySegment seg, long address, long len, long pos) {
        long off = address - seg.address();
        while (len > 0) {
            long n = staging.transfer(st, fileFd, write, seg, off, len, pos);
            if (n == -Errno.EINTR || n == -Errno.EAGAIN) {
                continue;
            }
            if (n <= 0) {
                return false;
            }
            off += n;
            pos += n;
            len -= n;
        }
        return true;
    }

    /** Drops the first {@code done} bytes of an io's iovecs after a short transfer. */
    private void skipIovecs(int io, long done) {
        long slot = (long) io * IOV_PER_IO * IOVEC_SIZE;
        int i = iovFirst[io];
        int end = i + iovCount[io];
        while (done > 0 && i < end) {
            long at = slot + i * IOVEC_SIZE;
            long len = iovecs.get(ValueLayout.JAVA_LONG, at + 8);
            if (done >= len) {
                done -= len;
                i++;
            } else {
                iovecs.set(ValueLayout.JAVA_LONG, at, iovecs.get(ValueLayout.JAVA_LONG, at) + done);
                iovecs.set(ValueLayout.JAVA_LONG, at + 8, len - done);
                done = 0;
            }
        }
        iovCount[io] = end - i;
        iovFirst[io] = i;
    }

    /** One io is done; the request completes with its last io. */
    private void finish(int io, boolean ok) {
        int lead = leader[io];
        if (!ok) {
            groupFailed[lead] = true;
        }
        if (--groupLeft[lead] > 0) {
            return;
        }
        BlockRequest r = request[lead];
        for (int i = lead; i >= 0; i = next[i]) {
            request[i] = null;
            free[freeCount++] = i;
        }
        inflight--;
        completedNow++;
        r.complete(groupFailed[lead] ? BlockRequest.STATUS_IOERR : BlockRequest.STATUS_OK);
    }

    /** Submits and blocks in io_uring_enter until at least {@code needed} ios are free; false if the kernel refuses. */
    private boolean waitForIos(int needed) {
        while (freeCount < needed) {
            unpark();
            waits++;
            enters++;
            int r = ring.submit(st, 1, ENTER_GETEVENTS);
            if (r < 0 && r != -Errno.EINTR && r != -Errno.EAGAIN && r != -Errno.EBUSY) {
                return false;
            }
            reap();
        }
        return true;
    }

    /** A non-blocking eventfd registered with the ring, or -1 if the kernel refuses it (the poller then spins). */
    private static int completionEventFd(IoUringRing ring) {
        int efd = EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC);
        try {
            ring.registerEventFd(efd);
            return efd;
        } catch (ErrnoException e) {
            FileIo.close(efd);
            return -1;
        }
    }

    @Override
    public int completionFd() {
        return completionFd;
    }

    /** Waits for what is still in flight (the kernel writes into the driver's buffers until then), then frees the ring. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        while (inflight > 0) {
            unpark();
            int r = ring.submit(st, 1, ENTER_GETEVENTS);
            if (r < 0 && r != -Errno.EINTR && r != -Errno.EAGAIN && r != -Errno.EBUSY) {
                break;
            }
            reap();
        }
        ring.close();
        if (completionFd >= 0) {
            FileIo.close(completionFd);
        }
        arena.close();
    }
}
