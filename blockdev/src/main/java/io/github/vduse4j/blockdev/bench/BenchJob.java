package io.github.vduse4j.blockdev.bench;

import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.ring.driver.DriverRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.HdrHistogram.Histogram;

/**
 * One queue's load: keeps {@code depth} requests in flight on its {@link BlkQueue}, busy-polls completions (or, with
 * {@link BenchOptions#awaitCalls}, sleeps on the call eventfd once nothing completed for a while),
 * records latencies in an HdrHistogram, and (with verify) checks data. Runs on its own platform thread; the
 * loop allocates nothing.
 *
 * <p>Verify: a written block holds a pattern derived from its byte offset and the run's seed, so concurrent or
 * repeated writes of a block agree. With several queues each owns every n-th block, so no two threads write
 * the same block.
 *
 * <p>A device fault the ring counts (see {@link DriverRing}) becomes the job's first problem; a fault that breaks
 * the ring ends the job at once (no drain, no final verify: its requests can no longer be accounted).
 */
final class BenchJob implements Runnable {
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final int READ = 0, WRITE = 1;

    private final BlkQueue q;
    private final BenchOptions o;
    private final int index;
    private final long partBlocks;
    /** This job's first block: with verify each of n jobs owns blocks first, first + n, ...; else all from 0. */
    private final int first;
    private final int stride;
    private final int blockSize;
    private final int readPercent;
    private final SplittableRandom random;
    private final long[] written;
    final Histogram histogram = new Histogram(60_000_000_000L, 3);

    /** Per slot: when the device could first see its request, where its latency starts (see {@link #publish}). */
    private final long[] startNanos;
    /** The slots added since the last publish, in the order added. */
    private final int[] unpublishedSlots;
    /** A packed ring shows a request to the device at its add (§2.8.21.1): its latency starts there, not at publish. */
    private final boolean startsAtAdd;
    private final int[] op;
    private final long[] block;
    private final boolean[] check;
    private final int[] free;
    private int freeCount;
    private long cursor;
    /** {@link BenchOptions#rateIops}: nanoseconds between this queue's requests (0: no limit), and the next one due. */
    private final long interval;
    private long nextIssue;

    volatile boolean stop;
    private volatile long completedOps;

    // Requests of the runner's thread (vhost-vdpa IOTLB churn and stop/start), handed over through volatiles so the
    // loop takes no lock: the runner writes remapWanted, the job answers with remapHeld once that slot is free (no
    // request in flight uses its buffer) and keeps it out of use until the runner, after the remap and
    // BlkQueue.rebind, writes remapDone; pauseWanted makes the job drain everything and report paused.
    volatile int remapWanted = -1;
    volatile int remapHeld = -1;
    volatile int remapDone = -1;
    volatile boolean pauseWanted;
    volatile boolean paused;
    private final boolean controlled;
    /** {@link BenchOptions#awaitCalls}: sleep on the call eventfd once the used ring stayed empty a while. */
    private final boolean awaitCalls;
    /** {@link BenchOptions#submitBatch}: requests added between two publishes (0: one publish per pass). */
    private final int submitBatch;
    long reads, writes, bytes, errors, verifyErrors, verified;
    String firstProblem;

    BenchJob(BlkQueue q, BenchOptions o, int index, long deviceBlocks) {
        this.q = q;
        this.o = o;
        this.index = index;
        this.blockSize = o.blockSize();
        this.stride = o.verify() ? o.queues() : 1;
        this.first = o.verify() ? index : 0;
        this.partBlocks = o.verify() ? (deviceBlocks - index + stride - 1) / stride : deviceBlocks;
        this.readPercent = o.readPercent();
        this.random = new SplittableRandom(o.seed() * 31 + index);
        this.written = o.verify() ? new long[(int) ((partBlocks + 63) / 64)] : null;
        int d = q.depth();
        this.startNanos = new long[d];
        this.unpublishedSlots = new int[d];
        this.startsAtAdd = q.ring().packed();
        this.op = new int[d];
        this.block = new long[d];
        this.check = new boolean[d];
        this.free = new int[d];
        for (int i = 0; i < d; i++) {
            free[i] = d - 1 - i;
        }
        this.freeCount = d;
        this.cursor = 0;
        this.interval = o.issueIntervalNanos();
        this.controlled = o.remapIntervalMillis() > 0 || o.stopStartIntervalMillis() > 0;
        this.awaitCalls = o.awaitCalls();
        this.submitBatch = o.submitBatch() == 0 ? Integer.MAX_VALUE : o.submitBatch();
    }

    long completedOps() {
        return completedOps;
    }

