package io.github.vduse4j.ring.testkit;

/**
 * Settings of a test-kit driver: {@code DriverConfig.of(256).eventIdx(true).indirect(true).split()}.
 * Defaults: EVENT_IDX and INDIRECT_DESC off, 4 data regions of 1 MiB, 64-entry indirect tables, Linux indirect rule.
 */
public final class DriverConfig {
    int size;
    boolean eventIdx;
    boolean indirect;
    int dataRegions = 4;
    long dataRegionBytes = 1 << 20;
    int maxIndirect = 64;
    ChainBuilder.Indirect indirectMode = ChainBuilder.Indirect.LINUX;
    DriverMemory reuse;

    private DriverConfig(int size) { this.size = size; }

    public static DriverConfig of(int queueSize) { return new DriverConfig(queueSize); }

    public DriverConfig eventIdx(boolean on) { eventIdx = on; return this; }
    public DriverConfig indirect(boolean on) { indirect = on; return this; }
    public DriverConfig dataRegions(int regions, long bytesEach) { dataRegions = regions; dataRegionBytes = bytesEach; return this; }
    /** Entries of each chain's indirect table slot (one slot per possible chain id). */
    public DriverConfig maxIndirect(int entries) { maxIndirect = entries; return this; }
    public DriverConfig indirectMode(ChainBuilder.Indirect mode) { indirectMode = mode; return this; }

    /**
     * Builds the driver over {@code memory} (recycled: zeroed, allocators restarted) instead of new memory; the
     * driver's {@code close()} then leaves the memory open. The memory must come from a driver with the same
     * configuration.
     */
    public DriverConfig reuse(DriverMemory memory) { reuse = memory; return this; }

    /** The driver's memory: the one given to {@link #reuse}, recycled, or a new one. */
    DriverMemory memory(long ringBytes, long tableBytes) {
        return reuse != null ? reuse.recycle(ringBytes, tableBytes, dataRegions, dataRegionBytes)
                : new DriverMemory(ringBytes, tableBytes, dataRegions, dataRegionBytes);
    }

    public SplitDriver split() { return new SplitDriver(this); }
    public PackedDriver packed() { return new PackedDriver(this); }
    public VirtqueueDriver build(boolean packed) { return packed ? packed() : split(); }

    int builderCapacity() { return Math.max(size, maxIndirect) + 8; }
}
