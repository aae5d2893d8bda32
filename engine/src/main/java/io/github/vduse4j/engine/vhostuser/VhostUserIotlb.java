package io.github.vduse4j.engine.vhostuser;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;

import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.Translation;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The device IOTLB of a vhost-user connection with VIRTIO_F_IOMMU_PLATFORM (spec "IOMMU support"): IOVA ranges
 * the frontend pushed with {@code IOTLB_MSG} UPDATE, each resolved at once to the memory-table region behind its
 * user address. Pollers translate through an immutable sorted snapshot (one volatile read, a binary search, no
 * allocation). A miss sends {@code BACKEND_IOTLB_MSG} MISS on the backend channel and waits, bounded, for the
 * UPDATE; an INVALIDATE publishes a snapshot without the range and the caller waits for a grace period
 * ({@link QueueQuiescence}) before acknowledging.
 *
 * <p>Unlike VDUSE, entries are slices of the memory table's mappings, so nothing is unmapped here: the memory
 * stays mapped until the memory table changes, which stops the queues first.
 */
final class VhostUserIotlb implements GuestMemory {
    /** IOVAs {@code [start, last]} at {@code segment} (which begins at {@code start}) with READ/WRITE bits. */
    record Entry(long start, long last, int access, MemorySegment segment) {
        boolean overlaps(long s, long l) {
            return Long.compareUnsigned(start, l) <= 0 && Long.compareUnsigned(s, last) <= 0;
        }
    }

    private static final Entry[] EMPTY = new Entry[0];
    /** Bound on one miss (QEMU answers in microseconds; a hostile or dead frontend must not hang a queue). */
    static final int MISS_TIMEOUT_MILLIS = 5000;
    /** Bound on entries (a frontend could otherwise grow the table without limit). */
    static final int MAX_ENTRIES = 8192;

    private final Object monitor = new Object();
    private volatile Entry[] table = EMPTY;
    private volatile BackendChannel channel;
    private volatile long misses;

    void channel(BackendChannel c) {
        channel = c;
    }

    int size() {
        return table.length;
    }

    long misses() {
        return misses;
    }

    @Override
    public boolean translate(long addr, long len, int access, Translation out) {
        if (len <= 0) {
            return false;
        }
        Entry e = find(table, addr);
        if (e == null || (e.access & access) != access) {
            e = miss(addr, access);
            if (e == null) {
                return false;
            }
        }
        out.segment = e.segment;
        out.offset = addr - e.start;
        long avail = e.last - addr + 1; // may overflow only for a 2^64 entry
        out.length = (avail <= 0 || avail > len) ? len : avail;
        return true;
    }

