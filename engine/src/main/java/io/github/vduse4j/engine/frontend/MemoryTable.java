package io.github.vduse4j.engine.frontend;

import java.util.ArrayList;
import java.util.List;

/**
 * The frontend's guest memory: up to {@link #MAX_REGIONS} {@link MemoryRegion}s at distinct guest physical addresses,
 * in the order they are announced (vhost-user SET_MEM_TABLE sends them as given, region 0 first; vhost-vdpa maps each
 * with an IOTLB update). The table does not own the regions.
 */
public final class MemoryTable {
    /** vhost-user SET_MEM_TABLE carries at most 8 regions (VHOST_MEMORY_BASELINE_NREGIONS). */
    public static final int MAX_REGIONS = 8;

    private final List<MemoryRegion> regions;

    private MemoryTable(List<MemoryRegion> regions) {
        this.regions = List.copyOf(regions);
    }

    /** A table of {@code regions}; their guest physical ranges must not overlap. */
    public static MemoryTable of(MemoryRegion... regions) {
        return of(List.of(regions));
    }

    public static MemoryTable of(List<MemoryRegion> regions) {
        if (regions.isEmpty() || regions.size() > MAX_REGIONS) {
            throw new IllegalArgumentException("a memory table holds 1 to " + MAX_REGIONS + " regions, not "
                    + regions.size());
        }
        List<MemoryRegion> seen = new ArrayList<>();
        for (MemoryRegion r : regions) {
            for (MemoryRegion s : seen) {
                if (r.gpa() < s.gpa() + s.size() && s.gpa() < r.gpa() + r.size()) {
                    throw new IllegalArgumentException(r + " overlaps " + s);
                }
            }
            seen.add(r);
        }
        return new MemoryTable(regions);
    }

    public List<MemoryRegion> regions() { return regions; }

    /** The region holding all of {@code [gpa, gpa + len)}, or null. */
    public MemoryRegion regionOf(long gpa, long len) {
        for (MemoryRegion r : regions) {
            if (r.contains(gpa, len)) {
                return r;
            }
        }
        return null;
    }
}
