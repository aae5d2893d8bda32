package io.github.vduse4j.ring;

import static io.github.vduse4j.ring.ChainError.*;
import static io.github.vduse4j.ring.LittleEndian.*;
import static io.github.vduse4j.ring.VirtioRing.*;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * Device side of a packed virtqueue (virtio 1.2 §2.8): one descriptor ring with AVAIL/USED flags and wrap counters,
 * buffer ids, NEXT-linked lists, indirect tables, and the driver/device event suppression structures.
 *
 * <p>Memory ordering (Linux {@code virtio_ring.c} packed functions on the driver side, QEMU
 * {@code virtqueue_packed_pop/flush} on the device side): an acquire load of the head descriptor's flags before
 * reading the rest of the list; the first used descriptor's flags of a batch are stored last with a release store; a
 * full fence between publishing and reading the driver event suppression structure, and between enabling the device
 * event suppression structure and re-reading the ring.
 */
public final class PackedVirtqueue implements Virtqueue {
    private static final int MAX_IDS = 1 << 16;   // buffer ids are le16 (§2.8.13)

    private final int size;
    /** Largest indirect table accepted (see {@link VirtioRing#maxIndirectEntries}). */
    private final int maxIndirect;
    private final MemorySegment desc;
    private final MemorySegment driverEvent;
    private final MemorySegment deviceEvent;
    private final GuestMemory memory;
    private final boolean eventIdx;
    private final boolean indirect;
    private final Translation translation = new Translation();
    /** Descriptors in the ring used by each in-flight buffer id; 0 = not in flight. */
    private final char[] inflightDescriptors = new char[MAX_IDS];

    private int lastAvail;            // next descriptor to read
    private boolean availWrap = true; // §2.8.1: wrap counters start at 1
    private int usedIdx;              // next descriptor to write a used element into (includes staged elements)
    private boolean usedWrap = true;
    private int staged;               // used elements written since the last publish
    private long firstStagedFlagsOffset;
    private short firstStagedFlags;
    private int usedSinceCheck;       // descriptors used since the last needsNotification()
    private boolean signalledValid;
    private int inflight;
    private int inflightDescriptorTotal; // ring descriptors of the lists in flight
    private int brokenReason = NONE;

    /**
     * @param size        queue size, 1..32768, any value (§2.8)
     * @param desc        the descriptor ring, 16 * size bytes, 16-aligned
     * @param driverEvent the driver event suppression structure (Driver Area), 4 bytes, 4-aligned; read by the device
     * @param deviceEvent the device event suppression structure (Device Area), 4 bytes, 4-aligned; written by the device
     * @param memory      translation of the driver addresses found in descriptors
     * @param eventIdx    VIRTIO_F_EVENT_IDX (RING_EVENT_FLAGS_DESC) was negotiated
     * @param indirect    VIRTIO_F_INDIRECT_DESC was negotiated
     */
    public PackedVirtqueue(int size, MemorySegment desc, MemorySegment driverEvent, MemorySegment deviceEvent,
                           GuestMemory memory, boolean eventIdx, boolean indirect) {
        if (size < 1 || size > MAX_QUEUE_SIZE) {
            throw new IllegalArgumentException("packed queue size must be in [1, 32768]: " + size);
        }
        if (memory == null) throw new IllegalArgumentException("memory is null");
        RingSegments.require(desc, descTableBytes(size), PACKED_DESC_ALIGN, "descriptor ring");
        RingSegments.require(driverEvent, EVENT_SUPPRESSION_BYTES, PACKED_EVENT_ALIGN, "driver event suppression");
        RingSegments.require(deviceEvent, EVENT_SUPPRESSION_BYTES, PACKED_EVENT_ALIGN, "device event suppression");
        this.size = size;
        this.maxIndirect = VirtioRing.maxIndirectEntries(size);
        this.desc = desc;
        this.driverEvent = driverEvent;
        this.deviceEvent = deviceEvent;
        this.memory = memory;
        this.eventIdx = eventIdx;
        this.indirect = indirect;
    }

