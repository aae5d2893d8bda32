package io.github.vduse4j.ring;

/**
 * The VIRTIO_F_EVENT_IDX arithmetic, exactly as Linux {@code vring_need_event()}
 * ({@code include/uapi/linux/virtio_ring.h}) and virtio 1.2 §2.7.7 / §2.7.10 define it.
 */
public final class EventIndex {
    private EventIndex() {}

    /**
     * True if moving an index from {@code oldIdx} to {@code newIdx} passed {@code eventIdx}, i.e. the other side asked
     * to be notified when entry {@code eventIdx} is written: {@code (u16)(new - event - 1) < (u16)(new - old)}.
     * All arguments are treated modulo 2^16 (callers may pass negative values, as Linux's packed code does).
     */
    public static boolean needEvent(int eventIdx, int newIdx, int oldIdx) {
        return ((newIdx - eventIdx - 1) & 0xFFFF) < ((newIdx - oldIdx) & 0xFFFF);
    }
}
