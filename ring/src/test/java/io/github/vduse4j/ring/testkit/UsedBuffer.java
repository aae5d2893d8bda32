package io.github.vduse4j.ring.testkit;

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

    @Override
    public String toString() { return "UsedBuffer[id=" + id + ", len=" + len + ", token=" + token + "]"; }
}
