package io.github.vduse4j.ring.testkit;

import io.github.vduse4j.ring.driver.DriverRing;

/** A used element reaped by a driver (flyweight, reused): the chain's id, the written length and the caller's token. */
public final class UsedBuffer {
    /** Split: head index; packed: buffer id. */
    public int id;
    /** Bytes the device says it wrote (u32 as int). */
    public int len;
    /** The token passed to {@link ChainBuilder#add(long)}. */
    public long token;
    /** Ring descriptors the chain occupied (1 for an indirect chain). */
    public int descriptors;

    /** Linux virtqueue_get_buf() on {@code ring} into this; device misbehaviour throws AssertionError. */
    boolean takeFrom(DriverRing ring) {
        if (!ring.reap()) {
            if (ring.broken()) throw new AssertionError(ring.firstDeviceFault());
            return false;
        }
        if (ring.deviceFaults() > 0) throw new AssertionError(ring.firstDeviceFault());
        id = ring.usedId();
        len = ring.usedLength();
        token = ring.usedToken();
        descriptors = ring.usedDescriptors();
        return true;
    }

    @Override
    public String toString() { return "UsedBuffer[id=" + id + ", len=" + len + ", token=" + token + "]"; }
}
