package io.github.vduse4j.ring.driver;

import static io.github.vduse4j.ring.VirtioRing.*;

import io.github.vduse4j.ring.EventIndex;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The driver side of one split virtqueue (virtio 1.2 §2.7), as Linux {@code virtqueue_add_split /
 * kick_prepare_split / get_buf_split / enable_cb_prepare_split / disable_cb_split}: a descriptor free list kept in
 * driver-private arrays (never read back from shared memory), one indirect table per head descriptor, the avail index
 * shadow, {@code num_added} kick accounting with {@code avail_event} (EVENT_IDX) or VIRTQ_USED_F_NO_NOTIFY, and
 * {@code used_event} updates, with the same barriers. Used elements are checked (head in range and in flight, length
 * within the writable part, used index not ahead of what is in flight); see {@link DriverRing} for what a fault does.
 * One thread only; no allocation after construction.
 */
public final class SplitDriverRing implements DriverRing {
    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle()
            .withInvokeExactBehavior();
    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int size;
    private final int mask;
    private final boolean eventIdx;
    private final boolean indirect;
    private final int indirectEntries;
    private final MemorySegment desc;
    private final MemorySegment avail;
    private final MemorySegment used;
    private final MemorySegment tables;
    private final long descAddr;
    private final long availAddr;
    private final long usedAddr;
    private final long tablesAddr;
    private final long usedEventOff;
    private final long availEventOff;
    /** Linux desc_extra[].next: the chain link while in flight, the free list otherwise. */
    private final int[] next;
    /** Ring descriptors of the chain with this head while it is in flight; 0 = not a head in flight. */
    private final int[] chainLength;
    private final long[] writableBytes;
    private final long[] token;
    private final DeviceFaults faults = new DeviceFaults("split ring");
    private int freeHead;
    private int numFree;
    private int inflight;
    private int availIdx;
    private int publishedAvail;
    private int numAdded;
    private int lastUsed;
    /**
     * The used index as last read from the ring (checked then: not ahead of what was in flight): the elements between
     * {@code lastUsed} and it are reaped without another read of the device's line (DPDK's virtio reads used->idx once
     * per burst, for the same reason); the ring is read again only when they are all reaped.
     */
    private int seenUsed;
    private boolean noInterrupt;
    private boolean broken;
    private int usedId;
    private int usedLen;
    private long usedToken;
    private int usedDescriptors;

    /**
     * A ring of {@code size} descriptors (a power of two, §2.7) whose three parts (and, with {@code indirectEntries >
     * 0}, one table of that many entries per descriptor) are carved out of {@code memory}.
     */
    public SplitDriverRing(RingMemory memory, int size, boolean eventIdx, boolean indirect, int indirectEntries) {
        if (size < 1 || size > MAX_QUEUE_SIZE || Integer.bitCount(size) != 1) {
            throw new IllegalArgumentException("split ring size must be a power of two up to 32768: " + size);
        }
        if (indirectEntries < 0 || indirectEntries > MAX_INDIRECT_ENTRIES || (indirect && indirectEntries == 0)) {
            throw new IllegalArgumentException("indirect table entries out of range: " + indirectEntries);
        }
        this.size = size;
        this.mask = size - 1;
        this.eventIdx = eventIdx;
        this.indirect = indirect;
        this.indirectEntries = indirectEntries;
        // §2.7: descriptor table 16-aligned, available ring 2-aligned, used ring 4-aligned; pages keep them apart.
        this.desc = memory.ringPart(descTableBytes(size), 4096);
        this.avail = memory.ringPart(availRingBytes(size), 4096);
        this.used = memory.ringPart(usedRingBytes(size), 4096);
        this.tables = indirectEntries > 0 ? memory.indirectTables((long) size * indirectEntries * DESC_SIZE)
                : MemorySegment.NULL;
        this.descAddr = memory.deviceAddress(desc);
        this.availAddr = memory.deviceAddress(avail);
        this.usedAddr = memory.deviceAddress(used);
        this.tablesAddr = indirectEntries > 0 ? memory.deviceAddress(tables) : 0;
        this.usedEventOff = usedEventOffset(size);
        this.availEventOff = availEventOffset(size);
        this.next = new int[size];
        this.chainLength = new int[size];
        this.writableBytes = new long[size];
        this.token = new long[size];
        reset();
    }

