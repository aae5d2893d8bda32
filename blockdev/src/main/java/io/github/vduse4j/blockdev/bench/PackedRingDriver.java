package io.github.vduse4j.blockdev.bench;

import static io.github.vduse4j.ring.VirtioRing.*;

import io.github.vduse4j.ring.EventIndex;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The driver side of one packed virtqueue (virtio 1.2 §2.8) in {@link SharedMemory}: the descriptor ring, the
 * driver and device event suppression structures, a free list of buffer ids, and the avail/used wrap counters.
 *
 * <p>A buffer of n elements takes the next n descriptors of the ring and one free buffer id; the head's flags are
 * stored last with a release store, which makes the buffer available at once ({@link #publish()} only decides the
 * kick). The driver polls the next used descriptor with an acquire load, skips the used buffer's n descriptors and
 * frees its id. It keeps RING_EVENT_FLAGS_DISABLE in the driver event suppression structure (it busy-polls, as
 * {@link SplitRingDriver} sets VIRTQ_AVAIL_F_NO_INTERRUPT) and kicks as the device event suppression structure
 * asks: per descriptor with VIRTIO_F_EVENT_IDX (RING_EVENT_FLAGS_DESC), otherwise unless it says DISABLE.
 *
 * <p>Used descriptors are checked (buffer id in range and in flight, length within the writable part); see
 * {@link DriverRing} for what a fault does. One thread only; no allocation after construction.
 */
public final class PackedRingDriver implements DriverRing {
    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle()
            .withInvokeExactBehavior();
    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int AVAIL_USED = PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED;
    /** Bytes set aside for each event suppression structure: a cache line, so driver and device never share one. */
    private static final long EVENT_AREA_BYTES = 64;

    private final int size;
    private final boolean eventIdx;
    private final MemorySegment desc;
    private final MemorySegment driverEvent;
    private final MemorySegment deviceEvent;
    private final long descUaddr;
    private final long driverEventUaddr;
    private final long deviceEventUaddr;
    /** Free buffer ids, linked: nextFreeId[id] is the one after id. */
    private final int[] nextFreeId;
    /** Descriptors of the buffer with this id while it is in flight; 0 = the id is free. */
    private final int[] chainLength;
    /** Device-writable bytes of the buffer with this id (the bound of a used length, §2.8.4). */
    private final long[] writableBytes;
    private final DeviceFaults faults = new DeviceFaults("packed ring");
    private int freeId;
    private int numFree;
    private int nextAvail;
    private boolean availWrap;
    /** AVAIL/USED bits that make a descriptor available in the current lap (§2.8.1). */
    private int availFlags;
    private int nextUsed;
    private boolean usedWrap;
    /** Descriptors made available since the last {@link #publish()}. */
    private int added;
    private boolean broken;

    /**
     * A ring of {@code size} descriptors, its three parts carved out of {@code mem}.
     *
     * @param eventIdx VIRTIO_F_EVENT_IDX was negotiated: the device's RING_EVENT_FLAGS_DESC is honoured
     */
    public PackedRingDriver(SharedMemory mem, int size, boolean eventIdx) {
        // §2.8: up to 2^15 entries, any number; buffer ids are le16 and we hand out at most size of them.
        if (size < 1 || size > MAX_QUEUE_SIZE) {
            throw new IllegalArgumentException("packed ring size must be in [1, 32768]: " + size);
        }
        this.size = size;
        this.eventIdx = eventIdx;
        // §2.8.10.1: descriptor ring 16-aligned, event suppression structures 4-aligned.
        long d = mem.allocate(descTableBytes(size), 4096);
        long drv = mem.allocate(EVENT_AREA_BYTES, EVENT_AREA_BYTES);
        long dev = mem.allocate(EVENT_AREA_BYTES, EVENT_AREA_BYTES);
        this.desc = mem.segment().asSlice(d, descTableBytes(size));
        this.driverEvent = mem.segment().asSlice(drv, EVENT_SUPPRESSION_BYTES);
        this.deviceEvent = mem.segment().asSlice(dev, EVENT_SUPPRESSION_BYTES);
        this.descUaddr = mem.uaddrOf(d);
        this.driverEventUaddr = mem.uaddrOf(drv);
        this.deviceEventUaddr = mem.uaddrOf(dev);
        this.nextFreeId = new int[size];
        this.chainLength = new int[size];
        this.writableBytes = new long[size];
        reset();
    }

    @Override
    public void reset() {
        desc.fill((byte) 0);   // §2.8.13: the descriptor ring is zero-initialized
        deviceEvent.fill((byte) 0);
        for (int i = 0; i < size; i++) {
            nextFreeId[i] = i + 1;
        }
        Arrays.fill(chainLength, 0);
        freeId = 0;
        numFree = size;
        nextAvail = 0;
        nextUsed = 0;
        availWrap = usedWrap = true;   // §2.8.1: both wrap counters start at 1
        availFlags = PACKED_DESC_F_AVAIL;
        added = 0;
        broken = false;
        faults.clear();
        // §2.8.10 / §2.8.22: we poll the ring, so the device is asked for no used buffer notifications at all.
        driverEvent.set(U32, EVENT_OFF_WRAP, EVENT_FLAGS_DISABLE << 16);
    }

    @Override public boolean packed() { return true; }
    @Override public int size() { return size; }
    /** The descriptor ring. */
    @Override public long descAddress() { return descUaddr; }
    /** The driver event suppression structure (the Driver Area, §2.8). */
    @Override public long driverAreaAddress() { return driverEventUaddr; }
    /** The device event suppression structure (the Device Area, §2.8). */
    @Override public long deviceAreaAddress() { return deviceEventUaddr; }
    @Override public int freeDescriptors() { return numFree; }
    @Override public boolean broken() { return broken; }
    @Override public long deviceFaults() { return faults.count(); }
    @Override public String firstDeviceFault() { return faults.describe(); }
    public boolean eventIdx() { return eventIdx; }
    /** The next descriptor the driver fills. */
    public int nextAvail() { return nextAvail; }
    /** The Driver Ring Wrap Counter (§2.8.1). */
    public boolean availWrapCounter() { return availWrap; }
    /** The next descriptor the driver expects a used buffer in. */
    public int nextUsed() { return nextUsed; }
    /** The driver's copy of the Device Ring Wrap Counter at {@link #nextUsed()} (§2.8.1). */
    public boolean usedWrapCounter() { return usedWrap; }

    @Override
    public int vringBase() {
        return base(nextAvail, availWrap, nextUsed, usedWrap);
    }

    /** The vhost-user SET_VRING_BASE value of a packed ring: avail idx | wrap &lt;&lt; 15, used likewise &lt;&lt; 16. */
    public static int base(int availIndex, boolean availWrap, int usedIndex, boolean usedWrap) {
        int a = (availIndex & 0x7fff) | (availWrap ? 0x8000 : 0);
        int u = (usedIndex & 0x7fff) | (usedWrap ? 0x8000 : 0);
        return a | u << 16;
    }

    @Override
    public int add(long[] addr, int[] len, boolean[] writable, int count) {
        // §2.8.17: the whole list must fit before its first descriptor is made available, and no list is longer than
        // the queue size. numFree descriptors from nextAvail on are free: those the device has used and we polled.
        if (broken || count < 1 || count > numFree) {
            return -1;
        }
        final int id = freeId;   // §2.8.21.1: the next free buffer id
        final int head = nextAvail;
        int headFlags = 0;
        long writableLength = 0;
        int i = head;
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
            if (++i == size) {
                // §2.8.1: the Driver Ring Wrap Counter flips after the last descriptor of the ring.
                i = 0;
                availWrap = !availWrap;
                availFlags ^= AVAIL_USED;
            }
        }
        // §2.8.21.1.1 (Updating flags) / §2.8.17: the head goes last, after a barrier: a release store orders every
        // descriptor field above (and the request's header and data) before the flags that expose them.
        U16.setRelease(desc, (long) DESC_SIZE * head + PACKED_DESC_FLAGS, (short) headFlags);
        freeId = nextFreeId[id];
        chainLength[id] = count;
        writableBytes[id] = writableLength;
        numFree -= count;
        nextAvail = i;
        added += count;
        return id;
    }

    /**
     * Buffers are available as soon as {@link #add} returns; this decides whether the device must be kicked for
     * those added since the last call (§2.8.21.2, Linux {@code virtqueue_kick_prepare_packed}).
     */
    @Override
    public boolean publish() {
        final int n = added;
        if (n == 0) {
            return false;
        }
        added = 0;
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

    @Override
    public int poll(int[] ids, int[] lens, int max) {
        int n = 0;
        while (n < max && !broken) {
            final long off = (long) DESC_SIZE * nextUsed;
            // §2.8.2 / §2.8.22: only the next used descriptor is polled. The acquire load pairs with the device's
            // release store of these flags (it writes them last), so id, len and the buffer's data read below are
            // current (Linux: virtio_rmb() after more_used_packed()).
            final int flags = (short) U16.getAcquire(desc, off + PACKED_DESC_FLAGS) & 0xffff;
            // §2.8.1: used = AVAIL and USED both equal to the Device Ring Wrap Counter.
            if ((flags & AVAIL_USED) != (usedWrap ? AVAIL_USED : 0)) {
                break;
            }
            final int id = desc.get(S16, off + PACKED_DESC_ID) & 0xffff;
            long len = desc.get(U32, off + DESC_LEN) & 0xffff_ffffL;
            // §2.8.21.1 / §2.8.22: the id must be one we handed out and not yet got back; otherwise we cannot know how
            // many descriptors to skip (§2.8.6) and the ring cannot be followed any further.
            if (id >= size) {
                faults.record(DeviceFaults.ID_OUT_OF_RANGE, id, len, size);
                broken = true;
                break;
            }
            final int count = chainLength[id];
            if (count == 0) {
                faults.record(DeviceFaults.ID_NOT_IN_FLIGHT, id, len, size);
                broken = true;
                break;
            }
            if ((flags & DESC_F_WRITE) == 0) {
                len = 0;   // §2.8.3 / §2.8.4: without WRITE nothing was written and len is reserved
            } else if (len > writableBytes[id]) {
                // §2.8.4: len is what the device initialized of the buffer: never more than its writable part.
                faults.record(DeviceFaults.LENGTH_TOO_LONG, id, len, writableBytes[id]);
                len = writableBytes[id];
            }
            chainLength[id] = 0;
            nextFreeId[id] = freeId;
            freeId = id;
            numFree += count;
            // §2.8.6: skip the buffer's descriptors; §2.8.1: the used wrap counter flips past the end of the ring.
            int next = nextUsed + count;
            if (next >= size) {
                next -= size;
                usedWrap = !usedWrap;
            }
            nextUsed = next;
            ids[n] = id;
            lens[n] = (int) len;
            n++;
        }
        return n;
    }

    @Override
    public String toString() {
        return "PackedRingDriver[size=" + size + ", nextAvail=" + nextAvail + (availWrap ? "/1" : "/0") + ", nextUsed="
                + nextUsed + (usedWrap ? "/1" : "/0") + ", free=" + numFree + (eventIdx ? ", event-idx" : "")
                + (broken ? ", broken" : "") + "]";
    }
}