    @Override
    public void run() {
        try {
            DriverRing ring = q.ring();
            long done = 0;
            long idleSince = 0;
            nextIssue = System.nanoTime();
            while (!stop && !ring.broken()) {
                if (controlled) {
                    serviceControl();
                }
                submitFree(true);
                int n = reapAll(true);
                done += n;
                completedOps = done;
                if (awaitCalls) {
                    idleSince = awaitIfIdle(n, idleSince);
                }
            }
            if (!ring.broken()) {
                drain();
                if (remapHeld >= 0) {   // the runner hands every held slot back before it sets stop
                    free[freeCount++] = remapHeld;
                    remapHeld = -1;
                }
            }
            if (o.verify() && !ring.broken()) {
                verifyAll();
            }
        } catch (RuntimeException e) {
            errors++;
            if (firstProblem == null) {
                firstProblem = e.toString();
            }
        }
        if (q.ring().broken()) {
            firstProblem = q.ring().firstDeviceFault();   // the cause of whatever else went wrong
        } else if (q.ring().deviceFaults() > 0) {
            problem(q.ring().firstDeviceFault());
        }
    }

    /**
     * {@link BenchOptions#awaitCalls}: after a pass that reaped {@code reaped} requests, with requests in flight and
     * nothing completed for {@link BenchOptions#SPIN_BEFORE_SLEEP_NANOS}, sleeps on the call eventfd (at most 1 ms, so
     * stop and the runner's requests are seen soon). Returns when the idle period began (0: not idle).
     */
    private long awaitIfIdle(int reaped, long idleSince) {
        if (reaped > 0 || freeCount + (remapHeld >= 0 ? 1 : 0) == q.depth()) {
            return 0;
        }
        long now = System.nanoTime();
        if (idleSince == 0) {
            return now;
        }
        if (now - idleSince < BenchOptions.SPIN_BEFORE_SLEEP_NANOS) {
            return idleSince;
        }
        q.queue().awaitUsed(1);   // notifications on, re-check, poll(2) on the call eventfd, notifications off
        return 0;
    }

    /** Answers the runner's remap and pause requests (see the fields). */
    private void serviceControl() {
        int held = remapHeld;
        if (held < 0) {
            int w = remapWanted;
            if (w >= 0 && takeFree(w)) {
                remapHeld = w;
            }
        } else if (remapDone == held) {
            free[freeCount++] = held;
            remapDone = -1;
            remapHeld = -1;
        }
        if (pauseWanted) {
            drain();
            paused = true;
            while (pauseWanted && !stop) {
                java.util.concurrent.locks.LockSupport.parkNanos(200_000);
            }
            paused = false;
        }
    }

    /** Takes {@code slot} out of the free list; false if it is in flight. */
    private boolean takeFree(int slot) {
        for (int i = 0; i < freeCount; i++) {
            if (free[i] == slot) {
                free[i] = free[--freeCount];
                return true;
            }
        }
        return false;
    }

    /**
     * Fills every free slot with a new request (with a rate: each one that is due) and publishes them, every
     * {@link #submitBatch} requests and at the end.
     */
    private void submitFree(boolean workload) {
        int n = 0;
        int unpublished = 0;
        long now = 0;
        if (interval > 0 && workload) {
            now = System.nanoTime();
            if (now - nextIssue > interval * q.depth()) {
                nextIssue = now - interval * q.depth(); // open loop, but a stall does not turn into a burst
            }
            long wait = nextIssue - now;
            if (wait > 0) {
                if (wait > 100_000 && freeCount == q.depth()) {
                    java.util.concurrent.locks.LockSupport.parkNanos(wait - 50_000); // nothing in flight: sleep
                }
                return;
            }
        }
        while (freeCount > 0) {
            if (interval > 0 && workload) {
                if (now - nextIssue < 0) {
                    break;
                }
                nextIssue += interval;
            }
            int slot = free[freeCount - 1];
            long p = nextPart();
            boolean isRead = readPercent == 100 || (readPercent > 0 && random.nextInt(100) < readPercent);
            if (!workload) {
                isRead = true;
            }
            long b = p * stride + first;
            op[slot] = isRead ? READ : WRITE;
            block[slot] = p;
            check[slot] = written != null && isRead && isWritten(p);
            if (!isRead) {
                fill(slot, b);
            }
            long sector = b * (blockSize / VirtioBlk.SECTOR_SIZE);
            if (startsAtAdd) {
                startNanos[slot] = System.nanoTime();
            }
            if (!q.submit(slot, isRead ? VirtioBlk.T_IN : VirtioBlk.T_OUT, sector, blockSize)) {
                break;
            }
            freeCount--;
            n++;
            unpublishedSlots[unpublished++] = slot;
            if (unpublished == submitBatch) {
                publish(unpublished);
                unpublished = 0;
            }
        }
        if (unpublished > 0) {
            publish(unpublished);
        }
    }

