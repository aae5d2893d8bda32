package io.github.vduse4j.ring;

import java.lang.foreign.MemorySegment;

/** Mutable result of {@link GuestMemory#translate}: one per queue, reused for every lookup (no allocation). */
public final class Translation {
    /** An empty result, to be filled by {@link GuestMemory#translate}. */
    public Translation() {}

    /** The long-lived segment of the whole mapping that holds the address. */
    public MemorySegment segment;
    /** Offset of the translated address inside {@link #segment}. */
    public long offset;
    /** Bytes contiguous in the mapping from the address, at most the requested length. */
    public long length;
    /** Free for {@link GuestMemory} implementations outside this package (e.g. an IOTLB cache slot); a hint only. */
    public int hint;

    // Lookup cache private to the GuestMemory implementation that filled it last (RegionTable: the mapping that
    // answered last). It lives here, in the caller's per-queue object, so pollers sharing one immutable table never
    // write shared memory; an implementation must check cacheOwner == this before trusting the rest.
    Object cacheOwner;
    long cacheFirst, cacheLast, cacheDelta;
    int cacheAccess;
    MemorySegment cacheSegment;
}
