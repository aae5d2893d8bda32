package io.github.vduse4j.engine;

import io.github.vduse4j.engine.control.SlowRequestEvent;
import io.github.vduse4j.engine.control.StatsLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * One queue's live counters and latency histogram: a flyweight over one record of the stats file
 * ({@link StatsLayout}), or over native memory of its own when the export publishes no file. The queue's poller
 * thread is the only writer (plain stores, no atomics, no allocation); any thread or process may read at any time
 * and sees slightly stale but never torn values (aligned 64-bit stores).
 *
 * <p>The record belongs to the export, not to one queue handler: counts survive device resets and reconnects.
 */
public final class QueueStats {
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;
    private static final VarHandle ACQUIRE = LONG.varHandle().withInvokeExactBehavior();

    private final MemorySegment record;
    private final String export;
    private final int queue;
    /**
     * Requests at least this slow (pop to completion) are reported as JFR {@link SlowRequestEvent}s. A plain field,
     * read on every completion: it is set before the queues start (their thread start publishes it).
     */
    private long slowNanos = Long.MAX_VALUE;

    /** Counters in native memory of their own (not published). */
    public QueueStats() {
        this(Arena.ofAuto().allocate(StatsLayout.RECORD_SIZE, 64), "", 0);
    }

    /** Counters in {@code record}, {@link StatsLayout#RECORD_SIZE} bytes at an 8-byte aligned address. */
    public QueueStats(MemorySegment record, String export, int queue) {
        if (record.byteSize() < StatsLayout.RECORD_SIZE || record.address() % 8 != 0) {
            throw new IllegalArgumentException("a stats record needs " + StatsLayout.RECORD_SIZE + " aligned bytes");
        }
        this.record = record;
        this.export = export;
        this.queue = queue;
    }

    /**
     * Reports requests that take {@code nanos} or longer as JFR events (Long.MAX_VALUE: never, the default). Set it
     * before the queue's poller starts.
     */
    public void slowRequestThreshold(long nanos) {
        this.slowNanos = nanos <= 0 ? Long.MAX_VALUE : nanos;
    }

    // ---- writer: the queue's poller thread only ----

    private void add(int slot, long delta) {
        long off = (long) slot * 8;
        record.set(LONG, off, record.get(LONG, off) + delta);
    }

    /** A chain was taken from the ring. */
    public void popped() {
        add(StatsLayout.POPPED, 1);
    }

    /**
     * A request completed (its status is written): counted by operation ({@code BlockRequest} op, or -1 for a
     * request rejected before its type was known), by outcome and in the latency histogram.
     *
     * @param error -1 for success, else {@link StatsLayout#ERR_IO} or {@link StatsLayout#ERR_UNSUPPORTED}
     * @param latencyNanos from pop to completion
     */
    public void completed(int op, int error, long bytes, long latencyNanos) {
        completedRequest(op, error, bytes, latencyNanos);
        completedPass(1, latencyNanos, latencyNanos);
    }

    /**
     * The per-request part of {@link #completed}: the op and outcome counters, bytes and the latency bucket. The
     * poller then adds the request count, latency sum and maximum of all the pass's requests at once with
     * {@link #completedPass}.
     */
    public void completedRequest(int op, int error, long bytes, long latencyNanos) {
        int o = op >= 0 && op < StatsLayout.OP_OTHER ? op : StatsLayout.OP_OTHER;
        add(StatsLayout.OP_FIRST + o, 1);
        if (error < 0) {
            if (o == StatsLayout.OP_READ) {
                add(StatsLayout.READ_BYTES, bytes);
            } else if (o == StatsLayout.OP_WRITE) {
                add(StatsLayout.WRITTEN_BYTES, bytes);
            } else if (o == StatsLayout.OP_FLUSH) {
                add(StatsLayout.FLUSHES, 1);
            }
        } else {
            add(StatsLayout.ERR_FIRST + error, 1);
        }
        add(StatsLayout.HISTOGRAM + StatsLayout.bucketOf(latencyNanos), 1);
        if (latencyNanos >= slowNanos) {
            SlowRequestEvent.report(export, queue, o, bytes, error, latencyNanos);
        }
    }

