package io.github.vduse4j.engine.vduse;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Ioctl;
import io.github.vduse4j.bindings.MemoryMap;
import io.github.vduse4j.bindings.uapi.Uapi;
import io.github.vduse4j.bindings.uapi.vduse_iotlb_entry;
import io.github.vduse4j.engine.IotlbMapCache;
import io.github.vduse4j.ring.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Maps VDUSE IOTLB entries on a miss: {@code VDUSE_IOTLB_GET_FD} returns an fd, file offset, IOVA range and
 * permission for the entry covering an IOVA; the range is {@code mmap}ed shared (as QEMU's libvduse does).
 */
final class VduseIotlbSource implements IotlbMapCache.Source {
    static final Ioctl.Request IOTLB_GET_FD = Ioctl.request("VDUSE_IOTLB_GET_FD", Uapi.VDUSE_IOTLB_GET_FD());

    private final int deviceFd;

    VduseIotlbSource(int deviceFd) {
        this.deviceFd = deviceFd;
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

    @Override
    public void unmap(IotlbMapCache.Mapping mapping) {
        MemoryMap.unmap(mapping.segment());
    }
}
