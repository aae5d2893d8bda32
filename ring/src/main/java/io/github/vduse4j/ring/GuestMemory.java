package io.github.vduse4j.ring;

/**
 * Turns a driver address (guest physical address for vhost-user, IOVA for VDUSE) into a place in a long-lived
 * {@link java.lang.foreign.MemorySegment}. Implementations: {@link RegionTable} (vhost-user memory table, or any
 * fixed set of mappings); the engine backs it with the VDUSE IOTLB.
 *
 * <p>Hot path: called once per descriptor (more if a buffer spans mappings). No allocation, no exceptions, no locks.
 */
public interface GuestMemory {
    /** The device reads the range (a driver-to-device buffer, or a descriptor table). */
    int READ = 1;
    /** The device writes the range (a device-to-driver buffer). */
    int WRITE = 2;

    /**
     * Resolves the start of {@code [addr, addr + len)} with the given access (a {@link #READ}/{@link #WRITE} bitmask).
     * On success fills {@code out}: {@code segment} is the long-lived segment of the whole mapping, {@code offset} the
     * position of {@code addr} inside it, {@code length} the bytes contiguous in that mapping starting at addr
     * ({@code 0 < length <= len}) and returns true. Returns false if addr is not mapped, the access is not permitted,
     * or {@code len <= 0}. {@code addr} is an unsigned 64-bit value. Never throws for any input.
     */
    boolean translate(long addr, long len, int access, Translation out);
}
