package io.github.vduse4j.engine.vhostuser;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;
import static io.github.vduse4j.ring.GuestMemory.READ;
import static io.github.vduse4j.ring.GuestMemory.WRITE;

import io.github.vduse4j.engine.IovaTable;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.Translation;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The device IOTLB of a vhost-user connection with VIRTIO_F_IOMMU_PLATFORM (spec "IOMMU support").
 *
 * <p><b>Translations live for one batch.</b> A queue translates through its own {@link View}: the entries it
 * obtained by its own IOTLB misses since it last published used entries. Publishing ends that lifetime (the
 * {@link VringQueue} calls {@link View#newBatch()}), so the next request misses again and gets the frontend's
 * current translation. Caching longer is wrong in practice: QEMU 7.2's intel-iommu tells a vhost back-end only
 * about unmaps its own shadow page walk saw (it walks the guest page table at every guest IOTLB flush and sends
 * UNMAP only for pages it found mapped in an earlier walk). Linux maps every request's buffers and indirect table
 * afresh and unmaps them on completion, usually between two flushes, so those IOVAs are never invalidated; the
 * guest then reuses them for other pages and a cached translation reads or writes freed guest memory (seen as
 * misses on kernel-virtual "addresses": SLUB free pointers in a freed indirect table). Within a batch the cache
 * is sound: a driver does not unmap the buffers of a request before the device has published it used.
 *
 * <p>The shared table only carries the frontend's UPDATEs to the queue that is waiting for them: a miss accepts
 * an entry only if it arrived after the miss was sent. INVALIDATE (and any removal) marks entries invalid, which
 * views check on every lookup; the caller of {@link #invalidate} then waits for a grace period
 * ({@link QueueQuiescence}) before acknowledging. Ring translations are the exception: rings are resolved once
 * when a queue starts and stay pinned while it runs (a driver keeps its rings mapped while the device runs).
 *
 * <p>Entries are slices of the memory table's mappings, so nothing is unmapped here: the memory stays mapped
 * until the memory table changes, which stops the queues first.
 */
final class VhostUserIotlb {
    /** IOVAs {@code [start, last]} at {@code segment} (which begins at {@code start}) with READ/WRITE bits. */
    static final class Entry {
        final long start;
        final long last;
        final int access;
        final long uaddr;
        final MemorySegment segment;
        /** Order of arrival: a miss only accepts entries newer than itself. */
        final long seq;
        /** Cleared when the entry leaves the table (invalidated, replaced, evicted, forgotten). */
        volatile boolean valid = true;

        Entry(long start, long last, int access, long uaddr, MemorySegment segment, long seq) {
            this.start = start;
            this.last = last;
            this.access = access;
            this.uaddr = uaddr;
            this.segment = segment;
            this.seq = seq;
        }

        boolean overlaps(long s, long l) {
            return Long.compareUnsigned(start, l) <= 0 && Long.compareUnsigned(s, last) <= 0;
        }

        boolean covers(long addr) {
            return Long.compareUnsigned(addr, start) >= 0 && Long.compareUnsigned(addr, last) <= 0;
        }
    }

    /** Bound on one miss (QEMU answers in microseconds; a hostile or dead frontend must not hang a queue). */
    static final int MISS_TIMEOUT_MILLIS = 5000;
    /** Bound on the shared table (a frontend could otherwise grow it without limit); the oldest entries go first. */
    static final int MAX_ENTRIES = 1024;
    /** Entries one view remembers within a batch (a request needs a few; more than this are missed again). */
    static final int VIEW_ENTRIES = 64;
    /** Debugging aid: {@code -Dvduse4j.vhostuser.iotlbTrace=true} logs every IOTLB message, miss and translation. */
    static final boolean TRACE = Boolean.getBoolean("vduse4j.vhostuser.iotlbTrace");

    private final Object monitor = new Object();
    private volatile IovaTable<Entry> table = IovaTable.empty();
    /** Sequence number of the newest entry (control thread writes under the monitor). */
    private volatile long seq;
    private volatile BackendChannel channel;
    private volatile long misses;
    private volatile int failedMisses;

    static void trace(String fmt, Object... args) {
        System.err.println("vduse4j-iotlb " + System.nanoTime() / 1000 + " " + Thread.currentThread().getName() + " "
                + String.format(fmt, args));
    }

    void channel(BackendChannel c) {
        channel = c;
    }

    long misses() {
        return misses;
    }

    /** A per-queue view; translates only on the queue's poller thread (misses block it). */
    View view(QueueQuiescence quiescence) {
        return new View(quiescence);
    }

    /**
     * What one queue translates through: entries of its own misses since its last publication (see the class
     * comment). Poller thread only; no allocation and no locks unless it misses.
     */
    final class View implements GuestMemory {
        private final QueueQuiescence quiescence;
        private final Entry[] entries = new Entry[VIEW_ENTRIES];
        private int count;
        private int next; // replacement slot once full

        private View(QueueQuiescence quiescence) {
            this.quiescence = quiescence;
        }

        @Override
        public boolean translate(long addr, long len, int access, Translation out) {
            if (len <= 0) {
                return false;
            }
            Entry e = null;
            for (int i = count - 1; i >= 0; i--) { // newest first: a request's pages were missed together
                Entry c = entries[i];
                if (c.covers(addr) && (c.access & access) == access && c.valid) {
                    e = c;
                    break;
                }
            }
            if (e == null) {
                e = miss(addr, access, quiescence);
                if (e == null) {
                    return false;
                }
                remember(e);
            }
            if (TRACE) {
                trace("T iova=0x%x len=%d acc=%d -> entry [0x%x,0x%x] uaddr=0x%x", addr, len, access, e.start, e.last,
                        e.uaddr + (addr - e.start));
            }
            out.segment = e.segment;
            out.offset = addr - e.start;
            long avail = e.last - addr + 1; // may overflow only for a 2^64 entry
            out.length = (avail <= 0 || avail > len) ? len : avail;
            return true;
        }

        private void remember(Entry e) {
            if (count < entries.length) {
                entries[count++] = e;
            } else {
                entries[next] = e;
                next = (next + 1) % entries.length;
            }
        }

        /**
         * Ends the batch: the device has published used entries, so the driver may unmap (and reuse) every IOVA
         * translated so far. Poller thread.
         */
        void newBatch() {
            if (count > 0) {
                Arrays.fill(entries, 0, count, null);
                count = 0;
                next = 0;
            }
        }
    }

    /**
     * Poller thread: asks the frontend (BACKEND_IOTLB_MSG MISS) and waits, bounded, for an UPDATE covering
     * {@code addr} that arrived after the question. The control thread never waits here (it applies the UPDATE).
     */
    private Entry miss(long addr, int access, QueueQuiescence q) {
        BackendChannel c = channel;
        if (c == null || !q.isPollerThread()) {
            failedMiss(addr, 0, c == null ? "no backend channel (SET_BACKEND_REQ_FD)" : "not on the queue's thread");
            return null;
        }
        misses++;
        int perm = ((access & READ) != 0 ? ACCESS_RO : 0) | ((access & WRITE) != 0 ? ACCESS_WO : 0);
        if (TRACE) {
            trace("M iova=0x%x perm=%d", addr, perm);
        }
        long since = seq; // only an UPDATE applied after this point answers the question
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
                    Entry e = table.find(addr);
                    if (e != null && e.seq > since && (e.access & access) == access && e.valid) {
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
        if (TRACE) {
            trace("U iova=0x%x size=0x%x uaddr=0x%x perm=%d", iova, size, uaddr, perm);
        }
        List<long[]> pieces = new ArrayList<>();
        List<MemorySegment> slices = new ArrayList<>();
        Translation t = new Translation();
        long done = 0;
        while (done < size) {
            if (!memory.userAddresses().translate(uaddr + done, size - done, access, t)) {
                return String.format("IOTLB update uaddr 0x%x (+0x%x) is outside the memory table", uaddr + done, size - done);
            }
            if (pieces.size() == MAX_ENTRIES) {
                return "IOTLB update spans more than " + MAX_ENTRIES + " memory regions";
            }
            pieces.add(new long[] {iova + done, iova + done + t.length - 1, uaddr + done});
            slices.add(t.segment.asSlice(t.offset, t.length));
            done += t.length;
        }
        synchronized (monitor) {
            long s = seq + 1;
            List<Entry> next = new ArrayList<>(pieces.size() + table.size());
            for (Entry e : table.entries()) {
                if (e.overlaps(iova, iova + size - 1)) {
                    e.valid = false; // replaced
                } else {
                    next.add(e);
                }
            }
            if (next.size() + pieces.size() > MAX_ENTRIES) {
                // the oldest entries have long been used by the misses that asked for them
                next.sort((a, b) -> Long.compare(a.seq, b.seq));
                List<Entry> old = next.subList(0, next.size() + pieces.size() - MAX_ENTRIES);
                old.forEach(e -> e.valid = false);
                old.clear();
            }
            for (int i = 0; i < pieces.size(); i++) {
                long[] p = pieces.get(i);
                next.add(new Entry(p[0], p[1], access, p[2], slices.get(i), s));
            }
            publish(next);
            seq = s;
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
            List<Entry> next = new ArrayList<>(table.size());
            for (Entry e : table.entries()) {
                if (e.overlaps(iova, last)) {
                    e.valid = false;
                } else {
                    next.add(e);
                }
            }
            int dropped = table.size() - next.size();
            if (TRACE) {
                trace("I iova=0x%x size=0x%x dropped=%d", iova, size, dropped);
            }
            publish(next);
            return dropped;
        }
    }

    /** Forgets everything (memory table change, features, reset, disconnect). */
    void clear() {
        if (TRACE) {
            trace("C");
        }
        synchronized (monitor) {
            for (Entry e : table.entries()) {
                e.valid = false;
            }
            table = IovaTable.empty();
        }
    }

    private void publish(List<Entry> entries) {
        table = IovaTable.of(entries, e -> e.start, e -> e.last);
    }
}
