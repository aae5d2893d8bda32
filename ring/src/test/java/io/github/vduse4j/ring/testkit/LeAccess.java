package io.github.vduse4j.ring.testkit;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/** Little-endian ring field access for the test kit's driver side (virtio 1.x rings are LE). */
final class LeAccess {
    private LeAccess() {}

    static final VarHandle U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle()
            .withInvokeExactBehavior();
    static final VarHandle U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle()
            .withInvokeExactBehavior();
    static final VarHandle U16_UNALIGNED = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN)
            .varHandle().withInvokeExactBehavior();
    static final VarHandle U32_UNALIGNED = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN)
            .varHandle().withInvokeExactBehavior();
    static final VarHandle U64_UNALIGNED = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN)
            .varHandle().withInvokeExactBehavior();

    static int u16(MemorySegment s, long off) { return (short) U16.get(s, off) & 0xFFFF; }
    static int u16Acquire(MemorySegment s, long off) { return (short) U16.getAcquire(s, off) & 0xFFFF; }
    static void u16(MemorySegment s, long off, int v) { U16.set(s, off, (short) v); }
    static void u16Release(MemorySegment s, long off, int v) { U16.setRelease(s, off, (short) v); }
    static int u32(MemorySegment s, long off) { return (int) U32.get(s, off); }
    static void u32(MemorySegment s, long off, int v) { U32.set(s, off, v); }

    /** Writes a 16-byte descriptor (split: addr, len, flags, next; packed: addr, len, id, flags) except its last u16. */
    static void descriptorBody(MemorySegment s, long off, long addr, int len, int third) {
        U64_UNALIGNED.set(s, off, addr);
        U32_UNALIGNED.set(s, off + 8, len);
        U16_UNALIGNED.set(s, off + 12, (short) third);
    }
}