    /** §2.8.1: available = AVAIL matches the wrap counter and USED does not. */
    private static boolean isAvailable(int flags, boolean wrap) {
        return (flags & (PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED)) == (wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED);
    }

    @Override
    public int pop(DescriptorChain chain) {
        chain.reset();
        if (brokenReason != NONE) {
            chain.setError(QUEUE_BROKEN);
            return NEEDS_RESET;
        }
        int slot = lastAvail;
        boolean wrap = availWrap;
        long off = (long) DESC_SIZE * slot;
        // §2.8.21.1 (Updating flags): the driver stores the head's flags last, after a memory barrier; this acquire
        // pairs with it, so every other descriptor of the list and every field read below is current (QEMU
        // virtqueue_packed_pop: smp_rmb() after is_desc_avail; Linux detach path: virtio_rmb()).
        int flags = (short) U16_ALIGNED.getAcquire(desc, off + PACKED_DESC_FLAGS) & 0xFFFF;
        if (!isAvailable(flags, wrap)) return EMPTY;
        int count = 0;
        int error = NONE;
        int id;
        for (;;) {
            count++;
            final long addr = (long) U64.get(desc, off + DESC_ADDR);
            final long word = (long) U64.get(desc, off + DESC_LEN);   // len | id << 32 | flags << 48
            final long len = word & 0xFFFF_FFFFL;
            id = (int) (word >>> 32) & 0xFFFF;
            if (count > 1) {
                flags = (int) (word >>> 48);
                // §2.8.6 note: AVAIL/USED must be set correctly in all descriptors of the list, and §2.8.17: the
                // driver makes the first available only after the rest. Anything else is a corrupt ring.
                if (!isAvailable(flags, wrap)) return breakQueue(chain, INCONSISTENT_FLAGS);
            }
            if (error == NONE) error = element(chain, addr, len, flags, count);
            if ((flags & DESC_F_NEXT) == 0) break;   // §2.8.6: the buffer id is in the last descriptor of the list
            // §2.8.17: no list longer than the queue size; bounds the walk.
            if (count >= size) return breakQueue(chain, UNTERMINATED_CHAIN);
            if (++slot == size) {
                slot = 0;
                wrap = !wrap;
                off = 0;
            } else {
                off += DESC_SIZE;
            }
        }
        if (++slot == size) {
            slot = 0;
            wrap = !wrap;
        }
        // §2.8.21.1: the driver hands out free buffer ids; one still in flight means we can no longer account the
        // used ring (how many descriptors to skip per id).
        if (inflightDescriptors[id] != 0) return breakQueue(chain, DUPLICATE_ID);
        // §2.8.1/§2.8.21.1: ring slots of lists in flight stay the device's until it writes them back as used, so
        // the lists in flight never hold more than size descriptors; more means the driver overwrote slots the
        // device still owns (the used writes would land on descriptors not yet read).
        if (inflightDescriptorTotal + count > size) return breakQueue(chain, USED_INDEX_JUMP);
        lastAvail = slot;
        availWrap = wrap;
        return accept(chain, id, count, error);
    }

    /** Marks buffer {@code id} in flight with {@code count} ring descriptors and hands the chain out. */
    private int accept(DescriptorChain chain, int id, int count, int error) {
        inflightDescriptors[id] = (char) count;
        inflightDescriptorTotal += count;
        inflight++;
        chain.setId(id);
        if (error != NONE) {
            chain.setError(error);
            return CHAIN_ERROR;
        }
        return POPPED;
    }

