package io.github.vduse4j.ring;

import static io.github.vduse4j.ring.ChainError.*;
import static io.github.vduse4j.ring.LittleEndian.*;
import static io.github.vduse4j.ring.VirtioRing.*;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * Device side of a split virtqueue (virtio 1.2 §2.7): descriptor table, available ring, used ring, with
 * VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, batched publication and index save/restore.
 *
 * <p>Memory ordering (Linux {@code virtio_ring.c} on the driver side, QEMU {@code hw/virtio/virtio.c} and vhost on
 * the device side): an acquire load of {@code avail->idx} before reading entries and descriptors; a release store of
 * {@code used->idx} after writing used elements and buffers; a full fence between publishing {@code used->idx} and
 * reading {@code used_event}/flags, and between re-enabling notifications and re-reading {@code avail->idx}.
 */
public final class SplitVirtqueue implements Virtqueue {
    private final int size;
    /** Largest indirect table accepted (see {@link VirtioRing#maxIndirectEntries}). */
    private final int maxIndirect;
    private final int mask;
    private final MemorySegment desc;
    private final MemorySegment avail;
    private final MemorySegment used;
    private final GuestMemory memory;
    private final boolean eventIdx;
    private final boolean indirect;
    private final long usedEventOffset;
    private final long availEventOffset;
    private final Translation translation = new Translation();

    private int lastAvail;        // u16: next avail entry to pop
    private int availSeen;        // u16: avail->idx as last read (entries up to it are known to be published)
    private int usedIdx;          // u16: next used entry to write (includes staged elements)
    private int publishedUsed;    // u16: last value stored to used->idx
    private int signalledUsed;    // u16: used idx at the last needsNotification()
    private boolean signalledValid;
    private boolean notificationsEnabled = true;
    private int inflight;
    private int brokenReason = NONE;

    /**
     * @param size     queue size: a power of 2, at most 32768 (§2.7)
     * @param desc     the descriptor table, 16 * size bytes, 16-aligned
     * @param avail    the available ring, 4 + 2 * size (+2 with EVENT_IDX) bytes, 2-aligned
     * @param used     the used ring, 4 + 8 * size (+2 with EVENT_IDX) bytes, 4-aligned
     * @param memory   translation of the driver addresses found in descriptors
     * @param eventIdx VIRTIO_F_EVENT_IDX was negotiated
     * @param indirect VIRTIO_F_INDIRECT_DESC was negotiated
     */
    public SplitVirtqueue(int size, MemorySegment desc, MemorySegment avail, MemorySegment used, GuestMemory memory,
                          boolean eventIdx, boolean indirect) {
        if (size < 1 || size > MAX_QUEUE_SIZE || (size & (size - 1)) != 0) {
            throw new IllegalArgumentException("split queue size must be a power of 2 in [1, 32768]: " + size);
        }
        if (memory == null) throw new IllegalArgumentException("memory is null");
        int tail = eventIdx ? 2 : 0;
        RingSegments.require(desc, descTableBytes(size), SPLIT_DESC_ALIGN, "descriptor table");
        RingSegments.require(avail, availRingBytes(size) - 2 + tail, SPLIT_AVAIL_ALIGN, "available ring");
        RingSegments.require(used, usedRingBytes(size) - 2 + tail, SPLIT_USED_ALIGN, "used ring");
        this.size = size;
        this.maxIndirect = VirtioRing.maxIndirectEntries(size);
        this.mask = size - 1;
        this.desc = desc;
        this.avail = avail;
        this.used = used;
        this.memory = memory;
        this.eventIdx = eventIdx;
        this.indirect = indirect;
        this.usedEventOffset = usedEventOffset(size);
        this.availEventOffset = availEventOffset(size);
    }

