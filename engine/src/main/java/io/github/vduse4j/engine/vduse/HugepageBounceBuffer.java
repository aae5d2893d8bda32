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
 */
public final class HugepageBounceBuffer implements AutoCloseable {
    public static final long HUGEPAGE = 2L << 20;
    /** The bounce size of Linux 6.1 (VDUSE_BOUNCE_SIZE, fixed there); settable on 6.12 in sysfs before attach (VduseKernelFeatures). */
    public static final long DEFAULT_SIZE = 64L << 20;

    private final MemorySegment segment;
    private final int fd;

    private HugepageBounceBuffer(MemorySegment segment, int fd) {
        this.segment = segment;
        this.fd = fd;
    }

    /**
     * Reserves {@code size} bytes of hugepage memory, checking first that enough hugepages are free and that
     * RLIMIT_MEMLOCK allows pinning it (raising it if the process may).
     *
     * @throws TransportException with one line that says what to do
     */
    public static HugepageBounceBuffer allocate(long size) {
        if (size <= 0 || size % HUGEPAGE != 0) {
            throw new TransportException("--bounce hugepages size " + size + " is not a positive multiple of 2 MiB");
        }
        long pages = size / HUGEPAGE;
        long free = freeHugepages();
        if (free < pages) {
            throw new TransportException("--bounce hugepages needs " + pages + " free 2 MiB hugepages, " + free
                    + " are free: reserve them (echo " + pages + " > /proc/sys/vm/nr_hugepages)");
        }
        raiseMemlock(size);
        int fd = FileIo.memfdCreate("vduse4j-bounce", FileIo.MFD_CLOEXEC | FileIo.MFD_HUGETLB);
        try {
            FileIo.ftruncate(fd, size);
            MemorySegment m = MemoryMap.map(size, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE,
                    MemoryMap.MAP_SHARED | MemoryMap.MAP_POPULATE, fd, 0);
            return new HugepageBounceBuffer(m, fd);
        } catch (ErrnoException e) {
            FileIo.close(fd);
            throw new TransportException("cannot allocate " + (size >> 20) + " MiB of hugepages for the bounce buffer: "
                    + e.getMessage() + "; reserve more (echo " + pages + " > /proc/sys/vm/nr_hugepages)", e);
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

    /** The whole buffer; IOVA {@code x} of the bounce region is offset {@code x} here. */
    public MemorySegment segment() {
        return segment;
    }

    public long size() {
        return segment.byteSize();
    }

    /** The hugetlb memfd behind {@link #segment()} (for a vhost-user target that maps the same pages). */
    public int fd() {
        return fd;
    }

    /** Unmaps the memory. Only after the device fd is closed (the kernel unpins it then). */
    @Override
    public void close() {
        MemoryMap.unmap(segment);
        FileIo.close(fd);
    }
}
