package io.github.vduse4j.ring;

import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The VarHandles every ring access goes through. Virtio 1.x rings are little-endian (§2.7, §2.8); on x86 this is
 * also the native order, so the handles compile to plain moves. All are {@code static final}, exact-invoke
 * (coordinates {@code (MemorySegment, long)}), per FFM-RULES 1-2.
 *
 * <p>{@code *_ALIGNED} handles are used only on ring fields whose alignment the queue constructors validated
 * (they support acquire/release); {@code *_UNALIGNED} ones for everything a driver can place anywhere
 * (indirect tables, guest buffers), so a misaligned hostile address can never make an access throw.
 */
final class LittleEndian {
    private LittleEndian() {}

    static final VarHandle U16_ALIGNED = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN)
            .varHandle().withInvokeExactBehavior();
    static final VarHandle U32_ALIGNED = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN)
            .varHandle().withInvokeExactBehavior();
    static final VarHandle U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN)
            .varHandle().withInvokeExactBehavior();
    static final VarHandle U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN)
            .varHandle().withInvokeExactBehavior();
    static final VarHandle U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN)
            .varHandle().withInvokeExactBehavior();
}
