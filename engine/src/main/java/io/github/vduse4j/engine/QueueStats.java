package io.github.vduse4j.engine;

/**
 * Per-queue counters, written only by the queue's poller thread with plain stores and read by others
 * (monitoring tolerates slightly stale values; no locks, no atomics on the datapath).
 */
public final class QueueStats {
    /** All counters at zero. */
    public QueueStats() {}

    public long requests;
    public long readBytes;
    public long writtenBytes;
    /** Backend flushes that succeeded: the driver's FLUSH requests plus {@link #writeThroughFlushes}. */
    public long flushes;
    /**
     * Flushes the device issued itself in writethrough mode (virtio-blk {@code writeback} = 0) to make completed
     * writes durable before their status; one covers every write that completed before it was issued.
     */
    public long writeThroughFlushes;
    public long ioErrors;
    public long unsupported;
    public long chainErrors;
    public long notifications;

    @Override
    public String toString() {
        return "requests=" + requests + " read=" + readBytes + " written=" + writtenBytes + " flushes=" + flushes
                + " writeThroughFlushes=" + writeThroughFlushes + " ioErrors=" + ioErrors + " unsupported=" + unsupported
                + " chainErrors=" + chainErrors + " notifications=" + notifications;
    }
}
