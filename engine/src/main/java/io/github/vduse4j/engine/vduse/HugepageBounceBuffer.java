package io.github.vduse4j.engine.vduse;

import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.MemoryMap;
import io.github.vduse4j.bindings.ResourceLimit;
import io.github.vduse4j.engine.TransportException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A VDUSE bounce buffer in 2 MiB hugepages ({@code memfd_create(MFD_HUGETLB)}, populated and shared), for
 * {@code VDUSE_IOTLB_REG_UMEM}: the kernel then bounces virtio-blk data into this memory instead of its own
 * pages, so every data buffer the driver sends lives in hugepage memory the process owns (what SPDK-style
 * storage stacks, NVMe or RDMA registration want). The pages are pinned by the kernel and count against
 * {@code RLIMIT_MEMLOCK}, which {@link #allocate} raises when it may.
 *
 * <p>The memfd may carry a tail after the bounce part ({@link #allocate(long, long)}: whole hugepages, for the
 * vhost-user bridge's rings and indirect tables), so that one hugetlb file is all a vhost-user target is handed, in
 * 2 MiB-aligned pieces (SPDK's {@code spdk_mem_register} takes nothing else). {@link #segment()} maps the bounce part
 * only (what REG_UMEM registers); the tail is mapped by its user ({@link #tailOffset()}, {@link #tailSize()}). Every
 * page is allocated up front (fallocate: a hugetlb memfd is VM_NORESERVE, so a later fault could otherwise find no
 * free page and SIGBUS), then the size is sealed: {@code F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL}, which
 * hugetlbfs enforces since Linux 4.16 (6.1: {@code memfd_file_seals_ptr} gives hugetlbfs inodes seals; setattr
 * checks SHRINK/GROW, fallocate GROW). F_SEAL_WRITE and F_SEAL_FUTURE_WRITE are not set: the target must map
 * the file writable (it writes read data and status bytes into it).
 */
public final class HugepageBounceBuffer implements AutoCloseable {
    public static final long HUGEPAGE = 2L << 20;
    /** The bounce size of Linux 6.1 (VDUSE_BOUNCE_SIZE, fixed there); settable on 6.12 in sysfs before attach (VduseKernelFeatures). */
    public static final long DEFAULT_SIZE = 64L << 20;
    /** The seals every buffer gets: its size is fixed, and nobody may change that. */
    public static final int SEALS = FileIo.F_SEAL_SHRINK | FileIo.F_SEAL_GROW | FileIo.F_SEAL_SEAL;

    private final MemorySegment segment;
    private final int fd;
    private final long tailSize;
    private final int seals;

    private HugepageBounceBuffer(MemorySegment segment, int fd, long tailSize, int seals) {
        this.segment = segment;
        this.fd = fd;
        this.tailSize = tailSize;
        this.seals = seals;
    }

    /** {@code size} bytes of hugepage bounce buffer and no tail (see {@link #allocate(long, long)}). */
    public static HugepageBounceBuffer allocate(long size) {
        return allocate(size, 0);
    }

    /**
     * Reserves {@code size} bytes of hugepage bounce buffer followed by a tail of at least {@code tailBytes}
     * (rounded up to whole hugepages) in one sealed hugetlb memfd, checking first that enough hugepages are free
     * and that RLIMIT_MEMLOCK allows pinning the bounce part (raising it if the process may).
     *
     * @throws TransportException with one line that says what to do
     */
    public static HugepageBounceBuffer allocate(long size, long tailBytes) {
        if (size <= 0 || size % HUGEPAGE != 0) {
            throw new TransportException("--bounce hugepages size " + size + " is not a positive multiple of 2 MiB");
        }
        long tail = tailBytes <= 0 ? 0 : (tailBytes + HUGEPAGE - 1) / HUGEPAGE * HUGEPAGE;
        long pages = (size + tail) / HUGEPAGE;
        long free = freeHugepages();
        if (free < pages) {
            throw new TransportException("--bounce hugepages needs " + pages + " free 2 MiB hugepages, " + free
                    + " are free: reserve them (echo " + pages + " > /proc/sys/vm/nr_hugepages)");
        }
        raiseMemlock(size);
        try {
            return create(FileIo.MFD_HUGETLB, size, tail);
        } catch (ErrnoException e) {
            throw new TransportException("cannot allocate " + ((size + tail) >> 20) + " MiB of hugepages for the"
                    + " bounce buffer: " + e.getMessage() + "; reserve more (echo " + pages
                    + " > /proc/sys/vm/nr_hugepages)", e);
        }
    }

    /**
     * The memfd (with {@code extraFlags}: MFD_HUGETLB, or 0 for tmpfs in tests), every page allocated, sealed, and
     * its bounce part mapped; {@code size} and {@code tail} are hugepage multiples.
     */
    static HugepageBounceBuffer create(int extraFlags, long size, long tail) {
        int fd = FileIo.memfdCreate("vduse4j-bounce", FileIo.MFD_CLOEXEC | FileIo.MFD_ALLOW_SEALING | extraFlags);
        try {
            FileIo.fallocate(fd, 0, 0, size + tail);   // sets the size and allocates every page now
            FileIo.addSeals(fd, SEALS);
            int seals = FileIo.seals(fd);
            MemorySegment m = MemoryMap.map(size, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE,
                    MemoryMap.MAP_SHARED | MemoryMap.MAP_POPULATE, fd, 0);
            return new HugepageBounceBuffer(m, fd, tail, seals);
        } catch (RuntimeException e) {
            FileIo.close(fd);
            throw e;
        }
    }

    /** HugePages_Free of /proc/meminfo (2 MiB pages on x86_64), 0 if unknown. */
    static long freeHugepages() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("HugePages_Free:")) {
                    return Long.parseLong(line.substring("HugePages_Free:".length()).trim());
                }
            }
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
        return 0;
    }

    private static void raiseMemlock(long size) {
        ResourceLimit.Limit now = ResourceLimit.get(ResourceLimit.MEMLOCK);
        // The kernel compares pinned pages + these against the soft limit: leave room for what is pinned already.
        long want = size + (64L << 20);
        if (now.allows(want)) {
            return;
        }
        long hard = now.hard() == ResourceLimit.INFINITY || Long.compareUnsigned(now.hard(), want) >= 0 ? now.hard() : want;
        try {
            ResourceLimit.set(ResourceLimit.MEMLOCK, new ResourceLimit.Limit(want, hard));
        } catch (ErrnoException e) {
            throw new TransportException("RLIMIT_MEMLOCK is " + now.soft() + " bytes but the hugepage bounce buffer pins "
                    + size + ": raise it (ulimit -l " + (want >> 10) + ", or run as root)", e);
        }
    }

    /** The bounce part (what REG_UMEM registers); IOVA {@code x} of the bounce region is offset {@code x} here. */
    public MemorySegment segment() {
        return segment;
    }

    /** Bytes of the bounce part (the VDUSE bounce size). */
    public long size() {
        return segment.byteSize();
    }

    /** The hugetlb memfd behind {@link #segment()} and the tail (for a vhost-user target that maps the same pages). */
    public int fd() {
        return fd;
    }

    /** Where the tail starts in {@link #fd()}: right after the bounce part. */
    public long tailOffset() {
        return segment.byteSize();
    }

    /** Bytes of the tail (whole hugepages; 0: none). Not mapped here. */
    public long tailSize() {
        return tailSize;
    }

    /** The file's {@code F_SEAL_*} bits as the kernel reports them (F_GET_SEALS) after sealing. */
    public int seals() {
        return seals;
    }

    /** Seal bits as words ({@code shrink,grow,seal}). */
    public static String sealNames(int seals) {
        StringBuilder b = new StringBuilder();
        String[] names = {"seal", "shrink", "grow", "write", "future_write"};
        for (int i = 0; i < names.length; i++) {
            if ((seals & (1 << i)) != 0) {
                b.append(b.isEmpty() ? "" : ",").append(names[i]);
            }
        }
        return b.isEmpty() ? "none" : b.toString();
    }

    /**
     * Unmaps the bounce part and closes the fd (a mapping of the tail stays valid). Only after the device fd is
     * closed (the kernel unpins it then).
     */
    @Override
    public void close() {
        MemoryMap.unmap(segment);
        FileIo.close(fd);
    }
}
