package io.github.vduse4j.blockdev.bench;

import static io.github.vduse4j.ring.VirtioRing.*;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The driver side of one split virtqueue (virtio 1.2 §2.7) in {@link SharedMemory}: a descriptor free list,
 * the available ring with its index shadow, and used-ring polling. Without EVENT_IDX: the driver sets
 * VIRTQ_AVAIL_F_NO_INTERRUPT (it busy-polls the used ring) and kicks only when the device has not set
 * VIRTQ_USED_F_NO_NOTIFY. Used elements are checked (head in range and in flight, length within the writable
 * part, used index not ahead of what is in flight); see {@link DriverRing} for what a fault does. One thread only;
 * no allocation after construction.
 */
public final class SplitRingDriver implements DriverRing {
    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle()
            .withInvokeExactBehavior();
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int size;
    private final int mask;
    private final MemorySegment desc;
    private final MemorySegment avail;
    private final MemorySegment used;
    private final long descUaddr;
    private final long availUaddr;
    private final long usedUaddr;
    private final int[] nextFree;
    private final int[] chainLength;
    private final long[] writableBytes;
    private final DeviceFaults faults = new DeviceFaults("split ring");
    private int freeHead;
    private int inflight;
    private boolean broken;
    private int numFree;
    private int availIdx;
    private int publishedAvail;
    private int lastUsed;

    /** A ring of {@code size} descriptors (a power of two, §2.7), its three parts carved out of {@code mem}. */
    public SplitRingDriver(SharedMemory mem, int size) {
        if (size < 1 || size > MAX_QUEUE_SIZE || Integer.bitCount(size) != 1) {
            throw new IllegalArgumentException("split ring size must be a power of two: " + size);
        }
        this.size = size;
        this.mask = size - 1;
        long d = mem.allocate(descTableBytes(size), 4096);
        long a = mem.allocate(availRingBytes(size), 4096);
        long u = mem.allocate(usedRingBytes(size), 4096);
        this.desc = mem.segment().asSlice(d, descTableBytes(size));
        this.avail = mem.segment().asSlice(a, availRingBytes(size));
        this.used = mem.segment().asSlice(u, usedRingBytes(size));
        this.descUaddr = mem.uaddrOf(d);
        this.availUaddr = mem.uaddrOf(a);
        this.usedUaddr = mem.uaddrOf(u);
        this.nextFree = new int[size];
        this.chainLength = new int[size];
        this.writableBytes = new long[size];
        reset();
    }

    /** Empties the ring (fresh indexes 0) for a new start. */
    @Override
    public void reset() {
        desc.fill((byte) 0);
        avail.fill((byte) 0);
        used.fill((byte) 0);
        for (int i = 0; i < size; i++) {
            nextFree[i] = i + 1;
        }
        Arrays.fill(chainLength, 0);
        freeHead = 0;
        numFree = size;
        inflight = 0;
        broken = false;
        faults.clear();
        availIdx = publishedAvail = lastUsed = 0;
        // §2.7.7: we poll the used ring, so ask the device not to interrupt us.
        U16.set(avail, AVAIL_FLAGS, (short) AVAIL_F_NO_INTERRUPT);
    }

    @Override public boolean packed() { return false; }
    @Override public int size() { return size; }
    @Override public long descAddress() { return descUaddr; }
    /** The available ring (the Driver Area). */
    @Override public long driverAreaAddress() { return availUaddr; }
    /** The used ring (the Device Area). */
    @Override public long deviceAreaAddress() { return usedUaddr; }
    @Override public int vringBase() { return availIdx; }
    @Override public int freeDescriptors() { return numFree; }
    @Override public boolean broken() { return broken; }
    @Override public long deviceFaults() { return faults.count(); }
    @Override public String firstDeviceFault() { return faults.describe(); }
    /** The used index the device published. */
    public int usedIndexInRing() { return (short) U16.getAcquire(used, USED_IDX) & 0xffff; }