    /**
     * Hands the device a descriptor list saved earlier instead of reading it from the ring: for a restarted device
     * that resubmits what an earlier instance popped and never used (vhost-user "Inflight I/O tracking" keeps copies,
     * because the device may use buffers out of order, §2.6, and the driver may then already have reused the ring
     * slots of a list still in flight).
     *
     * <p>The copies ({@code addr[k]}, {@code len[k]} as an unsigned le32, {@code flags[k]} as a le16, for
     * {@code k < count}, in ring order) get exactly the checks {@link #pop} applies to ring descriptors: the list
     * structure breaks the queue ({@link #NEEDS_RESET}) — {@code count} outside 1..size or NEXT on the last copy
     * ({@code UNTERMINATED_CHAIN}, §2.8.17), a copy before the last without NEXT or AVAIL/USED bits that are not
     * one available pattern ({@code INCONSISTENT_FLAGS}, §2.8.1, §2.8.6 note), an id that is no le16
     * ({@code BAD_INDEX}, §2.8.13) or already in flight ({@code DUPLICATE_ID}, §2.8.21.1), or more descriptors
     * than {@link #restore} left between the used and the avail position ({@code USED_INDEX_JUMP}, §2.8.1); the
     * buffers (indirect tables, mappings, lengths, readable before writable) give {@link #CHAIN_ERROR} as in pop.
     * Either way the buffer id is then in flight with {@code count} descriptors, so {@link #complete}(id, len)
     * accounts the used ring as for a popped list. {@link #lastAvailIndex()} does not move.
     *
     * @throws IllegalArgumentException if an array is null or shorter than {@code count} (a device bug)
     * @return {@link #POPPED}, {@link #CHAIN_ERROR} or {@link #NEEDS_RESET}
     */
    public int popCopied(DescriptorChain chain, int id, long[] addr, int[] len, int[] flags, int count) {
        if (addr == null || len == null || flags == null
                || count > Math.min(addr.length, Math.min(len.length, flags.length))) {
            throw new IllegalArgumentException("descriptor copies shorter than " + count);
        }
        chain.reset();
        if (brokenReason != NONE) {
            chain.setError(QUEUE_BROKEN);
            return NEEDS_RESET;
        }
        // §2.8.17: a list has at least one and at most queue-size descriptors.
        if (count < 1 || count > size) return breakQueue(chain, UNTERMINATED_CHAIN);
        // §2.8.13: buffer ids are le16.
        if (id < 0 || id >= MAX_IDS) return breakQueue(chain, BAD_INDEX);
        // §2.8.1 / §2.8.6 note: every descriptor of a list was available when it was popped, in the head's lap or,
        // past the ring's end, in the next one (the wrap counter flips there, once: a list is at most size long).
        int lap = flags[0] & (PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED);
        if (lap != PACKED_DESC_F_AVAIL && lap != PACKED_DESC_F_USED) return breakQueue(chain, INCONSISTENT_FLAGS);
        boolean wrapped = false;
        for (int k = 0; k < count; k++) {
            final int f = flags[k];
            final int p = f & (PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED);
            if (p != lap) {
                if (wrapped || (p != PACKED_DESC_F_AVAIL && p != PACKED_DESC_F_USED)) {
                    return breakQueue(chain, INCONSISTENT_FLAGS);
                }
                wrapped = true;
                lap = p;
            }
            // §2.8.6: NEXT links every descriptor of the list to the following one, and only those.
            final boolean last = k == count - 1;
            if (last && (f & DESC_F_NEXT) != 0) return breakQueue(chain, UNTERMINATED_CHAIN);
            if (!last && (f & DESC_F_NEXT) == 0) return breakQueue(chain, INCONSISTENT_FLAGS);
        }
        // §2.8.21.1: ids in flight are unique.
        if (inflightDescriptors[id] != 0) return breakQueue(chain, DUPLICATE_ID);
        // §2.8.1: used trails avail by the descriptors in flight; a resubmitted list must fit in that distance, or
        // its used element would pass the driver's avail position.
        final int availPos = lastAvail + (availWrap ? 0 : size);
        final int usedPos = usedIdx + (usedWrap ? 0 : size);
        if (inflightDescriptorTotal + count > Math.floorMod(availPos - usedPos, 2 * size)) {
            return breakQueue(chain, USED_INDEX_JUMP);
        }
        int error = NONE;
        for (int k = 0; k < count && error == NONE; k++) {
            error = element(chain, addr[k], len[k] & 0xFFFF_FFFFL, flags[k], k + 1);
        }
        return accept(chain, id, count, error);
    }

