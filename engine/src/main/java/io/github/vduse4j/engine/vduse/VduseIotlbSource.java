package io.github.vduse4j.engine.vduse;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.EventFd;
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
 *
 * <p>Each mapping of an fd remembers where it came from ({@link Origin}: range, permission, file, offset), so that
 * after {@code VDUSE_UPDATE_IOTLB} {@link #unchanged} can ask the kernel again and keep a mapping whose entry is
 * still the same instead of mapping it anew.
 */
final class VduseIotlbSource implements IotlbMapCache.Source {
    static final Ioctl.Request IOTLB_GET_FD = Ioctl.request("VDUSE_IOTLB_GET_FD", Uapi.VDUSE_IOTLB_GET_FD());
    static final Ioctl.Request IOTLB_GET_INFO = Ioctl.request("VDUSE_IOTLB_GET_INFO", Uapi.VDUSE_IOTLB_GET_INFO());
    static final Ioctl.Request IOTLB_REG_UMEM = Ioctl.request("VDUSE_IOTLB_REG_UMEM", Uapi.VDUSE_IOTLB_REG_UMEM());

    /**
     * The inode every anon-inode file shares (fs/anon_inodes.c anon_inode_getfile: one anon_inode_inode; an eventfd
     * is one, so is a VDUSE domain file): equal ids of such files say nothing about their memory.
     */
    private static final FileIo.FileId ANON_INODE = anonInode();

    /** What a mapping of an fd was made from (vduse_iotlb_entry of VDUSE_IOTLB_GET_FD, the file as fstat names it). */
    record Origin(long start, long last, int perm, FileIo.FileId file, long offset) {}

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
                long offset = vduse_iotlb_entry.offset(e);
                Origin origin = new Origin(start, last, perm, FileIo.fileId(fd), offset);
                MemorySegment m = MemoryMap.map(size, prot, MemoryMap.MAP_SHARED, fd, offset);
                return new IotlbMapCache.Mapping(start, last, access, m, origin);
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

    /**
     * Asks VDUSE_IOTLB_GET_FD for the first entry overlapping the mapping's range (vhost_iotlb_itree_first; the
     * kernel's entries do not overlap: vhost-vdpa refuses an update over a mapped range with EEXIST and VDUSE copies
     * its map whole, vduse_domain_set_map): unchanged if that entry has the same start, last, permission and file
     * offset and its file is the same inode, so the pages our mmap shows are the ones the kernel now maps there.
     * The hugepage bounce buffer and anon-inode files are never confirmed (false: taken out, mapped again on use).
     */
    @Override
    public boolean unchanged(IotlbMapCache.Mapping mapping) {
        if (!(mapping.origin() instanceof Origin o) || o.file().equals(ANON_INODE)) {
            return false;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment e = arena.allocate(vduse_iotlb_entry.layout());
            vduse_iotlb_entry.start(e, mapping.start());
            vduse_iotlb_entry.last(e, mapping.last());
            int fd = Ioctl.ioctlRaw(CallState.current(), deviceFd, IOTLB_GET_FD.code(), e);
            if (fd < 0) {
                return false; // EINVAL: nothing maps the range any more
            }
            try {
                return vduse_iotlb_entry.start(e) == o.start() && vduse_iotlb_entry.last(e) == o.last()
                        && vduse_iotlb_entry.perm(e) == o.perm() && vduse_iotlb_entry.offset(e) == o.offset()
                        && FileIo.fileId(fd).equals(o.file());
            } finally {
                FileIo.close(fd);
            }
        } catch (ErrnoException ex) {
            return false;
        }
    }

    private static FileIo.FileId anonInode() {
        int fd = EventFd.create(0, EventFd.EFD_CLOEXEC);
        try {
            return FileIo.fileId(fd);
        } finally {
            FileIo.close(fd);
        }
    }

    @Override
    public void unmap(IotlbMapCache.Mapping mapping) {
        if (bounce == null || mapping.segment() != bounce.segment()) {
            MemoryMap.unmap(mapping.segment()); // the registered hugepage buffer is ours, not a mapping of the fd
        }
    }
}
