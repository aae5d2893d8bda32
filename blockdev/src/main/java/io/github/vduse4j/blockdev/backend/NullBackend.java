package io.github.vduse4j.blockdev.backend;

/**
 * A device of a given size that stores nothing: writes, flushes, discards succeed and are dropped; reads
 * succeed and leave the driver's buffers as they were (like Linux null_blk and QEMU's null-co without
 * read-zeroes). For datapath benchmarks.
 */
public final class NullBackend implements BlockBackend {
    private volatile long capacity;
    private final boolean readOnly;

    /**
     * A device that stores nothing: writes are dropped, reads leave the buffers as they are.
     *
     * @param capacity the size it claims, in bytes
     * @param readOnly refuse writes
     */
    public NullBackend(long capacity, boolean readOnly) {
        this.capacity = capacity;
        this.readOnly = readOnly;
    }

    @Override
    public long capacity() {
        return capacity;
    }

    @Override
    public long resize(long bytes) {
        if (bytes <= 0 || bytes % 512 != 0) {
            throw new IllegalArgumentException("size " + bytes + " is not a positive multiple of 512");
        }
        capacity = bytes;
        return bytes;
    }

    @Override
    public boolean isReadOnly() {
        return readOnly;
    }

    @Override
    public boolean supportsDiscard() {
        return true;
    }

    @Override
    public boolean supportsWriteZeroes() {
        return true;
    }

    /** FLUSH completes at once: nothing is stored, so every completed write is as durable as it gets. */
    @Override
    public boolean supportsFlush() {
        return true;
    }

    @Override
    public void flush() {}

    @Override
    public BackendQueue openQueue(int queueIndex) {
        return request -> request.complete(BlockRequest.STATUS_OK);
    }

    @Override
    public String describe() {
        return "null " + capacity + " bytes";
    }

    @Override
    public void close() {}
}