    /**
     * Adds a chain of {@code count} buffers ({@code addr}/{@code len}/{@code writable}, readable first) to the
     * available ring, unpublished until {@link #publish()}. Returns the head, or -1 if descriptors are short.
     */
    @Override
    public int add(long[] addr, int[] len, boolean[] writable, int count) {
        if (broken || count < 1 || count > numFree) {
            return -1;
        }
        int head = freeHead;
        int i = head;
        long writableLength = 0;
        for (int k = 0; k < count; k++) {
            if (writable[k]) {
                writableLength += len[k] & 0xffff_ffffL;
            }
            long off = (long) DESC_SIZE * i;
            int next = nextFree[i];
            int flags = (writable[k] ? DESC_F_WRITE : 0) | (k + 1 < count ? DESC_F_NEXT : 0);
            desc.set(U64, off + DESC_ADDR, addr[k]);
            desc.set(U32, off + DESC_LEN, len[k]);
            desc.set(S16, off + DESC_FLAGS, (short) flags);
            desc.set(S16, off + DESC_NEXT, (short) (k + 1 < count ? next : 0));
            if (k + 1 < count) {
                i = next;
            } else {
                freeHead = next;
            }
        }
        numFree -= count;
        chainLength[head] = count;
        writableBytes[head] = writableLength;
        inflight++;
        avail.set(S16, AVAIL_RING + 2L * (availIdx & mask), (short) head);
        availIdx = (availIdx + 1) & 0xffff;
        return head;
    }

    /**
     * Makes added chains visible (§2.7.13.3: a release store of idx after the ring entries and descriptors) and
     * returns whether the device must be kicked (§2.7.10: after a full fence, VIRTQ_USED_F_NO_NOTIFY clear).
     */
    @Override
    public boolean publish() {
        if (availIdx == publishedAvail) {
            return false;
        }
        U16.setRelease(avail, AVAIL_IDX, (short) availIdx);
        publishedAvail = availIdx;
        VarHandle.fullFence(); // Linux virtqueue_kick_prepare_split: virtio_mb() before reading used->flags
        return ((short) U16.get(used, USED_FLAGS) & USED_F_NO_NOTIFY) == 0;
    }

    /**
     * Takes up to {@code max} used elements: ids into {@code ids}, written lengths into {@code lens}; frees
     * their descriptors. Returns how many.
     */
    @Override
    public int poll(int[] ids, int[] lens, int max) {
        if (broken) {
            return 0;
        }
        int idx = (short) U16.getAcquire(used, USED_IDX) & 0xffff; // §2.7.14: acquire pairs with the device's release
        // §2.7.8: the device adds one used element per buffer it was given; an index further ahead than the buffers
        // in flight points at elements it never wrote.
        int pending = (idx - lastUsed) & 0xffff;
        if (pending > inflight) {
            faults.record(DeviceFaults.USED_INDEX_JUMP, -1, pending, inflight);
            broken = true;
            return 0;
        }
        int n = 0;
        while (lastUsed != idx && n < max) {
            long off = USED_RING + (long) USED_ELEM_SIZE * (lastUsed & mask);
            int id = used.get(U32, off);
            long len = used.get(U32, off + 4) & 0xffff_ffffL;
            // §2.7.8: id is the head of a chain the driver made available and the device has not used yet;
            // anything else leaves the free list unaccountable.
            if (id < 0 || id >= size) {
                faults.record(DeviceFaults.ID_OUT_OF_RANGE, id, len, size);
                broken = true;
                break;
            }
            if (chainLength[id] == 0) {
                faults.record(DeviceFaults.ID_NOT_IN_FLIGHT, id, len, size);
                broken = true;
                break;
            }
            lastUsed = (lastUsed + 1) & 0xffff;
            // §2.7.8.1: the device writes at least len bytes into the writable part, so len cannot exceed it.
            if (len > writableBytes[id]) {
                faults.record(DeviceFaults.LENGTH_TOO_LONG, id, len, writableBytes[id]);
                len = writableBytes[id];
            }
            // give the chain back to the free list
            int last = id;
            for (int k = 1; k < chainLength[id]; k++) {
                last = nextFree[last];
            }
            nextFree[last] = freeHead;
            freeHead = id;
            numFree += chainLength[id];
            chainLength[id] = 0;
            inflight--;
            ids[n] = id;
            lens[n] = (int) len;
            n++;
        }
        return n;
    }
}
