package io.github.vduse4j.ring.driver;

import java.lang.foreign.MemorySegment;

/**
 * Memory a driver-side ring is placed in: host views to read and write, and the address the device knows each
 * view by (a guest-physical address for vhost-user descriptors, an IOVA for vhost-vdpa, a simulated guest address in
 * the test kit). The transport decides what it announces for the ring parts themselves (vhost-user sends this
 * process's user addresses, vhost-vdpa the device addresses); descriptors always carry {@link #deviceAddress}.
 */
public interface RingMemory {
    /** Reserves {@code bytes} for a ring part (descriptor area, driver area, device area) aligned to {@code align}. */
    MemorySegment ringPart(long bytes, long align);

    /** Reserves {@code bytes} for the ring's indirect descriptor tables (16-byte aligned). */
    MemorySegment indirectTables(long bytes);

    /** The device address of the first byte of {@code part}, a view returned by this memory. */
    long deviceAddress(MemorySegment part);
}