    /**
     * For a restarted device, after {@link #restore}: the {@code descriptors} ring slots from the used position on
     * belong to lists still in flight, and an earlier device instance may have left used elements there that it
     * staged but never published ({@link #complete} writes every element of a batch but the first with its flags,
     * §2.8.22, and the first one's flags never came). A driver that sees the first element of a later batch would
     * go on reading those stale ones. Every such slot showing the used flags of its lap (§2.8.1) gets the available
     * flags of its lap back. Only slots the device owns are touched: at most the distance from the used to the avail
     * position (the driver reads only the one at its used position among them); nothing on a broken queue.
     *
     * @return how many slots were changed
     */
    public int forgetStaleUsed(int descriptors) {
        if (brokenReason != NONE) return 0;
        final int availPos = lastAvail + (availWrap ? 0 : size);
        final int usedPos = usedIdx + (usedWrap ? 0 : size);
        final int n = Math.min(Math.max(descriptors, 0), Math.floorMod(availPos - usedPos, 2 * size));
        int slot = usedIdx;
        boolean wrap = usedWrap;
        int changed = 0;
        for (int k = 0; k < n; k++) {
            final long off = (long) DESC_SIZE * slot + PACKED_DESC_FLAGS;
            final int flags = (short) U16_ALIGNED.get(desc, off) & 0xFFFF;
            final int used = wrap ? PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED : 0;
            if ((flags & (PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED)) == used) {
                final int available = wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED;
                U16_ALIGNED.set(desc, off, (short) ((flags & ~(PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED)) | available));
                changed++;
            }
            if (++slot == size) {
                slot = 0;
                wrap = !wrap;
            }
        }
        return changed;
    }

    /** One descriptor of a list at {@code position} (1-based): an indirect table or a buffer; returns a ChainError. */
    private int element(DescriptorChain chain, long addr, long len, int flags, int position) {
        if ((flags & DESC_F_INDIRECT) != 0) return indirectTable(chain, addr, len, (flags & DESC_F_NEXT) != 0, position);
        if (len != 0) return buffer(chain, addr, len, (flags & DESC_F_WRITE) != 0);
        return NONE;
    }

    private int buffer(DescriptorChain chain, long addr, long len, boolean writable) {
        // §2.8.17: device-writable elements come after all device-readable ones.
        if (!writable && chain.hasWritable()) return READABLE_AFTER_WRITABLE;
        if (Long.compareUnsigned(addr + (len - 1), addr) < 0) return ADDRESS_OVERFLOW;
        return chain.addRange(memory, translation, addr, len, writable);
    }

    private int indirectTable(DescriptorChain chain, long addr, long len, boolean hasNext, int position) {
        // §2.8.19: only if negotiated; never combined with NEXT; never inside a NEXT-linked list.
        if (!indirect) return INDIRECT_NOT_NEGOTIATED;
        if (hasNext) return INDIRECT_WITH_NEXT;
        if (position > 1) return INDIRECT_IN_CHAIN;
        // §2.8.7: len / 16 descriptors, bounded (§2.8.17) by the queue size or, as Linux drivers need,
        // VirtioRing.MAX_INDIRECT_ENTRIES.
        if (len == 0 || (len & (DESC_SIZE - 1)) != 0 || (len >>> 4) > maxIndirect) return BAD_INDIRECT_SIZE;
        if (Long.compareUnsigned(addr + (len - 1), addr) < 0) return ADDRESS_OVERFLOW;
        final Translation t = translation;
        // §2.8.7: the table is read-only for the device; WRITE on the pointing descriptor is ignored.
        if (!memory.translate(addr, len, GuestMemory.READ, t)) return OUT_OF_MEMORY_RANGE;
        if (t.length != len) return INDIRECT_TABLE_NOT_CONTIGUOUS;
        final MemorySegment table = t.segment;
        final long base = t.offset;
        if (table == null || base < 0 || base > table.byteSize() - len) return OUT_OF_MEMORY_RANGE;
        final int entries = (int) (len >>> 4);
        for (int k = 0; k < entries; k++) {
            final long off = base + (long) DESC_SIZE * k;
            final long a = (long) U64.get(table, off + DESC_ADDR);
            final long word = (long) U64.get(table, off + DESC_LEN);
            final long l = word & 0xFFFF_FFFFL;
            final int f = (int) (word >>> 48);
            // §2.8.19: the driver MUST NOT set flags other than WRITE in a table; §2.8.7 says the device ignores
            // them. We ignore NEXT (entries are sequential) but reject INDIRECT: a nested table is never followed.
            if ((f & DESC_F_INDIRECT) != 0) return NESTED_INDIRECT;
            if (l == 0) continue;
            final int error = buffer(chain, a, l, (f & DESC_F_WRITE) != 0);
            if (error != NONE) return error;
        }
        return NONE;
    }

