package io.github.vduse4j.blockdev.uring;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.MemoryMap;
import io.github.vduse4j.bindings.Syscall;
import io.github.vduse4j.bindings.uapi.Uapi;
import io.github.vduse4j.bindings.uapi.io_cqring_offsets;
import io.github.vduse4j.bindings.uapi.io_sqring_offsets;
import io.github.vduse4j.bindings.uapi.io_uring_cqe;
import io.github.vduse4j.bindings.uapi.io_uring_params;
import io.github.vduse4j.bindings.uapi.io_uring_sqe;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * One io_uring instance driven by hand over its mmapped rings (as netty's io_uring transport and liburing do, no
 * liburing): the application fills SQEs at the SQ tail, publishes the tail, calls {@code io_uring_enter}, and reads
 * CQEs between the CQ head and tail. Single-threaded: one thread (a queue's poller) prepares, submits and reaps.
 *
 * <p>Memory ordering (Linux {@code io_uring/io_uring.c}, liburing {@code src/queue.c}):
 * <ul>
 *   <li>SQ tail: stored with <b>release</b> after the SQEs are written, because the kernel reads it with
 *       {@code smp_load_acquire} and must then see complete SQEs.</li>
 *   <li>SQ head: loaded with <b>acquire</b>, because the kernel stores it with {@code smp_store_release} once it has
 *       read the SQEs; only then may their slots be overwritten.</li>
 *   <li>CQ tail: loaded with <b>acquire</b> before reading CQEs, pairing with the kernel's {@code smp_store_release}
 *       after it wrote them.</li>
 *   <li>CQ head: stored with <b>release</b> after the CQEs were read, so the kernel (which reads it to find free CQ
 *       slots) cannot overwrite a CQE we have not read yet.</li>
 * </ul>
 * No SQPOLL, so the kernel reads the SQ only inside {@code io_uring_enter} on this thread and no full fence is needed
 * around the SQ flags (liburing needs one only for {@code IORING_SQ_NEED_WAKEUP}).
 *
 * <p>The SQ index array is filled once with the identity ({@code array[i] = i}), so SQE {@code tail & mask} is the
 * one published. The hot methods allocate nothing and never throw: failures come back as {@code -errno}.
 */
public final class IoUringRing implements AutoCloseable {
    /** {@code sizeof(struct io_uring_sqe)} and {@code sizeof(struct io_uring_cqe)} (no SQE128 / CQE32). */
    static final long SQE_SIZE = io_uring_sqe.sizeof();
    static final long CQE_SIZE = io_uring_cqe.sizeof();

    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle().withInvokeExactBehavior();

    // SQE field offsets from the generated layout (checked against gcc by the bindings' layout test).
    private static final long SQE_OPCODE = io_uring_sqe.opcode$offset();
    private static final long SQE_FLAGS = io_uring_sqe.flags$offset();
    private static final long SQE_IOPRIO = io_uring_sqe.ioprio$offset();
    private static final long SQE_FD = io_uring_sqe.fd$offset();
    private static final long SQE_OFF = io_uring_sqe.off$offset();
    private static final long SQE_ADDR = io_uring_sqe.addr$offset();
    private static final long SQE_LEN = io_uring_sqe.len$offset();
    private static final long SQE_OP_FLAGS = io_uring_sqe.rw_flags$offset(); // union: rw_flags, fsync_flags, ...
    private static final long SQE_USER_DATA = io_uring_sqe.user_data$offset();
    /** buf_index, personality, splice_fd_in/file_index, addr3, __pad2: all zero for the opcodes used here. */
    private static final long SQE_TAIL_WORDS = io_uring_sqe.buf_index$offset();
    private static final long CQE_USER_DATA = io_uring_cqe.user_data$offset();
    private static final long CQE_RES = io_uring_cqe.res$offset();

    private final int fd;
    private final int setupFlags;
    private final int features;
    private final Arena arena = Arena.ofShared(); // created by the control thread, used by the poller
    private final MemorySegment sqRing;
    private final MemorySegment cqRing;
    private final MemorySegment sqes;

    private final long sqHeadOff, sqTailOff, sqFlagsOff;
    private final int sqMask, sqEntries;
    private final long cqHeadOff, cqTailOff, cqesOff;
    private final int cqMask, cqEntries;

    /** Our SQ tail (published with release by {@link #submit}); the last SQ head we read. */
    private int sqTail, sqHead;
    /** Our CQ head (published with release by {@link #advance}). */
    private int cqHead;
    private boolean closed;

    private IoUringRing(int fd, MemorySegment p) {
        this.fd = fd;
        this.setupFlags = io_uring_params.flags(p);
        this.features = io_uring_params.features(p);
        MemorySegment so = io_uring_params.sq_off(p);
        MemorySegment co = io_uring_params.cq_off(p);
        this.sqEntries = io_uring_params.sq_entries(p);
        this.cqEntries = io_uring_params.cq_entries(p);
        long sqSize = Integer.toUnsignedLong(io_sqring_offsets.array(so)) + 4L * sqEntries;
        long cqSize = Integer.toUnsignedLong(io_cqring_offsets.cqes(co)) + CQE_SIZE * cqEntries;
        int prot = MemoryMap.PROT_READ | MemoryMap.PROT_WRITE;
        int flags = MemoryMap.MAP_SHARED | MemoryMap.MAP_POPULATE;
        try {
            if ((features & Uapi.IORING_FEAT_SINGLE_MMAP()) != 0) { // 5.4+: SQ and CQ rings share one mapping
                this.sqRing = MemoryMap.map(Math.max(sqSize, cqSize), prot, flags, fd, Uapi.IORING_OFF_SQ_RING(), arena);
                this.cqRing = sqRing;
            } else {
                this.sqRing = MemoryMap.map(sqSize, prot, flags, fd, Uapi.IORING_OFF_SQ_RING(), arena);
                this.cqRing = MemoryMap.map(cqSize, prot, flags, fd, Uapi.IORING_OFF_CQ_RING(), arena);
            }
            this.sqes = MemoryMap.map(SQE_SIZE * sqEntries, prot, flags, fd, Uapi.IORING_OFF_SQES(), arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
        this.sqHeadOff = Integer.toUnsignedLong(io_sqring_offsets.head(so));
        this.sqTailOff = Integer.toUnsignedLong(io_sqring_offsets.tail(so));
        this.sqFlagsOff = Integer.toUnsignedLong(io_sqring_offsets.flags(so));
        this.sqMask = sqRing.get(ValueLayout.JAVA_INT, Integer.toUnsignedLong(io_sqring_offsets.ring_mask(so)));
        this.cqHeadOff = Integer.toUnsignedLong(io_cqring_offsets.head(co));
        this.cqTailOff = Integer.toUnsignedLong(io_cqring_offsets.tail(co));
        this.cqesOff = Integer.toUnsignedLong(io_cqring_offsets.cqes(co));
        this.cqMask = cqRing.get(ValueLayout.JAVA_INT, Integer.toUnsignedLong(io_cqring_offsets.ring_mask(co)));
        long array = Integer.toUnsignedLong(io_sqring_offsets.array(so));
        for (int i = 0; i < sqEntries; i++) {
            sqRing.set(ValueLayout.JAVA_INT, array + 4L * i, i);
        }
        this.sqTail = (int) INT.getAcquire(sqRing, sqTailOff);
        this.sqHead = (int) INT.getAcquire(sqRing, sqHeadOff);
        this.cqHead = (int) INT.getAcquire(cqRing, cqHeadOff);
    }

    /**
     * {@code io_uring_setup(sqEntries, params)} with {@code IORING_SETUP_CQSIZE} when {@code cqEntries > 0} plus
     * {@code extraFlags}, then maps the rings. The kernel rounds both sizes up to powers of two.
     *
     * @throws ErrnoException when io_uring_setup or mmap fails ({@code EPERM}/{@code ENOSYS}: io_uring is disabled
     *         by {@code kernel.io_uring_disabled}, seccomp or the kernel build; {@code EINVAL}: a flag is unknown)
     */
    public static IoUringRing open(int sqEntries, int cqEntries, int extraFlags) {
        int fd;
        MemorySegment p;
        try (Arena a = Arena.ofConfined()) {
            p = io_uring_params.allocate(a); // zeroed
            int flags = extraFlags | (cqEntries > 0 ? Uapi.IORING_SETUP_CQSIZE() : 0);
            io_uring_params.flags(p, flags);
            io_uring_params.cq_entries(p, cqEntries);
            fd = Syscall.ioUringSetup(sqEntries, p);
            MemorySegment copy = Arena.ofAuto().allocate(io_uring_params.layout());
            copy.copyFrom(p);
            p = copy;
        }
        try {
            return new IoUringRing(fd, p);
        } catch (RuntimeException e) {
            FileIo.close(fd);
            throw e;
        }
    }

    /**
     * Opens the ring a queue poller owns: {@code SUBMIT_ALL} (a bad SQE does not stall the rest), dropped on an
     * older kernel that rejects it with {@code EINVAL}.
     *
     * <p>Not {@code COOP_TASKRUN}/{@code DEFER_TASKRUN}: with those, completions are posted only when this thread
     * next enters the kernel, so a poller that sleeps in poll(2) on the kick and the completion eventfd (see
     * {@link #registerEventFd}) would never be woken by its own I/O. Without them the kernel notifies the thread
     * (task work with TWA_SIGNAL), which costs an IPI when it is running in user space but never loses a wake-up.
     */
    public static IoUringRing openForPolling(int sqEntries, int cqEntries) {
        int[] attempts = {
            Uapi.IORING_SETUP_SUBMIT_ALL(), // 5.18+
            0,
        };
        ErrnoException last = null;
        for (int flags : attempts) {
            try {
                return open(sqEntries, cqEntries, flags);
            } catch (ErrnoException e) {
                if (e.errno() != Errno.EINVAL) {
                    throw e;
                }
                last = e;
            }
        }
        throw last;
    }

    /**
     * Whether this process may use io_uring: {@code null} when a small ring can be set up, else a one-line reason
     * such as {@code io_uring_setup(entries=2) failed: EPERM (Operation not permitted)}.
     */
    public static String probe() {
        try (IoUringRing r = open(2, 0, 0)) {
            return null;
        } catch (ErrnoException e) {
            return e.getMessage();
        }
    }

    public int fd() {
        return fd;
    }

    public int sqEntries() {
        return sqEntries;
    }

    public int cqEntries() {
        return cqEntries;
    }

    /** {@code io_uring_params.features} ({@code IORING_FEAT_*}). */
    public int features() {
        return features;
    }

    /** The setup flags the ring was created with. */
    public int setupFlags() {
        return setupFlags;
    }

    /** {@code io_uring_register(IORING_REGISTER_FILES)} of one fd, afterwards addressed as fixed file 0. */
    public void registerFile(int fileFd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment fds = a.allocateFrom(ValueLayout.JAVA_INT, fileFd);
            Syscall.ioUringRegister(fd, Uapi.IORING_REGISTER_FILES(), fds, 1);
        }
    }

    /**
     * {@code io_uring_register(IORING_REGISTER_EVENTFD)}: the kernel signals {@code eventFd} whenever it posts a
     * completion, so a poller with nothing else to do can sleep in poll(2) on it instead of spinning on the CQ.
     */
    public void registerEventFd(int eventFd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment fds = a.allocateFrom(ValueLayout.JAVA_INT, eventFd);
            Syscall.ioUringRegister(fd, Uapi.IORING_REGISTER_EVENTFD(), fds, 1);
        }
    }

    // ---- submission (poller thread) ----

    /** True when an SQE can be prepared; re-reads the kernel's SQ head (acquire) only when the ring looks full. */
    public boolean hasSqSpace() {
        if (sqTail - sqHead != sqEntries) {
            return true;
        }
        // acquire: pairs with the kernel's smp_store_release of sq.head after it read those SQEs.
        sqHead = (int) INT.getAcquire(sqRing, sqHeadOff);
        return sqTail - sqHead != sqEntries;
    }

    /**
     * Writes the next SQE (the caller checked {@link #hasSqSpace()}). Not visible to the kernel until
     * {@link #submit}. Field meaning follows the opcode: READ/WRITE(V) ({@code addr} buffer or iovec array,
     * {@code len} bytes or iovec count, {@code off} file position), FSYNC ({@code opFlags} = fsync flags),
     * FALLOCATE ({@code addr} = length, {@code len} = mode).
     */
    public void prepare(int opcode, int sqeFlags, int fileFd, long off, long addr, int len, int opFlags, long userData) {
        long base = (sqTail & sqMask) * SQE_SIZE;
        MemorySegment s = sqes;
        s.set(ValueLayout.JAVA_BYTE, base + SQE_OPCODE, (byte) opcode);
        s.set(ValueLayout.JAVA_BYTE, base + SQE_FLAGS, (byte) sqeFlags);
        s.set(ValueLayout.JAVA_SHORT, base + SQE_IOPRIO, (short) 0);
        s.set(ValueLayout.JAVA_INT, base + SQE_FD, fileFd);
        s.set(ValueLayout.JAVA_LONG, base + SQE_OFF, off);
        s.set(ValueLayout.JAVA_LONG, base + SQE_ADDR, addr);
        s.set(ValueLayout.JAVA_INT, base + SQE_LEN, len);
        s.set(ValueLayout.JAVA_INT, base + SQE_OP_FLAGS, opFlags);
        s.set(ValueLayout.JAVA_LONG, base + SQE_USER_DATA, userData);
        s.set(ValueLayout.JAVA_LONG, base + SQE_TAIL_WORDS, 0L);
        s.set(ValueLayout.JAVA_LONG, base + SQE_TAIL_WORDS + 8, 0L);
        s.set(ValueLayout.JAVA_LONG, base + SQE_TAIL_WORDS + 16, 0L);
        sqTail++;
    }

    /** SQEs prepared but not yet consumed by the kernel. */
    public int unsubmitted() {
        // acquire: the kernel advanced sq.head with release after consuming SQEs in io_uring_enter.
        sqHead = (int) INT.getAcquire(sqRing, sqHeadOff);
        return sqTail - sqHead;
    }

    /**
     * Publishes prepared SQEs and calls {@code io_uring_enter(fd, toSubmit, minComplete, flags)}; returns the SQEs
     * consumed, or {@code -errno} ({@code EINTR}, {@code EAGAIN}, {@code EBUSY}: retry after reaping).
     */
    public int submit(CallState st, int minComplete, int flags) {
        // release: the kernel reads sq.tail with smp_load_acquire and must then see the SQE stores above.
        INT.setRelease(sqRing, sqTailOff, sqTail);
        int toSubmit = sqTail - sqHead;
        return Syscall.ioUringEnterRaw(st, fd, toSubmit, minComplete, flags);
    }

    /**
     * True when the kernel wants an {@code io_uring_enter(GETEVENTS)} before more CQEs can appear: task work is
     * pending ({@code IORING_SQ_TASKRUN}, with {@code TASKRUN_FLAG}) or CQEs overflowed
     * ({@code IORING_SQ_CQ_OVERFLOW}). A relaxed read is enough: a stale value only delays the enter by one poll.
     */
    public boolean needsEnter() {
        int f = (int) INT.getOpaque(sqRing, sqFlagsOff);
        return (f & (Uapi.IORING_SQ_TASKRUN() | Uapi.IORING_SQ_CQ_OVERFLOW())) != 0;
    }

    // ---- completion (poller thread) ----

    /** CQEs ready to read: {@code cq.tail} with acquire minus our head. */
    public int ready() {
        // acquire: pairs with the kernel's smp_store_release of cq.tail after it wrote the CQEs.
        return (int) INT.getAcquire(cqRing, cqTailOff) - cqHead;
    }

    /** {@code user_data} of the {@code i}-th ready CQE ({@code i < ready()}). */
    public long userData(int i) {
        return cqRing.get(ValueLayout.JAVA_LONG, cqesOff + ((cqHead + i) & cqMask) * CQE_SIZE + CQE_USER_DATA);
    }

    /** {@code res} of the {@code i}-th ready CQE. */
    public int result(int i) {
        return cqRing.get(ValueLayout.JAVA_INT, cqesOff + ((cqHead + i) & cqMask) * CQE_SIZE + CQE_RES);
    }

    /** Consumes {@code n} CQEs. */
    public void advance(int n) {
        cqHead += n;
        // release: our CQE loads happen before the kernel may reuse the slots it sees freed.
        INT.setRelease(cqRing, cqHeadOff, cqHead);
    }

    /** Unmaps the rings and closes the ring fd (the kernel cancels or finishes what is still in flight). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        arena.close();
        FileIo.close(fd);
    }
}