    /**
     * Publishes the {@code count} requests added since the last publish. On a split ring their latency starts now:
     * the device cannot see a request before its publish (§2.7.13.3: the avail index store), so that is where its
     * time in the device begins, as fio's issue time is taken when it hands an I/O to the engine. One clock read per
     * publish, not one per request: a clock read costs ~24 ns on this kind of host, a fifth of the frontend's ~125 ns
     * per request at 8M IOPS (docs/benchmarks.md "The frontend's clock"). A packed ring's requests were timed at
     * their add ({@link #startsAtAdd}).
     */
    private void publish(int count) {
        if (!startsAtAdd) {
            long now = System.nanoTime();
            for (int i = 0; i < count; i++) {
                startNanos[unpublishedSlots[i]] = now;
            }
        }
        q.flush();
    }

    private long nextPart() {
        if (o.pattern().random) {
            return random.nextLong(partBlocks);
        }
        long p = cursor;
        cursor = cursor + 1 == partBlocks ? 0 : cursor + 1;
        return p;
    }

    private int reapAll(boolean record) {
        int n = q.reap();
        if (n == 0) {
            Thread.onSpinWait();
            return 0;
        }
        long now = System.nanoTime();
        for (int i = 0; i < n; i++) {
            int slot = q.completedSlot(i);
            int status = q.completedStatus(i);
            if (record) {
                histogram.recordValue(Math.max(1, now - startNanos[slot]));
            }
            if (status != VirtioBlk.S_OK) {
                problem("request on block " + (block[slot] * stride + first) + " completed with status " + status);
                errors++;
            } else if (op[slot] == WRITE) {
                writes++;
                bytes += blockSize;
                if (written != null) {
                    markWritten(block[slot]);
                }
            } else {
                reads++;
                bytes += blockSize;
                if (check[slot]) {
                    verify(slot, block[slot] * stride + first);
                }
            }
            free[freeCount++] = slot;
        }
        return n;
    }

    private void drain() {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (freeCount + (remapHeld >= 0 ? 1 : 0) < q.depth() && !q.ring().broken()) {
            reapAll(true);
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException((q.depth() - freeCount) + " requests never completed");
            }
        }
    }

    /** Reads back every block this job wrote and checks it. */
    private void verifyAll() {
        long p = 0;
        int depth = q.depth();
        while (true) {
            int n = 0;
            while (freeCount > 0 && p < partBlocks) {
                if (!isWritten(p)) {
                    p++;
                    continue;
                }
                int slot = free[freeCount - 1];
                op[slot] = READ;
                block[slot] = p;
                check[slot] = true;
                long b = p * stride + first;
                q.data(slot).asSlice(0, blockSize).fill((byte) 0);
                if (!q.submit(slot, VirtioBlk.T_IN, b * (blockSize / VirtioBlk.SECTOR_SIZE), blockSize)) {
                    break;
                }
                freeCount--;
                n++;
                p++;
            }
            if (n > 0) {
                q.flush();
            }
            if ((p >= partBlocks && freeCount == depth) || q.ring().broken()) {
                return;
            }
            reapVerifyOnly();
        }
    }

    private void reapVerifyOnly() {
        int n = q.reap();
        for (int i = 0; i < n; i++) {
            int slot = q.completedSlot(i);
            if (q.completedStatus(i) != VirtioBlk.S_OK) {
                errors++;
                problem("verify read of block " + (block[slot] * stride + first) + " failed");
            } else {
                verify(slot, block[slot] * stride + first);
            }
            free[freeCount++] = slot;
        }
    }

    private long word(long deviceBlock, int i) {
        long off = deviceBlock * blockSize + 8L * i;
        return (off + 1) * 0x9E3779B97F4A7C15L ^ o.seed();
    }

    private void fill(int slot, long deviceBlock) {
        MemorySegment m = q.data(slot);
        for (int i = 0; i < blockSize / 8; i++) {
            m.set(LE_LONG, 8L * i, word(deviceBlock, i));
        }
    }

    private void verify(int slot, long deviceBlock) {
        MemorySegment m = q.data(slot);
        verified++;
        for (int i = 0; i < blockSize / 8; i++) {
            if (m.get(LE_LONG, 8L * i) != word(deviceBlock, i)) {
                verifyErrors++;
                problem("block " + deviceBlock + " differs at byte " + (8L * i) + " (offset "
                        + (deviceBlock * blockSize + 8L * i) + ")");
                return;
            }
        }
    }

    private void problem(String s) {
        if (firstProblem == null) {
            firstProblem = s;
        }
    }

    private boolean isWritten(long p) {
        return (written[(int) (p >>> 6)] & (1L << p)) != 0;
    }

    private void markWritten(long p) {
        written[(int) (p >>> 6)] |= 1L << p;
    }
}