    private static Entry find(Entry[] t, long addr) {
        int lo = 0;
        int hi = t.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            Entry m = t[mid];
            if (Long.compareUnsigned(addr, m.start) < 0) {
                hi = mid - 1;
            } else if (Long.compareUnsigned(addr, m.last) > 0) {
                lo = mid + 1;
            } else {
                return m;
            }
        }
        return null;
    }

    /** Poller thread: asks the frontend and waits for the UPDATE. The control thread never waits here. */
    private Entry miss(long addr, int access) {
        QueueQuiescence q = QueueQuiescence.current();
        BackendChannel c = channel;
        if (q == null || c == null) {
            return null;
        }
        misses++;
        int perm = ((access & READ) != 0 ? ACCESS_RO : 0) | ((access & WRITE) != 0 ? ACCESS_WO : 0);
        q.missWaiting(true);
        try {
            long deadline = System.nanoTime() + MISS_TIMEOUT_MILLIS * 1_000_000L;
            int sent = c.iotlbMiss(addr, perm, MISS_TIMEOUT_MILLIS);
            if (sent == BackendChannel.FAILED) {
                failedMiss(addr, perm, "no answer on the backend channel");
                return null;
            }
            boolean answered = sent != BackendChannel.SENT; // with REPLY_ACK the UPDATE came before the answer
            synchronized (monitor) {
                while (true) {
                    Entry e = find(table, addr);
                    if (e != null && (e.access & access) == access) {
                        return e;
                    }
                    long left = (deadline - System.nanoTime()) / 1_000_000L;
                    if (answered || left <= 0) {
                        // the frontend answered without an entry (the IOVA is not mapped), or never did
                        failedMiss(addr, perm, answered ? "answered without an UPDATE" : "timed out");
                        return null;
                    }
                    monitor.wait(Math.min(left, 50));
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        } finally {
            q.missWaiting(false);
        }
    }

    private volatile int failedMisses;

    private void failedMiss(long addr, int perm, String why) {
        int n = ++failedMisses;
        if (n <= 10 || Integer.bitCount(n) == 1) {
            System.err.printf("vduse4j: vhost-user: IOTLB miss for iova 0x%x perm %d failed (%s; %d so far)%n",
                    addr, perm, why, n);
        }
    }

    /**
     * IOTLB UPDATE (control thread): maps {@code [iova, iova + size)} to user address {@code uaddr}.
     *
     * @return null, or why the update is refused
     */
    String update(long iova, long size, long uaddr, int perm, VhostUserMemory memory) {
        // Spec "IOMMU support": "Addresses and size must be within vhost memory regions".
        if (size <= 0 || Long.compareUnsigned(iova + size - 1, iova) < 0 || Long.compareUnsigned(uaddr + size - 1, uaddr) < 0) {
            return String.format("IOTLB update iova 0x%x size 0x%x wraps or is empty", iova, size);
        }
        int access = ((perm & ACCESS_RO) != 0 ? READ : 0) | ((perm & ACCESS_WO) != 0 ? WRITE : 0);
        if (access == 0 || (perm & ~(ACCESS_RO | ACCESS_WO)) != 0) {
            return "IOTLB update with permission " + perm;
        }
        List<Entry> pieces = new ArrayList<>();
        Translation t = new Translation();
        long done = 0;
        while (done < size) {
            if (!memory.userAddresses().translate(uaddr + done, size - done, access, t)) {
                return String.format("IOTLB update uaddr 0x%x (+0x%x) is outside the memory table", uaddr + done, size - done);
            }
            pieces.add(new Entry(iova + done, iova + done + t.length - 1, access, t.segment.asSlice(t.offset, t.length)));
            done += t.length;
        }
        synchronized (monitor) {
            List<Entry> next = new ArrayList<>(pieces.size() + table.length);
            for (Entry e : table) {
                if (!e.overlaps(iova, iova + size - 1)) {
                    next.add(e);
                }
            }
            if (next.size() + pieces.size() > MAX_ENTRIES) {
                return "IOTLB holds " + MAX_ENTRIES + " entries already";
            }
            next.addAll(pieces);
            publish(next);
            monitor.notifyAll();
        }
        return null;
    }

    /** IOTLB INVALIDATE (control thread): drops every entry overlapping the range; returns how many. */
    int invalidate(long iova, long size) {
        // A whole-space flush arrives with size 0: QEMU sends addr_mask + 1, which overflows for 2^64 (Linux's
        // lazy-mode global device-IOTLB flush). Linux vhost computes last = iova + size - 1 the same wrapping way.
        long last = iova + size - 1;
        if (size == 0 || Long.compareUnsigned(last, iova) < 0) {
            last = -1L; // to the end of the address space
        }
        synchronized (monitor) {
            List<Entry> next = new ArrayList<>(table.length);
            for (Entry e : table) {
                if (!e.overlaps(iova, last)) {
                    next.add(e);
                }
            }
            int dropped = table.length - next.size();
            publish(next);
            return dropped;
        }
    }

    /** Forgets everything (memory table change, reset, disconnect; queues stopped). */
    void clear() {
        synchronized (monitor) {
            table = EMPTY;
        }
    }

    private void publish(List<Entry> entries) {
        Entry[] t = entries.toArray(EMPTY);
        Arrays.sort(t, (a, b) -> Long.compareUnsigned(a.start, b.start));
        table = t;
    }
}