    @Override
    public int pop(DescriptorChain chain) {
        chain.reset();
        if (brokenReason != NONE) {
            chain.setError(QUEUE_BROKEN);
            return NEEDS_RESET;
        }
        final int last = lastAvail;
        if (last == availSeen) {
            // §2.7.13.3 (Updating idx): acquire pairs with the driver's virtio_wmb() before its avail->idx store, so
            // the ring entries and descriptors read below are at least as new as this idx (QEMU virtqueue_num_heads
            // and Linux vhost: smp_rmb() after reading avail->idx).
            final int idx = (short) U16_ALIGNED.getAcquire(avail, AVAIL_IDX) & 0xFFFF;
            final int pending = (idx - last) & 0xFFFF;
            if (pending == 0) return EMPTY;
            // §2.7.6: the driver only adds entries it has descriptors for, so idx can never run more than the queue
            // size ahead of what the device consumed (QEMU: "Guest moved avail index from %u to %u").
            if (pending > size) return breakQueue(chain, AVAIL_INDEX_JUMP);
            availSeen = idx;
        }
        final int head = (short) U16_ALIGNED.get(avail, AVAIL_RING + 2L * (last & mask)) & 0xFFFF;
        // §2.7.6: ring entries are descriptor indexes; with no valid head there is no chain to hand back.
        if (head >= size) return breakQueue(chain, BAD_INDEX);
        // §2.7.13.1/§2.7.14: the driver reuses a head only after the device used it, so no more than queue size
        // chains can be in flight; another one means a head made available twice (QEMU: "Virtqueue size exceeded").
        if (inflight >= size) return breakQueue(chain, AVAIL_INDEX_JUMP);
        lastAvail = (last + 1) & 0xFFFF;
        return take(chain, head);
    }

    /** Accounts chain {@code head} in flight and walks it. */
    private int take(DescriptorChain chain, int head) {
        inflight++;
        chain.setId(head);
        final int error = walk(chain, head);
        if (error != NONE) {
            chain.setError(error);
            return CHAIN_ERROR;
        }
        return POPPED;
    }

    /**
     * Hands the device chain {@code head} again without reading the available ring: for a restarted device that
     * resubmits what an earlier instance popped and never used (vhost-user "Inflight I/O tracking"). The chain's
     * descriptors are still the driver's request: the driver does not reuse them before the device returned the
     * head in the used ring (§2.7.13.1, §2.7.14). The chain is walked with exactly the validation of {@link #pop}
     * (loops, indirect tables, mappings, lengths, readable before writable: {@link #CHAIN_ERROR}) and accounted in
     * flight; complete it with {@link #complete}(head, len).
     *
     * <p>{@link #lastAvailIndex()} does not move: {@link #restore} it past the entries being resubmitted first
     * (every pop advanced it by one, whatever order the chains were used in). At most that many chains
     * ({@code lastAvail - used}, less those in flight) can be resubmitted; one more breaks the queue
     * ({@code USED_INDEX_JUMP}), as does a head outside the table ({@code BAD_INDEX}, §2.7.6).
     *
     * @return {@link #POPPED}, {@link #CHAIN_ERROR} or {@link #NEEDS_RESET}
     */
    public int popHead(DescriptorChain chain, int head) {
        chain.reset();
        if (brokenReason != NONE) {
            chain.setError(QUEUE_BROKEN);
            return NEEDS_RESET;
        }
        // §2.7.6: heads are descriptor indexes; with no valid head there is no chain to hand back.
        if (head < 0 || head >= size) return breakQueue(chain, BAD_INDEX);
        // §2.7.8: each chain taken from the avail ring is returned by exactly one used element, so the chains in
        // flight never outnumber the avail entries taken since the used index.
        if (inflight >= ((lastAvail - usedIdx) & 0xFFFF)) return breakQueue(chain, USED_INDEX_JUMP);
        return take(chain, head);
    }