    private int breakQueue(DescriptorChain chain, int reason) {
        brokenReason = reason;
        chain.setError(reason);
        return NEEDS_RESET;
    }

    @Override
    public void complete(int id, int writtenLength) {
        if (id < 0 || id >= MAX_IDS || inflightDescriptors[id] == 0) {
            throw new IllegalArgumentException("buffer id " + id + " is not in flight");
        }
        final int descriptors = inflightDescriptors[id];
        inflightDescriptors[id] = 0;
        inflightDescriptorTotal -= descriptors;
        inflight--;
        final long off = (long) DESC_SIZE * usedIdx;
        // §2.8.1: used = AVAIL and USED both equal to the device wrap counter; §2.8.3: WRITE says data was written.
        int flags = usedWrap ? (PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED) : 0;
        if (writtenLength != 0) flags |= DESC_F_WRITE;
        if (staged == 0) {
            U32.set(desc, off + DESC_LEN, writtenLength);
            U16.set(desc, off + PACKED_DESC_ID, (short) id);
            firstStagedFlagsOffset = off + PACKED_DESC_FLAGS;   // stored last, by publish()
            firstStagedFlags = (short) flags;
        } else {
            // len, id and flags in one store. The driver reads a used descriptor only after the one before it
            // (§2.8.22), so these may become visible early: the first one's release store in publish() orders them.
            U64.set(desc, off + DESC_LEN, (writtenLength & 0xFFFF_FFFFL) | (long) id << 32 | (long) flags << 48);
        }
        staged++;
        usedSinceCheck += descriptors;
        // §2.8.6: skip forward by the number of descriptors in the list; §2.8.1: flip the wrap counter at the end.
        int next = usedIdx + descriptors;
        if (next >= size) {
            next -= size;
            usedWrap = !usedWrap;
        }
        usedIdx = next;
    }

    @Override
    public void publish() {
        if (staged == 0) return;
        // §2.8.2 / §2.8.22: the driver polls only the next used descriptor's flags; storing them last with release
        // semantics (virtio_wmb; QEMU virtqueue_packed_flush writes the first element last) makes every staged
        // id/len/flags and the buffer contents visible to a driver that sees them.
        U16_ALIGNED.setRelease(desc, firstStagedFlagsOffset, firstStagedFlags);
        staged = 0;
    }

    @Override
    public boolean needsNotification() {
        final int n = usedSinceCheck;
        if (n == 0) return false;   // nothing used since the last check
        usedSinceCheck = 0;
        final boolean valid = signalledValid;
        signalledValid = true;
        // §2.8.10 / §2.8.22: the used flags must be visible before the driver event suppression structure is read,
        // else a driver re-enabling events now could miss both (QEMU virtio_packed_should_notify: smp_mb()).
        VarHandle.fullFence();
        // One 32-bit snapshot of off_wrap and flags, as Linux reads the event structures.
        final int event = (int) U32_ALIGNED.get(driverEvent, EVENT_OFF_WRAP);
        final int flags = (event >>> 16) & 0x3;
        if (flags == EVENT_FLAGS_DISABLE) return false;
        // ENABLE, reserved value 3, or DESC without EVENT_IDX (§2.8.10: "only valid if negotiated"): notify.
        if (flags != EVENT_FLAGS_DESC || !eventIdx) return true;
        if (!valid || n >= size) return true;
        // §2.8.10 + Linux virtqueue_kick_prepare_packed / QEMU vring_packed_need_event: an event offset from the
        // previous lap (wrap bit differs from ours) lies size descriptors back; then vring_need_event over
        // [new - n, new).
        final int offWrap = event & 0xFFFF;
        int eventIdxValue = offWrap & 0x7FFF;
        if (((offWrap >>> EVENT_WRAP_SHIFT) != 0) != usedWrap) eventIdxValue -= size;
        return EventIndex.needEvent(eventIdxValue, usedIdx, usedIdx - n);
    }