    /**
     * {@code n} requests recorded with {@link #completedRequest} completed: their count (last, so that a reader
     * never sees more completed than popped), latency sum and the largest latency among them.
     */
    public void completedPass(int n, long latencySum, long latencyMax) {
        add(StatsLayout.LATENCY_SUM, latencySum);
        long maxOff = StatsLayout.LATENCY_MAX * 8L;
        if (latencyMax > record.get(LONG, maxOff)) {
            record.set(LONG, maxOff, latencyMax);
        }
        add(StatsLayout.REQUESTS, n);
    }

    /** A chain could not be walked (counted besides its completion, if it had one). */
    public void chainError() {
        add(StatsLayout.ERR_FIRST + StatsLayout.ERR_CHAIN, 1);
    }

    /** A flush the device issued itself in writethrough mode succeeded. */
    public void writeThroughFlush() {
        add(StatsLayout.FLUSHES, 1);
        add(StatsLayout.WRITE_THROUGH_FLUSHES, 1);
    }

    /** The poller woke from a sleep on the kick (or completion) source. */
    public void kick() {
        add(StatsLayout.KICKS, 1);
    }

    /** The driver was notified (interrupt injected / call eventfd signalled). */
    public void notification() {
        add(StatsLayout.NOTIFICATIONS, 1);
    }

    // ---- readers: any thread ----

    /** The value of counter slot {@code slot} ({@link StatsLayout} constants). */
    public long counter(int slot) {
        return (long) ACQUIRE.getAcquire(record, (long) slot * 8); // a plain load on x86; never hoisted out of a loop
    }

    /** The count of latency bucket {@code bucket}. */
    public long bucket(int bucket) {
        return counter(StatsLayout.HISTOGRAM + bucket);
    }

    public long requests() {
        return counter(StatsLayout.REQUESTS);
    }

    /** Popped but not yet completed (read completions first: never negative). */
    public long inflight() {
        long done = counter(StatsLayout.REQUESTS);
        return Math.max(0, counter(StatsLayout.POPPED) - done);
    }

    public long readBytes() {
        return counter(StatsLayout.READ_BYTES);
    }

    public long writtenBytes() {
        return counter(StatsLayout.WRITTEN_BYTES);
    }

    /** Backend flushes that succeeded: the driver's FLUSH requests plus {@link #writeThroughFlushes()}. */
    public long flushes() {
        return counter(StatsLayout.FLUSHES);
    }

    /**
     * Flushes the device issued itself in writethrough mode (virtio-blk {@code writeback} = 0) to make completed
     * writes durable before their status; one covers every write that completed before it was issued.
     */
    public long writeThroughFlushes() {
        return counter(StatsLayout.WRITE_THROUGH_FLUSHES);
    }

    public long ioErrors() {
        return counter(StatsLayout.ERR_FIRST + StatsLayout.ERR_IO);
    }

    public long unsupported() {
        return counter(StatsLayout.ERR_FIRST + StatsLayout.ERR_UNSUPPORTED);
    }

    public long chainErrors() {
        return counter(StatsLayout.ERR_FIRST + StatsLayout.ERR_CHAIN);
    }

    public long kicks() {
        return counter(StatsLayout.KICKS);
    }

    public long notifications() {
        return counter(StatsLayout.NOTIFICATIONS);
    }

    @Override
    public String toString() {
        return "requests=" + requests() + " read=" + readBytes() + " written=" + writtenBytes() + " flushes="
                + flushes() + " writeThroughFlushes=" + writeThroughFlushes() + " ioErrors=" + ioErrors()
                + " unsupported=" + unsupported() + " chainErrors=" + chainErrors() + " kicks=" + kicks()
                + " notifications=" + notifications();
    }
}