    /** Follows the chain from {@code head} through the table and at most one indirect table; returns a ChainError. */
    private int walk(DescriptorChain chain, int head) {
        final Translation t = translation;
        MemorySegment table = desc;
        long base = 0;
        int entries = size;
        boolean inIndirect = false;
        int i = head;
        int visited = 0;
        for (;;) {
            // §2.7.5.2 / §2.7.5.3.1: a chain is never longer than its table ("loops are forbidden"); the count
            // bounds the walk whatever the next fields say.
            if (++visited > entries) return LOOP;
            final long off = base + (long) DESC_SIZE * i;   // i < entries: inside the table (checked below)
            final long addr = (long) U64.get(table, off + DESC_ADDR);
            final long word = (long) U64.get(table, off + DESC_LEN);   // len | flags << 32 | next << 48
            final long len = word & 0xFFFF_FFFFL;
            final int flags = (int) (word >>> 32) & 0xFFFF;
            final int next = (int) (word >>> 48);
            if ((flags & DESC_F_INDIRECT) != 0) {
                // §2.7.5.3.1: one table per descriptor, only if negotiated, never combined with NEXT.
                if (inIndirect) return NESTED_INDIRECT;
                if (!indirect) return INDIRECT_NOT_NEGOTIATED;
                if ((flags & DESC_F_NEXT) != 0) return INDIRECT_WITH_NEXT;
                // §2.7.5.3: len / 16 descriptors, bounded (§2.7.5.3.1) by the queue size or, as Linux drivers need,
                // VirtioRing.MAX_INDIRECT_ENTRIES.
                if (len == 0 || (len & (DESC_SIZE - 1)) != 0 || (len >>> 4) > maxIndirect) return BAD_INDIRECT_SIZE;
                if (Long.compareUnsigned(addr + (len - 1), addr) < 0) return ADDRESS_OVERFLOW;
                // §2.7.5.3.2: the WRITE flag of the descriptor that points at the table is ignored.
                if (!memory.translate(addr, len, GuestMemory.READ, t)) return OUT_OF_MEMORY_RANGE;
                if (t.length != len) return INDIRECT_TABLE_NOT_CONTIGUOUS;
                final MemorySegment seg = t.segment;
                if (seg == null || t.offset < 0 || t.offset > seg.byteSize() - len) return OUT_OF_MEMORY_RANGE;
                table = seg;
                base = t.offset;
                entries = (int) (len >>> 4);
                inIndirect = true;
                i = 0;
                visited = 0;
                continue;
            }
            if (len != 0) {
                final boolean writable = (flags & DESC_F_WRITE) != 0;
                // §2.7.4.2 (Message Framing): device-writable elements come after all device-readable ones.
                if (!writable && chain.hasWritable()) return READABLE_AFTER_WRITABLE;
                if (Long.compareUnsigned(addr + (len - 1), addr) < 0) return ADDRESS_OVERFLOW;
                final int error = chain.addRange(memory, t, addr, len, writable);
                if (error != NONE) return error;
            }
            if ((flags & DESC_F_NEXT) == 0) return NONE;
            // §2.7.5: next must name a descriptor of the same table.
            if (next >= entries) return BAD_INDEX;
            i = next;
        }
    }

    private int breakQueue(DescriptorChain chain, int reason) {
        brokenReason = reason;
        chain.setError(reason);
        return NEEDS_RESET;
    }

    @Override
    public void complete(int id, int writtenLength) {
        if (id < 0 || id >= size) throw new IllegalArgumentException("id " + id + " outside queue of size " + size);
        final long off = USED_RING + (long) USED_ELEM_SIZE * (usedIdx & mask);
        U32_ALIGNED.set(used, off, id);
        U32_ALIGNED.set(used, off + 4, writtenLength);
        usedIdx = (usedIdx + 1) & 0xFFFF;
        if (inflight > 0) inflight--;
    }

    @Override
    public void publish() {
        final int idx = usedIdx;
        if (idx != publishedUsed) {
            // §2.7.8.2: "The device MUST set len prior to updating the used idx" (and write the buffers): release
            // store = the smp_wmb() before used->idx in QEMU virtqueue_split_flush / vhost_add_used_n.
            U16_ALIGNED.setRelease(used, USED_IDX, (short) idx);
            publishedUsed = idx;
        }
    }

    @Override
    public boolean needsNotification() {
        final int newIdx = publishedUsed;
        final int old = signalledUsed;
        if (newIdx == old) return false;   // nothing published since the last check
        final boolean valid = signalledValid;
        signalledUsed = newIdx;
        signalledValid = true;
        // §2.7.7 / §2.7.14: the used->idx store must be visible before used_event / avail->flags are read, or a driver
        // re-enabling interrupts at this moment could miss both (QEMU virtio_split_should_notify: smp_mb(); Linux
        // vhost_notify: smp_mb()). Release-then-acquire would not order this store-load pair.
        VarHandle.fullFence();
        if (eventIdx) {
            // §2.7.7: notify iff used idx passed used_event since the last check (vring_need_event).
            final int event = (short) U16_ALIGNED.get(avail, usedEventOffset) & 0xFFFF;
            return !valid || EventIndex.needEvent(event, newIdx, old);
        }
        // §2.7.7: without EVENT_IDX, flags bit VIRTQ_AVAIL_F_NO_INTERRUPT advises against notifying.
        return ((short) U16_ALIGNED.get(avail, AVAIL_FLAGS) & AVAIL_F_NO_INTERRUPT) == 0;
    }