    @Override
    public void disableNotifications() {
        // §2.8.10: RING_EVENT_FLAGS_DISABLE in the Device Area.
        U32_ALIGNED.set(deviceEvent, EVENT_OFF_WRAP, EVENT_FLAGS_DISABLE << 16);
    }

    @Override
    public boolean enableNotifications() {
        // §2.8.10: with EVENT_IDX ask for a kick when the driver makes descriptor (lastAvail, wrap) available; one
        // 32-bit store writes off_wrap and flags together (QEMU needs an smp_wmb between its two 16-bit stores).
        final int value = eventIdx
                ? EVENT_FLAGS_DESC << 16 | lastAvail | (availWrap ? 1 << EVENT_WRAP_SHIFT : 0)
                : EVENT_FLAGS_ENABLE << 16;
        U32_ALIGNED.set(deviceEvent, EVENT_OFF_WRAP, value);
        // §2.8.21.2 mirrored for the device: the event structure must be visible before the ring is re-read, else a
        // driver adding now reads DISABLE, skips its kick, and we sleep on a non-empty ring (QEMU
        // virtio_queue_packed_set_notification: smp_mb()).
        VarHandle.fullFence();
        final int flags = (short) U16_ALIGNED.getAcquire(desc, (long) DESC_SIZE * lastAvail + PACKED_DESC_FLAGS) & 0xFFFF;
        return isAvailable(flags, availWrap);
    }

    @Override public boolean isBroken() { return brokenReason != NONE; }

    @Override public int brokenReason() { return brokenReason; }

    @Override public int size() { return size; }
    @Override public int lastAvailIndex() { return lastAvail; }
    @Override public boolean lastAvailWrapCounter() { return availWrap; }
    @Override public int lastUsedIndex() { return usedIdx; }
    @Override public boolean lastUsedWrapCounter() { return usedWrap; }
    @Override public int inflight() { return inflight; }
    public boolean eventIdx() { return eventIdx; }
    public boolean indirect() { return indirect; }

    @Override
    public void restore(int lastAvailIndex, boolean availWrapCounter, int lastUsedIndex, boolean usedWrapCounter) {
        Arrays.fill(inflightDescriptors, (char) 0);
        inflightDescriptorTotal = 0;
        inflight = 0;
        staged = 0;
        usedSinceCheck = 0;
        signalledValid = false;
        brokenReason = NONE;
        if (lastAvailIndex < 0 || lastAvailIndex >= size || lastUsedIndex < 0 || lastUsedIndex >= size) {
            lastAvail = 0;
            usedIdx = 0;
            brokenReason = BAD_INDEX;
            return;
        }
        lastAvail = lastAvailIndex;
        availWrap = availWrapCounter;
        usedIdx = lastUsedIndex;
        usedWrap = usedWrapCounter;
        // Positions on a 2*size circle (the wrap counter flips every lap): used may trail avail by at most size.
        final int availPos = lastAvailIndex + (availWrapCounter ? 0 : size);
        final int usedPos = lastUsedIndex + (usedWrapCounter ? 0 : size);
        final int distance = Math.floorMod(availPos - usedPos, 2 * size);
        if (distance > size) brokenReason = USED_INDEX_JUMP;
    }

    @Override
    public String toString() {
        return "PackedVirtqueue[size=" + size + ", lastAvail=" + lastAvail + (availWrap ? "/1" : "/0") + ", used="
                + usedIdx + (usedWrap ? "/1" : "/0") + ", inflight=" + inflight + (eventIdx ? ", event-idx" : "")
                + (indirect ? ", indirect" : "")
                + (brokenReason != NONE ? ", broken=" + ChainError.name(brokenReason) : "") + "]";
    }
}
