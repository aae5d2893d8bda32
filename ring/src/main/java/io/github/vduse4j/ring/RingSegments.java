package io.github.vduse4j.ring;

import java.lang.foreign.MemorySegment;

/** Construction-time checks of the ring parts a transport hands to a queue. */
final class RingSegments {
    private RingSegments() {}

    /** Throws IllegalArgumentException unless {@code segment} is native, holds {@code bytes} and is {@code align}-aligned. */
    static void require(MemorySegment segment, long bytes, int align, String what) {
        if (segment == null) throw new IllegalArgumentException(what + " is null");
        if (!segment.isNative()) throw new IllegalArgumentException(what + " must be a native segment");
        if (segment.byteSize() < bytes) {
            throw new IllegalArgumentException(what + " holds " + segment.byteSize() + " bytes, needs " + bytes);
        }
        if (segment.maxByteAlignment() < align) {
            throw new IllegalArgumentException(String.format("%s at 0x%x is not %d-byte aligned", what,
                    segment.address(), align));
        }
    }
}
