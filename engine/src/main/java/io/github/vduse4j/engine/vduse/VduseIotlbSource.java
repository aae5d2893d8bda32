package io.github.vduse4j.engine.vduse;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Ioctl;
import io.github.vduse4j.bindings.MemoryMap;
import io.github.vduse4j.bindings.uapi.Uapi;
import io.github.vduse4j.bindings.uapi.vduse_iotlb_entry;
import io.github.vduse4j.bindings.uapi.vduse_iova_info;
import io.github.vduse4j.bindings.uapi.vduse_iova_umem;
import io.github.vduse4j.engine.IotlbMapCache;
import io.github.vduse4j.ring.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Maps VDUSE IOTLB entries on a miss: {@code VDUSE_IOTLB_GET_FD} returns an fd, file offset, IOVA range and
 * permission for the entry covering an IOVA; the range is {@code mmap}ed shared (as QEMU's libvduse does).
 *
 * <p>With a {@link HugepageBounceBuffer}, the first miss on the bounce region (IOVA 0 .. bounce size - 1, which
 * the kernel creates lazily on the driver's first streaming DMA mapping) registers the buffer with
 * {@code VDUSE_IOTLB_REG_UMEM} instead: from then on the region is that memory, not a mapping of the fd.
 */
final class VduseIotlbSource implements IotlbMapCache.Source {
    static final Ioctl.Request IOTLB_GET_FD = Ioctl.request("VDUSE_IOTLB_GET_FD", Uapi.VDUSE_IOTLB_GET_FD());
    static final Ioctl.Request IOTLB_GET_INFO = Ioctl.request("VDUSE_IOTLB_GET_INFO", Uapi.VDUSE_IOTLB_GET_INFO());
    static final Ioctl.Request IOTLB_REG_UMEM = Ioctl.request("VDUSE_IOTLB_REG_UMEM", Uapi.VDUSE_IOTLB_REG_UMEM());

    private final int deviceFd;
    private final HugepageBounceBuffer bounce;
    private volatile boolean bounceRegistered;
    private volatile String bounceFailure;

    VduseIotlbSource(int deviceFd, HugepageBounceBuffer bounce) {
        this.deviceFd = deviceFd;
        this.bounce = bounce;
    }

    /** True once the hugepage bounce buffer replaced the kernel's bounce pages. */
    boolean bounceRegistered() {
        return bounceRegistered;
    }

    /** Why the hugepage bounce buffer could not be registered, or null. */
    String bounceFailure() {
        return bounceFailure;
    }

    /**
     * The file behind the device's IOVA domain: {@code VDUSE_IOTLB_GET_FD} for the first entry anywhere in
     * [0, 2^64). Under virtio-vdpa every entry, the rings' coherent ones and the bounce region alike, is the one
     * anon-inode file of the domain at file offset = IOVA (Linux 6.1 iova_domain.c: vduse_domain_alloc_coherent and
     * vduse_domain_init_bounce_map add {@code domain->file}), so it can be handed whole to another process, which
     * maps IOVA x at offset x. Its pages come lazily: a bounce page exists once the driver mapped a buffer there,
     * an untouched one raises SIGBUS (vduse_domain_mmap_fault). The caller owns the fd.
     *
     * @throws ErrnoException EINVAL while nothing is mapped (before the driver set up its rings)
     */
    int domainFd() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment e = arena.allocate(vduse_iotlb_entry.layout());
            vduse_iotlb_entry.start(e, 0);
            vduse_iotlb_entry.last(e, -1L);
            int fd = Ioctl.ioctlRaw(CallState.current(), deviceFd, IOTLB_GET_FD.code(), e);
            if (fd < 0) {
                throw new ErrnoException("VDUSE_IOTLB_GET_FD", "[0, 2^64)", -fd);
            }
            if (vduse_iotlb_entry.offset(e) != vduse_iotlb_entry.start(e)) {
                FileIo.close(fd);   // not a domain file at offset = IOVA (vhost-vdpa's user memory): not ours to share
                throw new ErrnoException("VDUSE_IOTLB_GET_FD", "offset != iova", Errno.EINVAL);
            }
            return fd;
        }
    }

    @Override
    public IotlbMapCache.Mapping map(long iova) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment e = arena.allocate(vduse_iotlb_entry.layout());
            vduse_iotlb_entry.start(e, iova);
            vduse_iotlb_entry.last(e, iova);
            int fd = Ioctl.ioctlRaw(CallState.current(), deviceFd, IOTLB_GET_FD.code(), e);
            if (fd < 0) {
                return null; // EINVAL: no entry covers this IOVA
            }
            try {
                long start = vduse_iotlb_entry.start(e);
                long last = vduse_iotlb_entry.last(e);
                long size = last - start + 1;
                if (bounce != null && start == 0 && size == bounce.size() && useBounceBuffer(arena, last)) {
                    return new IotlbMapCache.Mapping(start, last, GuestMemory.READ | GuestMemory.WRITE, bounce.segment());
                }
                int perm = vduse_iotlb_entry.perm(e);
                if (size <= 0 || (perm & Uapi.VDUSE_ACCESS_RW()) == 0) {
                    return null;
                }
                int prot = 0;
                int access = 0;
                if ((perm & Uapi.VDUSE_ACCESS_RO()) != 0) { // the device may read
                    prot |= MemoryMap.PROT_READ;
                    access |= GuestMemory.READ;
                }
                if ((perm & Uapi.VDUSE_ACCESS_WO()) != 0) { // the device may write
                    prot |= MemoryMap.PROT_WRITE;
                    access |= GuestMemory.WRITE;
                }
                MemorySegment m = MemoryMap.map(size, prot, MemoryMap.MAP_SHARED, fd, vduse_iotlb_entry.offset(e));
                return new IotlbMapCache.Mapping(start, last, access, m);
            } catch (ErrnoException ex) {
                System.err.println("vduse4j: cannot map IOTLB entry for iova 0x" + Long.toHexString(iova)
                        + ": " + ex.getMessage());
                return null;
            } finally {
                FileIo.close(fd);
            }
        }
    }

    /**
     * Registers the hugepage buffer for the bounce region once (it stays registered across device resets until
     * the device fd closes); false if the kernel does not offer it for this region or refuses it.
     */
    private synchronized boolean useBounceBuffer(Arena arena, long last) {
        if (bounceRegistered) {
            return true;
        }
        if (bounceFailure != null) {
            return false;
        }
        MemorySegment info = arena.allocate(vduse_iova_info.layout());
        vduse_iova_info.start(info, 0);
        vduse_iova_info.last(info, last);
        int r = Ioctl.ioctlRaw(CallState.current(), deviceFd, IOTLB_GET_INFO.code(), info);
        if (r < 0 || (vduse_iova_info.capability(info) & Uapi.VDUSE_IOVA_CAP_UMEM()) == 0) {
            bounceFailure = r < 0 ? "VDUSE_IOTLB_GET_INFO failed: " + Errno.name(-r) : "the kernel does not offer"
                    + " VDUSE_IOVA_CAP_UMEM for the bounce region";
        } else {
            MemorySegment umem = arena.allocate(vduse_iova_umem.layout());
            vduse_iova_umem.uaddr(umem, bounce.segment().address());
            vduse_iova_umem.iova(umem, 0);
            vduse_iova_umem.size(umem, bounce.size());
            r = Ioctl.ioctlRaw(CallState.current(), deviceFd, IOTLB_REG_UMEM.code(), umem);
            if (r == 0) {
                bounceRegistered = true;
                System.err.println("vduse4j: bounce buffer: " + (bounce.size() >> 20) + " MiB of hugepages registered"
                        + " (VDUSE_IOTLB_REG_UMEM)");
                return true;
            }
            bounceFailure = "VDUSE_IOTLB_REG_UMEM failed: " + Errno.name(-r) + " (" + Errno.description(-r) + ")";
        }
        System.err.println("vduse4j: hugepage bounce buffer not used: " + bounceFailure);
        return false;
    }

    @Override
    public void unmap(IotlbMapCache.Mapping mapping) {
        if (bounce == null || mapping.segment() != bounce.segment()) {
            MemoryMap.unmap(mapping.segment()); // the registered hugepage buffer is ours, not a mapping of the fd
        }
    }
}
