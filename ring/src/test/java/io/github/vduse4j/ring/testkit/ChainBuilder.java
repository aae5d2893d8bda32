package io.github.vduse4j.ring.testkit;

import io.github.vduse4j.ring.driver.DriverRing;

/**
 * Describes one chain to add (readable buffers, then writable ones), reused by its driver: {@code
 * driver.chain().readable(hdr, 16).readable(data, 4096).writable(status, 1).add(token)}. Allocation-free.
 */
public final class ChainBuilder {
    /** How the chain is placed in the ring. */
    public enum Indirect {
        /** As Linux {@code virtqueue_use_indirect()}: an indirect table if negotiated, more than one buffer, and a free descriptor. */
        LINUX,
        /** Always an indirect table (even a single buffer, even if not negotiated: for hostile tests). */
        ALWAYS,
        /** Never indirect. */
        NEVER
    }

    private final ChainAdder driver;
    final long[] addr;
    final int[] len;
    final boolean[] writable;
    int count;
    int readable;
    Indirect indirect;
    private final Indirect defaultIndirect;

    interface ChainAdder {
        int add(ChainBuilder chain, long token);
    }

    ChainBuilder(ChainAdder driver, int capacity, Indirect defaultIndirect) {
        this.driver = driver;
        this.addr = new long[capacity];
        this.len = new int[capacity];
        this.writable = new boolean[capacity];
        this.defaultIndirect = defaultIndirect;
    }

    ChainBuilder reset() {
        count = 0;
        readable = 0;
        indirect = defaultIndirect;
        return this;
    }

    /** A device-readable buffer; must come before any writable one. */
    public ChainBuilder readable(long address, int length) {
        if (readable != count) throw new IllegalStateException("readable buffer after a writable one");
        put(address, length, false);
        readable++;
        return this;
    }

    /** A device-writable buffer. */
    public ChainBuilder writable(long address, int length) {
        put(address, length, true);
        return this;
    }

    /** A buffer in either direction, without the order check (hostile tests). */
    public ChainBuilder buffer(long address, int length, boolean deviceWritable) {
        put(address, length, deviceWritable);
        if (!deviceWritable) readable++;
        return this;
    }

    public ChainBuilder indirect(Indirect mode) {
        indirect = mode;
        return this;
    }

    public ChainBuilder indirect(boolean on) {
        return indirect(on ? Indirect.ALWAYS : Indirect.NEVER);
    }

    public int size() { return count; }

    /** Adds the chain to the ring (not yet kicked). Returns its id (split head / packed buffer id), or -1 if the ring
     *  has no room (Linux -ENOSPC). */
    public int add(long token) {
        return driver.add(this, token);
    }

    /** Adds this chain to {@code ring} as its indirect mode says. */
    int addTo(DriverRing ring, long token) {
        if (count == 0) throw new IllegalArgumentException("empty chain");   // Linux: BUG_ON(total_sg == 0)
        return switch (indirect) {
            case ALWAYS -> ring.addIndirect(addr, len, writable, count, token);
            case NEVER -> ring.addDirect(addr, len, writable, count, token);
            case LINUX -> ring.add(addr, len, writable, count, token);
        };
    }

    private void put(long address, int length, boolean w) {
        if (count == addr.length) throw new IllegalStateException("chain longer than " + addr.length + " buffers");
        addr[count] = address;
        len[count] = length;
        writable[count] = w;
        count++;
    }
}