    @Override
    public void reset() {
        final boolean callbacksOff = noInterrupt;
        desc.fill((byte) 0);
        avail.fill((byte) 0);
        used.fill((byte) 0);
        for (int i = 0; i < size; i++) {
            next[i] = i + 1;   // Linux: desc_extra[i].next = i + 1
            chainLength[i] = 0;
        }
        freeHead = 0;
        numFree = size;
        inflight = 0;
        availIdx = publishedAvail = lastUsed = seenUsed = numAdded = 0;
        noInterrupt = false;
        broken = false;
        faults.clear();
        if (callbacksOff) {
            disableCallbacks();
        }
    }

    /**
     * Moves a fresh ring to avail/used index {@code index} (as if {@code index} chains had come and gone): what a
     * device started with SET_VRING_BASE {@code index} expects.
     */
    public void startAt(int index) {
        if (inflight != 0 || numAdded != 0) {
            throw new IllegalStateException("startAt on a ring in use");
        }
        availIdx = publishedAvail = lastUsed = seenUsed = index & 0xffff;
        U16.set(avail, AVAIL_IDX, (short) availIdx);
        U16.set(used, USED_IDX, (short) availIdx);
        if (eventIdx) {
            U16.set(avail, usedEventOff, (short) availIdx);
        }
    }

    @Override public boolean packed() { return false; }
    @Override public int size() { return size; }
    @Override public boolean eventIdx() { return eventIdx; }
    @Override public boolean indirect() { return indirect; }
    @Override public int indirectEntries() { return indirectEntries; }
    @Override public MemorySegment descArea() { return desc; }
    /** The available ring. */
    @Override public MemorySegment driverArea() { return avail; }
    /** The used ring. */
    @Override public MemorySegment deviceArea() { return used; }
    @Override public long descAddress() { return descAddr; }
    @Override public long driverAreaAddress() { return availAddr; }
    @Override public long deviceAreaAddress() { return usedAddr; }
    @Override public int vringBase() { return availIdx; }
    @Override public int freeDescriptors() { return numFree; }
    @Override public int inflight() { return inflight; }
    @Override public int added() { return numAdded; }
    @Override public boolean broken() { return broken; }
    @Override public long deviceFaults() { return faults.count(); }
    @Override public String firstDeviceFault() { return faults.describe(); }
    @Override public int usedId() { return usedId; }
    @Override public int usedLength() { return usedLen; }
    @Override public long usedToken() { return usedToken; }
    @Override public int usedDescriptors() { return usedDescriptors; }
    /** The driver's avail index (the next slot it fills). */
    public int availIndex() { return availIdx; }
    /** The next used index the driver expects. */
    public int lastUsedIndex() { return lastUsed; }
    /** The used index the device published. */
    public int usedIndexInRing() { return (short) U16.getAcquire(used, USED_IDX) & 0xffff; }
    /** Device address of the indirect table of head {@code head}. */
    public long tableAddress(int head) { return tablesAddr + (long) head * indirectEntries * DESC_SIZE; }

    @Override
    public int addDirect(long[] addr, int[] len, boolean[] writable, int count, long tok) {
        if (count < 1) {
            throw new IllegalArgumentException("empty chain");   // Linux: BUG_ON(total_sg == 0)
        }
        if (broken || count > numFree) {
            return -1;   // -ENOSPC
        }
        final int head = freeHead;
        int i = head;
        long writableLength = 0;
        for (int k = 0; k < count; k++) {
            if (writable[k]) {
                writableLength += len[k] & 0xffff_ffffL;
            }
            // §2.7.5: NEXT on all but the last descriptor, WRITE on the device-writable ones.
            int flags = (writable[k] ? DESC_F_WRITE : 0) | (k + 1 < count ? DESC_F_NEXT : 0);
            writeDescriptor(desc, (long) DESC_SIZE * i, addr[k], len[k], flags, next[i]);
            i = next[i];
        }
        return added(head, i, count, writableLength, tok);
    }

