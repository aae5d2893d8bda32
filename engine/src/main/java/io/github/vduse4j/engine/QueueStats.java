package io.github.vduse4j.engine;

/**
 * Per-queue counters, written only by the queue's poller thread with plain stores and read by others
 * (monitoring tolerates slightly stale values; no locks, no atomics on the datapath).
 */
public final class QueueStats {
    public long requests;
    public long readBytes;
    public long writtenBytes;
    public long flushes;
    public long ioErrors;
    public long unsupported;
    public long chainErrors;
    public long notifications;

    @Override
    public String toString() {
        return "requests=" + requests + " read=" + readBytes + " written=" + writtenBytes + " flushes=" + flushes
                + " ioErrors=" + ioErrors + " unsupported=" + unsupported + " chainErrors=" + chainErrors
                + " notifications=" + notifications;
    }
}
