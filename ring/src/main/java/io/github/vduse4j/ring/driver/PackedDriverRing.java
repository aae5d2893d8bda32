package io.github.vduse4j.ring.driver;

import static io.github.vduse4j.ring.VirtioRing.*;

import io.github.vduse4j.ring.EventIndex;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The driver side of one packed virtqueue (virtio 1.2 §2.8), as Linux {@code virtqueue_add_packed /
 * add_indirect_packed / kick_prepare_packed / get_buf_packed / enable_cb_prepare_packed / disable_cb_packed}: buffer
 * ids from the {@code desc_extra} free list (a list of n descriptors consumes n entries), AVAIL/USED flags from the
 * wrap counters, the head's flags written last with a release store (which makes the buffer available at once:
 * {@link #publish()} has nothing to do), kick decisions from the device event suppression structure and driver event
 * off_wrap updates, with the same barriers. Used descriptors are checked (buffer id in range and in flight, length
 * within the writable part); see {@link DriverRing} for what a fault does. One thread only; no allocation after
 * construction.
 */
public final class PackedDriverRing implements DriverRing {
    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle()
            .withInvokeExactBehavior();
    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int AVAIL_USED = PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED;
    /** Bytes set aside for each event suppression structure: a page, so driver and device never share a line. */
    private static final long EVENT_AREA_BYTES = 4096;

    private final int size;
    private final boolean eventIdx;
    private final boolean indirect;
    private final int indirectEntries;
    private final MemorySegment desc;
    private final MemorySegment driverEvent;
    private final MemorySegment deviceEvent;
    private final MemorySegment tables;
    private final long descAddr;
    private final long driverEventAddr;
    private final long deviceEventAddr;
    private final long tablesAddr;
    /** Linux desc_extra[].next: the free list of buffer ids. */
    private final int[] nextId;
    /** Ring descriptors of the buffer with this id while it is in flight; 0 = the id is free. */
    private final int[] stateNum;
    /** The last free-list entry the buffer with this id consumed (Linux desc_state[].last). */
    private final int[] stateLast;
    /** Device-writable bytes of the buffer with this id (the bound of a used length, §2.8.4). */
    private final long[] writableBytes;
    private final long[] token;
    private final DeviceFaults faults = new DeviceFaults("packed ring");
    private int freeId;
    private int numFree;
    private int inflight;
    private int nextAvail;
    private boolean availWrap;
    /** AVAIL/USED bits that make a descriptor available in the current lap (§2.8.1). */
    private int availFlags;
    private int nextUsed;
    private boolean usedWrap;
    private int eventFlags;
    /** Descriptors made available since the last {@link #kickPrepare()}. */
    private int numAdded;
    private boolean broken;
    private int usedId;
    private int usedLen;
    private long usedToken;
    private int usedDescriptors;

    /**
     * A ring of {@code size} descriptors whose descriptor ring and two event suppression structures (and, with
     * {@code indirectEntries > 0}, one table of that many entries per buffer id) are carved out of {@code memory}.
     */
    public PackedDriverRing(RingMemory memory, int size, boolean eventIdx, boolean indirect, int indirectEntries) {
        // §2.8: up to 2^15 entries, any number; buffer ids are le16 and we hand out at most size of them.
        if (size < 1 || size > MAX_QUEUE_SIZE) {
            throw new IllegalArgumentException("packed ring size must be in [1, 32768]: " + size);
        }
        if (indirectEntries < 0 || indirectEntries > MAX_INDIRECT_ENTRIES || (indirect && indirectEntries == 0)) {
            throw new IllegalArgumentException("indirect table entries out of range: " + indirectEntries);
        }
        this.size = size;
        this.eventIdx = eventIdx;
        this.indirect = indirect;
        this.indirectEntries = indirectEntries;
        // §2.8.10.1: descriptor ring 16-aligned, event suppression structures 4-aligned.
        this.desc = memory.ringPart(descTableBytes(size), 4096);
        this.driverEvent = memory.ringPart(EVENT_AREA_BYTES, 4096).asSlice(0, EVENT_SUPPRESSION_BYTES);
        this.deviceEvent = memory.ringPart(EVENT_AREA_BYTES, 4096).asSlice(0, EVENT_SUPPRESSION_BYTES);
        this.tables = indirectEntries > 0 ? memory.indirectTables((long) size * indirectEntries * DESC_SIZE)
                : MemorySegment.NULL;
        this.descAddr = memory.deviceAddress(desc);
        this.driverEventAddr = memory.deviceAddress(driverEvent);
        this.deviceEventAddr = memory.deviceAddress(deviceEvent);
        this.tablesAddr = indirectEntries > 0 ? memory.deviceAddress(tables) : 0;
        this.nextId = new int[size];
        this.stateNum = new int[size];
        this.stateLast = new int[size];
        this.writableBytes = new long[size];
        this.token = new long[size];
        reset();
    }

    @Override
    public void reset() {
        final boolean callbacksOff = eventFlags == EVENT_FLAGS_DISABLE;
        desc.fill((byte) 0);   // §2.8.13: the descriptor ring is zero-initialized
        driverEvent.fill((byte) 0);
        deviceEvent.fill((byte) 0);
        for (int i = 0; i < size; i++) {
            nextId[i] = i + 1;
            stateNum[i] = 0;
        }
        freeId = 0;
        numFree = size;
        inflight = 0;
        nextAvail = nextUsed = 0;
        availWrap = usedWrap = true;   // §2.8.1: both wrap counters start at 1
        availFlags = PACKED_DESC_F_AVAIL;
        eventFlags = EVENT_FLAGS_ENABLE;
        numAdded = 0;
        broken = false;
        faults.clear();
        if (callbacksOff) {
            disableCallbacks();
        }
    }

    /**
     * Moves a fresh ring to descriptor {@code index} of the lap with wrap counter {@code wrap} (as if earlier laps had
     * come and gone): the descriptors' flags are rewritten as the device would have left them.
     */
    public void startAt(int index, boolean wrap) {
        if (inflight != 0 || numAdded != 0) {
            throw new IllegalStateException("startAt on a ring in use");
        }
        if (index < 0 || index >= size) {
            throw new IllegalArgumentException("index " + index);
        }
        for (int i = 0; i < size; i++) {
            boolean lap = i < index ? wrap : !wrap;   // the lap in which the device last used descriptor i
            U16.set(desc, (long) i * DESC_SIZE + PACKED_DESC_FLAGS, (short) (lap ? AVAIL_USED : 0));
        }
        nextAvail = nextUsed = index;
        availWrap = usedWrap = wrap;
        availFlags = wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED;
    }

    @Override public boolean packed() { return true; }
    @Override public int size() { return size; }
    @Override public boolean eventIdx() { return eventIdx; }
    @Override public boolean indirect() { return indirect; }
    @Override public int indirectEntries() { return indirectEntries; }
    /** The descriptor ring. */
    @Override public MemorySegment descArea() { return desc; }
    /** The driver event suppression structure (§2.8.10). */
    @Override public MemorySegment driverArea() { return driverEvent; }
    /** The device event suppression structure (§2.8.10). */
    @Override public MemorySegment deviceArea() { return deviceEvent; }
    @Override public long descAddress() { return descAddr; }
    @Override public long driverAreaAddress() { return driverEventAddr; }
    @Override public long deviceAreaAddress() { return deviceEventAddr; }
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
    /** The next descriptor the driver fills. */
    public int nextAvail() { return nextAvail; }
    /** The Driver Ring Wrap Counter (§2.8.1). */
    public boolean availWrapCounter() { return availWrap; }
    /** The next descriptor the driver expects a used buffer in. */
    public int nextUsed() { return nextUsed; }
    /** The driver's copy of the Device Ring Wrap Counter at {@link #nextUsed()} (§2.8.1). */
    public boolean usedWrapCounter() { return usedWrap; }
    /** Device address of the indirect table of buffer {@code id}. */
    public long tableAddress(int id) { return tablesAddr + (long) id * indirectEntries * DESC_SIZE; }

    @Override
    public int vringBase() {
        return base(nextAvail, availWrap, nextUsed, usedWrap);
    }

    /** The vhost SET_VRING_BASE value of a packed ring: avail idx | wrap &lt;&lt; 15, used likewise &lt;&lt; 16. */
    public static int base(int availIndex, boolean availWrap, int usedIndex, boolean usedWrap) {
        int a = (availIndex & 0x7fff) | (availWrap ? 0x8000 : 0);
        int u = (usedIndex & 0x7fff) | (usedWrap ? 0x8000 : 0);
        return a | u << 16;
    }

    @Override
    public int addDirect(long[] addr, int[] len, boolean[] writable, int count, long tok) {
        if (count < 1) {
            throw new IllegalArgumentException("empty chain");
        }
        // §2.8.17: the whole list must fit before its first descriptor is made available. numFree descriptors from
        // nextAvail on are free: those the device has used and we reaped.
        if (broken || count > numFree) {
            return -1;
        }
        final int id = freeId;   // §2.8.21.1: the next free buffer id
        final int head = nextAvail;
        int headFlags = 0;
        long writableLength = 0;
        int i = head;
        int curr = id;
        int prev = id;
        for (int k = 0; k < count; k++) {
            long off = (long) DESC_SIZE * i;
            // §2.8.21.1: WRITE for a device-writable element, AVAIL = wrap counter, USED = its inverse; §2.8.6: NEXT on
            // all but the last; the note there: AVAIL/USED set right in every descriptor of the list.
            int flags = availFlags | (writable[k] ? DESC_F_WRITE : 0) | (k + 1 < count ? DESC_F_NEXT : 0);
            desc.set(U64, off + DESC_ADDR, addr[k]);
            desc.set(U32, off + DESC_LEN, len[k]);
            desc.set(S16, off + PACKED_DESC_ID, (short) id);   // §2.8.6: the last one's id counts; all carry it
            if (k == 0) {
                headFlags = flags;
            } else {
                desc.set(S16, off + PACKED_DESC_FLAGS, (short) flags);
            }
            if (writable[k]) {
                writableLength += len[k] & 0xffff_ffffL;
            }
            prev = curr;
            curr = nextId[curr];
            if (++i == size) {
                // §2.8.1: the Driver Ring Wrap Counter flips after the last descriptor of the ring.
                i = 0;
                availWrap = !availWrap;
                availFlags ^= AVAIL_USED;
            }
        }
        // §2.8.21.1.1 / §2.8.17: the head goes last, after a barrier: a release store orders every descriptor field
        // above (and the buffers' contents) before the flags that expose them (Linux: virtio_wmb()).
        U16.setRelease(desc, (long) DESC_SIZE * head + PACKED_DESC_FLAGS, (short) headFlags);
        return added(id, curr, prev, i, count, writableLength, tok);
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
        final int id = freeId;
        final int head = nextAvail;
        final long tableOff = (long) id * indirectEntries * DESC_SIZE;
        long writableLength = 0;
        for (int k = 0; k < count; k++) {
            long off = tableOff + (long) DESC_SIZE * k;
            // §2.8.7: table entries carry only WRITE (no NEXT, no AVAIL/USED; id unused).
            tables.set(U64, off + DESC_ADDR, addr[k]);
            tables.set(U32, off + DESC_LEN, len[k]);
            tables.set(S16, off + PACKED_DESC_ID, (short) 0);
            tables.set(S16, off + PACKED_DESC_FLAGS, (short) (writable[k] ? DESC_F_WRITE : 0));
            if (writable[k]) {
                writableLength += len[k] & 0xffff_ffffL;
            }
        }
        long off = (long) DESC_SIZE * head;
        desc.set(U64, off + DESC_ADDR, tablesAddr + tableOff);
        desc.set(U32, off + DESC_LEN, count * DESC_SIZE);
        desc.set(S16, off + PACKED_DESC_ID, (short) id);
        // §2.8.7 / §2.8.21.1.1: INDIRECT with the lap's AVAIL/USED, released after the table and the descriptor body.
        U16.setRelease(desc, off + PACKED_DESC_FLAGS, (short) (DESC_F_INDIRECT | availFlags));
        int n = head + 1;
        if (n == size) {
            n = 0;
            availWrap = !availWrap;
            availFlags ^= AVAIL_USED;
        }
        return added(id, nextId[id], id, n, 1, writableLength, tok);
    }

    private int added(int id, int newFreeId, int last, int newNextAvail, int descriptors, long writableLength,
            long tok) {
        freeId = newFreeId;
        stateNum[id] = descriptors;
        stateLast[id] = last;
        writableBytes[id] = writableLength;
        token[id] = tok;
        numFree -= descriptors;
        nextAvail = newNextAvail;
        numAdded += descriptors;
        inflight++;
        return id;
    }

    @Override
    public void publish() {
        // §2.8.21.1: a buffer is available once its head's flags are stored (done in add).
    }

    @Override
    public boolean kickPrepare() {
        final int n = numAdded;
        numAdded = 0;
        // §2.8.21.3.1: a full barrier between exposing the flags and reading the Device Area, else a device that is
        // just re-enabling notifications and re-checking the ring could miss both (Linux: virtio_mb()).
        VarHandle.fullFence();
        // §2.8.14: le16 off_wrap then le16 flags; one 32-bit load gives a consistent snapshot of both.
        final int event = deviceEvent.get(U32, EVENT_OFF_WRAP);
        final int flags = (event >>> 16) & 0x3;
        // §2.8.10: DESC is only valid with EVENT_IDX; without it (or for the reserved value 3) only DISABLE suppresses.
        if (flags != EVENT_FLAGS_DESC || !eventIdx) {
            return flags != EVENT_FLAGS_DISABLE;
        }
        if (n >= size) {
            return true;   // a whole lap since the last decision: the event descriptor was passed for sure
        }
        // §2.8.10 / §2.8.14: notify when descriptor off (in the lap of wrap) was made available among the n just added.
        // An offset from the previous lap lies size descriptors back (Linux: event_idx -= num when the wrap differs).
        final int offWrap = event & 0xffff;
        int eventDesc = offWrap & 0x7fff;
        if (((offWrap >>> EVENT_WRAP_SHIFT) != 0) != availWrap) {
            eventDesc -= size;
        }
        return EventIndex.needEvent(eventDesc, nextAvail, nextAvail - n);
    }

    /** §2.8.1: used = AVAIL and USED both equal to the Device Ring Wrap Counter. */
    @Override
    public boolean hasUsed() {
        final int flags = (short) U16.getAcquire(desc, (long) DESC_SIZE * nextUsed + PACKED_DESC_FLAGS) & 0xffff;
        return (flags & AVAIL_USED) == (usedWrap ? AVAIL_USED : 0);
    }

    @Override
    public boolean reap() {
        if (broken) {
            return false;
        }
        final long off = (long) DESC_SIZE * nextUsed;
        // §2.8.2 / §2.8.22: only the next used descriptor is polled. The acquire load pairs with the device's release
        // store of these flags (it writes them last), so id, len and the buffer's data read below are current (Linux:
        // virtio_rmb() after more_used_packed()).
        final int flags = (short) U16.getAcquire(desc, off + PACKED_DESC_FLAGS) & 0xffff;
        if ((flags & AVAIL_USED) != (usedWrap ? AVAIL_USED : 0)) {
            return false;
        }
        final int id = desc.get(S16, off + PACKED_DESC_ID) & 0xffff;
        long len = desc.get(U32, off + DESC_LEN) & 0xffff_ffffL;
        // §2.8.21.1 / §2.8.22: the id must be one we handed out and not yet got back; otherwise we cannot know how many
        // descriptors to skip (§2.8.6) and the ring cannot be followed any further.
        if (id >= size) {
            faults.record(DeviceFaults.ID_OUT_OF_RANGE, id, len, size);
            broken = true;
            return false;
        }
        final int count = stateNum[id];
        if (count == 0) {
            faults.record(DeviceFaults.ID_NOT_IN_FLIGHT, id, len, size);
            broken = true;
            return false;
        }
        if ((flags & DESC_F_WRITE) == 0) {
            len = 0;   // §2.8.3 / §2.8.4: without WRITE nothing was written and len is reserved
        } else if (len > writableBytes[id]) {
            // §2.8.4: len is what the device initialized of the buffer: never more than its writable part.
            faults.record(DeviceFaults.LENGTH_TOO_LONG, id, len, writableBytes[id]);
            len = writableBytes[id];
        }
        // Linux detach_buf_packed(): the ids this buffer consumed go back to the free list.
        stateNum[id] = 0;
        nextId[stateLast[id]] = freeId;
        freeId = id;
        numFree += count;
        inflight--;
        // §2.8.6: skip the buffer's descriptors; §2.8.1: the used wrap counter flips past the end of the ring.
        int n = nextUsed + count;
        if (n >= size) {
            n -= size;
            usedWrap = !usedWrap;
        }
        nextUsed = n;
        usedId = id;
        usedLen = (int) len;
        usedToken = token[id];
        usedDescriptors = count;
        // §2.8.10 / Linux: if we expect a notification for the next entry, tell the device where with off_wrap, and
        // flush that write before the next flags read (virtio_store_mb()).
        if (eventFlags == EVENT_FLAGS_DESC) {
            U16.set(driverEvent, EVENT_OFF_WRAP, (short) offWrap());
            VarHandle.fullFence();
        }
        return true;
    }

    private int offWrap() {
        return nextUsed | (usedWrap ? 1 << EVENT_WRAP_SHIFT : 0);
    }

    @Override
    public void disableCallbacks() {
        if (eventFlags != EVENT_FLAGS_DISABLE) {
            eventFlags = EVENT_FLAGS_DISABLE;   // §2.8.10: no used buffer notifications at all
            U16.set(driverEvent, EVENT_FLAGS, (short) eventFlags);
        }
    }

    @Override
    public void enableCallbacksPrepare() {
        if (eventIdx) {
            U16.set(driverEvent, EVENT_OFF_WRAP, (short) offWrap());
            // §2.8.10: off_wrap before the flags that make the device read it (Linux: virtio_wmb()).
            VarHandle.storeStoreFence();
        }
        if (eventFlags == EVENT_FLAGS_DISABLE) {
            eventFlags = eventIdx ? EVENT_FLAGS_DESC : EVENT_FLAGS_ENABLE;
            U16.set(driverEvent, EVENT_FLAGS, (short) eventFlags);
        }
    }

    @Override
    public boolean pollAfterEnable() {
        VarHandle.fullFence();   // Linux virtqueue_poll_packed(): virtio_mb() then check the next used descriptor
        return hasUsed();
    }

    @Override
    public String toString() {
        return "PackedDriverRing[size=" + size + ", nextAvail=" + nextAvail + (availWrap ? "/1" : "/0") + ", nextUsed="
                + nextUsed + (usedWrap ? "/1" : "/0") + ", free=" + numFree + (eventIdx ? ", event-idx" : "")
                + (indirect ? ", indirect" : "") + (broken ? ", broken" : "") + "]";
    }
}