    @Override
    public int addIndirect(long[] addr, int[] len, boolean[] writable, int count, long tok) {
        if (count < 1) {
            throw new IllegalArgumentException("empty chain");
        }
        if (count > indirectEntries) {
            throw new IllegalArgumentException("indirect table of " + count + " entries; " + indirectEntries + " reserved");
        }
        if (broken || numFree < 1) {
            return -1;
        }
        final int head = freeHead;
        final long tableOff = (long) head * indirectEntries * DESC_SIZE;
        long writableLength = 0;
        for (int k = 0; k < count; k++) {
            if (writable[k]) {
                writableLength += len[k] & 0xffff_ffffL;
            }
            // §2.7.5.3.1: a table's descriptors chain by index within the table; no INDIRECT inside it.
            int flags = (k + 1 < count ? DESC_F_NEXT : 0) | (writable[k] ? DESC_F_WRITE : 0);
            writeDescriptor(tables, tableOff + (long) DESC_SIZE * k, addr[k], len[k], flags, k + 1);
        }
        // §2.7.5.3.1: the ring descriptor says INDIRECT only (not WRITE, not NEXT); len is the table's bytes.
        writeDescriptor(desc, (long) DESC_SIZE * head, tablesAddr + tableOff, count * DESC_SIZE, DESC_F_INDIRECT,
                next[head]);
        return added(head, next[head], 1, writableLength, tok);
    }

    private int added(int head, int newFreeHead, int descriptors, long writableLength, long tok) {
        freeHead = newFreeHead;
        numFree -= descriptors;
        chainLength[head] = descriptors;
        writableBytes[head] = writableLength;
        token[head] = tok;
        inflight++;
        // §2.7.13.2: the head goes into the next available ring slot; avail->idx follows in publish().
        long slot = AVAIL_RING + 2L * (availIdx & mask);
        if (avail.get(S16, slot) != (short) head) {   // the same head a lap ago: no store (see writeDescriptor)
            avail.set(S16, slot, (short) head);
        }
        availIdx = (availIdx + 1) & 0xffff;
        numAdded++;
        return head;
    }

    /**
     * Writes a descriptor, or only its half that changed, or nothing: a split ring's device only reads descriptors,
     * so a line the device has read stays in this CPU's cache too, and reading it costs nothing, while a store takes
     * the line back from the device's CPU. A ring at a steady depth gets the same chains for the same buffers again
     * (the free list and the caller's slots are both last-in first-out), so most chains need no store at all
     * (docs/benchmarks.md, "Where the time goes at vhost-user QD32").
     */
    private static void writeDescriptor(MemorySegment s, long off, long addr, int len, int flags, int nextIndex) {
        // §2.7.5: le64 addr, le32 len, le16 flags, le16 next; the second 8 bytes as one little-endian long
        long second = (len & 0xffff_ffffL) | (long) (flags & 0xffff) << 32 | (long) (nextIndex & 0xffff) << 48;
        if (s.get(U64, off + DESC_ADDR) != addr) {
            s.set(U64, off + DESC_ADDR, addr);
        }
        if (s.get(U64, off + DESC_LEN) != second) {
            s.set(U64, off + DESC_LEN, second);
        }
    }

    /** §2.7.13.3: a release store of idx after the ring entries and descriptors (Linux: virtio_wmb() then the store). */
    @Override
    public void publish() {
        if (availIdx != publishedAvail) {
            U16.setRelease(avail, AVAIL_IDX, (short) availIdx);
            publishedAvail = availIdx;
        }
    }

    @Override
    public boolean kickPrepare() {
        // §2.7.10 / Linux virtqueue_kick_prepare_split: virtio_mb() exposes avail->idx before reading suppression.
        VarHandle.fullFence();
        final int old = (availIdx - numAdded) & 0xffff;
        numAdded = 0;
        if (eventIdx) {
            // §2.7.10: notify if avail_event lies among the entries just published.
            return EventIndex.needEvent((short) U16.get(used, availEventOff) & 0xffff, availIdx, old);
        }
        return ((short) U16.get(used, USED_FLAGS) & USED_F_NO_NOTIFY) == 0;
    }

