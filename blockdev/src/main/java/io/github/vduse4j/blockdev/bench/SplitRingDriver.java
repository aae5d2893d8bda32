package io.github.vduse4j.blockdev.bench;

import static io.github.vduse4j.ring.VirtioRing.*;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The driver side of one split virtqueue (virtio 1.2 §2.7) in {@link SharedMemory}: a descriptor free list,
 * the available ring with its index shadow, and used-ring polling. Without EVENT_IDX: the driver sets
 * VIRTQ_AVAIL_F_NO_INTERRUPT (it busy-polls the used ring) and kicks only when the device has not set
 * VIRTQ_USED_F_NO_NOTIFY. One thread only; no allocation after construction.
 */
public final class SplitRingDriver {
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
    private int freeHead;
    private int numFree;
    private int availIdx;
    private int publishedAvail;
    private int lastUsed;

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
        reset();
    }

    /** Empties the ring (fresh indexes 0) for a new start. */
    public void reset() {
        desc.fill((byte) 0);
        avail.fill((byte) 0);
        used.fill((byte) 0);
        for (int i = 0; i < size; i++) {
            nextFree[i] = i + 1;
        }
        freeHead = 0;
        numFree = size;
        availIdx = publishedAvail = lastUsed = 0;
        // §2.7.7: we poll the used ring, so ask the device not to interrupt us.
        U16.set(avail, AVAIL_FLAGS, (short) AVAIL_F_NO_INTERRUPT);
    }

    public int size() { return size; }
    public long descAddress() { return descUaddr; }
    public long availAddress() { return availUaddr; }
    public long usedAddress() { return usedUaddr; }
    public int freeDescriptors() { return numFree; }
    /** The driver's next avail index (what it would tell a new back-end after a restart). */
    public int availIndex() { return availIdx; }
    /** The used index the device published. */
    public int usedIndexInRing() { return (short) U16.getAcquire(used, USED_IDX) & 0xffff; }

    /**
     * Adds a chain of {@code count} buffers ({@code addr}/{@code len}/{@code writable}, readable first) to the
     * available ring, unpublished until {@link #publish()}. Returns the head, or -1 if descriptors are short.
     */
    public int add(long[] addr, int[] len, boolean[] writable, int count) {
        if (count < 1 || count > numFree) {
            return -1;
        }
        int head = freeHead;
        int i = head;
        for (int k = 0; k < count; k++) {
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
        avail.set(S16, AVAIL_RING + 2L * (availIdx & mask), (short) head);
        availIdx = (availIdx + 1) & 0xffff;
        return head;
    }

    /**
     * Makes added chains visible (§2.7.13.3: a release store of idx after the ring entries and descriptors) and
     * returns whether the device must be kicked (§2.7.10: after a full fence, VIRTQ_USED_F_NO_NOTIFY clear).
     */
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
    public int poll(int[] ids, int[] lens, int max) {
        int idx = (short) U16.getAcquire(used, USED_IDX) & 0xffff; // §2.7.14: acquire pairs with the device's release
        int n = 0;
        while (lastUsed != idx && n < max) {
            long off = USED_RING + (long) USED_ELEM_SIZE * (lastUsed & mask);
            int id = used.get(U32, off);
            int len = used.get(U32, off + 4);
            lastUsed = (lastUsed + 1) & 0xffff;
            if (id < 0 || id >= size || chainLength[id] == 0) {
                throw new IllegalStateException("device returned unknown descriptor id " + id);
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
            ids[n] = id;
            lens[n] = len;
            n++;
        }
        return n;
    }
}
