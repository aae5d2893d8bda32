package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.bindings.MemoryMap;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.RegionTable;
import io.github.vduse4j.ring.Translation;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The frontend's memory table (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG): every region {@code mmap}ed from the fd
 * that came with it, reachable by guest physical address (descriptor addresses without IOMMU) and by frontend
 * user address (ring addresses, IOTLB entries). Immutable: a change builds a new table; the old one is
 * {@link #unmapRemoved unmapped} only after every queue that used it has stopped.
 *
 * <p>Spec "Memory access": user addresses map to the region containing them; guest addresses likewise, unless
 * VIRTIO_F_IOMMU_PLATFORM is negotiated, when they are IOVAs translated through the IOTLB.
 */
public final class VhostUserMemory {
    /** GET_MAX_MEM_SLOTS answer (CONFIGURE_MEM_SLOTS); QEMU caps it at its own limit. */
    public static final int MAX_SLOTS = 32;
    private static final long PAGE = 4096;

    /** One mapped region. {@code region} is exactly {@code [gpa, gpa + size)}; {@code mapping} what to munmap. */
    public record Region(long gpa, long size, long uaddr, long mmapOffset, MemorySegment mapping, MemorySegment region) {
        boolean sameAs(long g, long s, long u) {
            return gpa == g && size == s && uaddr == u;
        }
    }

    public static final VhostUserMemory EMPTY = new VhostUserMemory(List.of());

    private final List<Region> regions;
    private final RegionTable byGuest;
    private final RegionTable byUser;

    private VhostUserMemory(List<Region> regions) {
        this.regions = List.copyOf(regions);
        RegionTable.Builder g = RegionTable.builder();
        RegionTable.Builder u = RegionTable.builder();
        for (Region r : regions) {
            g.add(r.gpa, r.region, GuestMemory.READ | GuestMemory.WRITE);
            u.add(r.uaddr, r.region, GuestMemory.READ | GuestMemory.WRITE);
        }
        this.byGuest = g.build(); // throws IllegalArgumentException on overlapping regions
        this.byUser = u.build();
    }

    public List<Region> regions() {
        return regions;
    }

    public boolean isEmpty() {
        return regions.isEmpty();
    }

    /** Guest physical address -> memory (descriptors without VIRTIO_F_IOMMU_PLATFORM). */
    public GuestMemory guestPhysical() {
        return byGuest;
    }

    /** Frontend user address -> memory (ring addresses without IOMMU, IOTLB entries). */
    public GuestMemory userAddresses() {
        return byUser;
    }

    /**
     * Maps one region of a SET_MEM_TABLE or ADD_MEM_REG message. Does not take ownership of {@code fd}.
     *
     * @throws IllegalArgumentException with a one-line reason if the region is malformed or cannot be mapped
     */
    public static Region map(long gpa, long size, long uaddr, long mmapOffset, int fd) {
        // Spec "Memory regions description": a region is [gpa, gpa + size) at [uaddr, uaddr + size) backed by
        // the fd from mmap_offset on. All four come from the frontend: reject anything that wraps or is empty.
        if (size <= 0) {
            throw new IllegalArgumentException("region size " + Long.toUnsignedString(size) + " is not positive");
        }
        if (Long.compareUnsigned(gpa + size - 1, gpa) < 0 || Long.compareUnsigned(uaddr + size - 1, uaddr) < 0) {
            throw new IllegalArgumentException(String.format("region gpa 0x%x / uaddr 0x%x + 0x%x wraps past 2^64",
                    gpa, uaddr, size));
        }
        if (mmapOffset < 0 || mmapOffset > Long.MAX_VALUE - size - PAGE) {
            throw new IllegalArgumentException("region mmap offset " + Long.toUnsignedString(mmapOffset) + " out of range");
        }
        // A mapping past the end of the file faults (SIGBUS) on first access: check the fd's size first.
        long fileSize = FileSize.of(fd);
        if (fileSize >= 0 && mmapOffset + size > fileSize) {
            throw new IllegalArgumentException("region [" + mmapOffset + ", +" + size + ") is beyond the end of its fd ("
                    + fileSize + " bytes)");
        }
        long alignedOffset = mmapOffset & ~(PAGE - 1);
        long lead = mmapOffset - alignedOffset;
        MemorySegment mapping;
        try {
            mapping = MemoryMap.map(size + lead, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE,
                    MemoryMap.MAP_SHARED | MemoryMap.MAP_NORESERVE, fd, alignedOffset);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("cannot map region: " + e.getMessage(), e);
        }
        return new Region(gpa, size, uaddr, mmapOffset, mapping, mapping.asSlice(lead, size));
    }

    /** A table of exactly these regions; overlapping regions are refused. */
    public static VhostUserMemory of(List<Region> regions) {
        return new VhostUserMemory(regions);
    }

    /** This table plus one region. */
    public VhostUserMemory with(Region r) {
        List<Region> next = new ArrayList<>(regions);
        next.add(r);
        return new VhostUserMemory(next);
    }

    /** The region REM_MEM_REG names (by guest address, user address and size), or null. */
    public Region find(long gpa, long size, long uaddr) {
        for (Region r : regions) {
            if (r.sameAs(gpa, size, uaddr)) {
                return r;
            }
        }
        return null;
    }

    /** This table without {@code r}. */
    public VhostUserMemory without(Region r) {
        List<Region> next = new ArrayList<>(regions);
        next.remove(r);
        return new VhostUserMemory(next);
    }

    /** Unmaps every region of this table that {@code next} does not keep. Queues using them must be stopped. */
    public void unmapRemoved(VhostUserMemory next) {
        for (Region r : regions) {
            if (next == null || !next.regions.contains(r)) {
                unmap(r);
            }
        }
    }

    static void unmap(Region r) {
        try {
            MemoryMap.unmap(r.mapping);
        } catch (RuntimeException e) {
            System.err.println("vduse4j: vhost-user: munmap failed: " + e.getMessage());
        }
    }

    /**
     * Translates a ring part at user address {@code uaddr}: it must lie whole inside one region.
     *
     * @return the slice, or null if it is not mapped contiguously
     */
    public static MemorySegment ringSlice(GuestMemory memory, long addr, long bytes, int access) {
        Translation t = new Translation();
        if (!memory.translate(addr, bytes, access, t) || t.length != bytes) {
            return null;
        }
        return t.segment.asSlice(t.offset, bytes);
    }

    @Override
    public String toString() {
        return "memory" + byGuest;
    }
}