    @Override
    public boolean hasUsed() {
        return lastUsed != seenUsed || lastUsed != ((short) U16.getAcquire(used, USED_IDX) & 0xffff);
    }

    @Override
    public boolean reap() {
        if (broken) {
            return false;
        }
        if (seenUsed == lastUsed) {
            // §2.7.14 / Linux more_used_split() + virtio_rmb(): the acquire load pairs with the device's release of
            // idx; it also orders the reads of every element up to idx, so those reaped later need no new load.
            final int idx = (short) U16.getAcquire(used, USED_IDX) & 0xffff;
            if (idx == lastUsed) {
                return false;
            }
            // §2.7.8: the device adds one used element per buffer it was given; an index further ahead than the
            // buffers in flight points at elements it never wrote.
            final int pending = (idx - lastUsed) & 0xffff;
            if (pending > inflight) {
                faults.record(DeviceFaults.USED_INDEX_JUMP, -1, pending, inflight);
                broken = true;
                return false;
            }
            seenUsed = idx;
        }
        final long off = USED_RING + (long) USED_ELEM_SIZE * (lastUsed & mask);
        final int id = used.get(U32, off);
        long len = used.get(U32, off + 4) & 0xffff_ffffL;
        // §2.7.8: id is the head of a chain the driver made available and the device has not used yet; anything else
        // leaves the free list unaccountable.
        if (id < 0 || id >= size) {
            faults.record(DeviceFaults.ID_OUT_OF_RANGE, id, len, size);
            broken = true;
            return false;
        }
        final int count = chainLength[id];
        if (count == 0) {
            faults.record(DeviceFaults.ID_NOT_IN_FLIGHT, id, len, size);
            broken = true;
            return false;
        }
        lastUsed = (lastUsed + 1) & 0xffff;
        // §2.7.8.1: the device writes at most the writable part, so len cannot exceed it.
        if (len > writableBytes[id]) {
            faults.record(DeviceFaults.LENGTH_TOO_LONG, id, len, writableBytes[id]);
            len = writableBytes[id];
        }
        // Linux detach_buf_split(): the chain back to the free list.
        int last = id;
        for (int k = 1; k < count; k++) {
            last = next[last];
        }
        next[last] = freeHead;
        freeHead = id;
        numFree += count;
        chainLength[id] = 0;
        inflight--;
        usedId = id;
        usedLen = (int) len;
        usedToken = token[id];
        usedDescriptors = count;
        // §2.7.7.2 / Linux: if we expect a notification for the next entry, tell the device with used_event and
        // flush that write before the next used->idx read (virtio_store_mb()).
        if (!noInterrupt) {
            U16.set(avail, usedEventOff, (short) lastUsed);
            VarHandle.fullFence();
        }
        return true;
    }

    @Override
    public void disableCallbacks() {
        if (!noInterrupt) {
            noInterrupt = true;
            if (eventIdx) {
                // §2.7.7.2: with EVENT_IDX the flag is ignored. Linux writes used_event 0 ("a hack"): a notification
                // then comes at most once per 2^16 used buffers.
                U16.set(avail, usedEventOff, (short) 0);
            } else {
                U16.set(avail, AVAIL_FLAGS, (short) AVAIL_F_NO_INTERRUPT);
            }
        }
    }

    @Override
    public void enableCallbacksPrepare() {
        if (noInterrupt) {
            noInterrupt = false;
            if (!eventIdx) {
                U16.set(avail, AVAIL_FLAGS, (short) 0);
            }
        }
        // §2.7.7.2: notify at the next used entry.
        U16.set(avail, usedEventOff, (short) lastUsed);
    }

    @Override
    public boolean pollAfterEnable() {
        VarHandle.fullFence();   // Linux virtqueue_poll_split(): virtio_mb() then compare with used->idx
        return lastUsed != seenUsed || lastUsed != ((short) U16.get(used, USED_IDX) & 0xffff);
    }

    @Override
    public String toString() {
        return "SplitDriverRing[size=" + size + ", avail=" + availIdx + ", lastUsed=" + lastUsed + ", free=" + numFree
                + (eventIdx ? ", event-idx" : "") + (indirect ? ", indirect" : "") + (broken ? ", broken" : "") + "]";
    }
}