    @Override
    public void disableNotifications() {
        if (!notificationsEnabled) return;
        notificationsEnabled = false;
        // §2.7.10: without EVENT_IDX the device MAY set flags to 1. With EVENT_IDX it MUST keep flags 0; leaving
        // avail_event where it is suppresses kicks until the driver's idx laps it (a spurious kick is harmless).
        if (!eventIdx) U16_ALIGNED.set(used, USED_FLAGS, (short) USED_F_NO_NOTIFY);
    }

    @Override
    public boolean enableNotifications() {
        notificationsEnabled = true;
        if (eventIdx) {
            // §2.7.10: ask for a kick when the driver writes entry lastAvail (its next addition).
            U16_ALIGNED.set(used, availEventOffset, (short) lastAvail);
        } else {
            U16_ALIGNED.set(used, USED_FLAGS, (short) 0);
        }
        // §2.7.10 / §2.7.13.4: the avail_event/flags store must be visible before avail->idx is re-read, else a driver
        // adding now reads the old value, skips its kick, and we sleep on a non-empty ring (vhost_enable_notify and
        // QEMU virtio_queue_split_set_notification: smp_mb()).
        VarHandle.fullFence();
        final int idx = (short) U16_ALIGNED.getAcquire(avail, AVAIL_IDX) & 0xFFFF;
        return idx != lastAvail;
    }

    @Override public boolean isBroken() { return brokenReason != NONE; }

    @Override public int brokenReason() { return brokenReason; }

    @Override public int size() { return size; }
    @Override public int lastAvailIndex() { return lastAvail; }
    @Override public boolean lastAvailWrapCounter() { return true; }
    @Override public int lastUsedIndex() { return usedIdx; }
    @Override public boolean lastUsedWrapCounter() { return true; }
    @Override public int inflight() { return inflight; }
    public boolean eventIdx() { return eventIdx; }
    public boolean indirect() { return indirect; }

    /** The used->idx currently in the ring (what the driver has been shown), e.g. for {@link #restore(int)}. */
    public int usedIndexInRing() {
        return (short) U16_ALIGNED.getAcquire(used, USED_IDX) & 0xFFFF;
    }

    /**
     * vhost-user SET_VRING_BASE: the next avail index from the frontend, the used index from the ring itself
     * (as libvhost-user does).
     */
    public void restore(int lastAvailIndex) {
        restore(lastAvailIndex, true, usedIndexInRing(), true);
    }

    @Override
    public void restore(int lastAvailIndex, boolean availWrap, int lastUsedIndex, boolean usedWrap) {
        lastAvail = lastAvailIndex & 0xFFFF;
        availSeen = lastAvail;
        usedIdx = lastUsedIndex & 0xFFFF;
        publishedUsed = usedIdx;
        signalledUsed = usedIdx;
        signalledValid = false;
        inflight = 0;
        brokenReason = NONE;
        if ((lastAvailIndex & ~0xFFFF) != 0 || (lastUsedIndex & ~0xFFFF) != 0) {
            brokenReason = BAD_INDEX;
        } else if (((lastAvail - usedIdx) & 0xFFFF) > size) {
            // More chains in flight than the queue holds: the indexes cannot come from a working driver/device pair.
            brokenReason = USED_INDEX_JUMP;
        }
    }

    @Override
    public String toString() {
        return "SplitVirtqueue[size=" + size + ", lastAvail=" + lastAvail + ", used=" + usedIdx + ", inflight="
                + inflight + (eventIdx ? ", event-idx" : "") + (indirect ? ", indirect" : "")
                + (brokenReason != NONE ? ", broken=" + ChainError.name(brokenReason) : "") + "]";
    }
}
