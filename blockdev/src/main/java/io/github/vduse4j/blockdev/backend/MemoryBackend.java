package io.github.vduse4j.blockdev.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** A RAM disk in native memory, zero-filled at start and freed on {@link #close()}. */
public final class MemoryBackend implements BlockBackend {
    private final Arena arena = Arena.ofShared();
    private final MemorySegment data;
    private final boolean readOnly;
    /** The size the driver sees: up to the memory allocated at start. */
    private volatile long capacity;

    public MemoryBackend(long capacity, boolean readOnly) {
        this.data = arena.allocate(capacity, 4096);
        this.readOnly = readOnly;
        this.capacity = capacity;
    }

    @Override
    public long capacity() {
        return capacity;
    }

    /**
     * Shrinks the disk, or grows it back up to the memory allocated at start. The bytes cut off are zeroed, so
     * growing again shows zeros, as a new region of a disk would.
     */
    @Override
    public synchronized long resize(long bytes) {
        if (bytes <= 0 || bytes % 512 != 0) {
            throw new IllegalArgumentException("size " + bytes + " is not a positive multiple of 512");
        }
        if (bytes > data.byteSize()) {
            throw new IllegalArgumentException("a RAM disk grows only up to the " + data.byteSize() + " bytes it was"
                    + " started with: restart it with a larger --memory");
        }
        if (bytes < capacity) {
            data.asSlice(bytes, capacity - bytes).fill((byte) 0);
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

    /** The whole disk, for tests and embedding code that wants to inspect it. */
    public MemorySegment contents() {
        return data;
    }

    /** FLUSH completes at once: nothing is volatile beyond this memory, so every completed write is as durable as it gets. */
    @Override
    public boolean supportsFlush() {
        return true;
    }

    @Override
    public void flush() {}

    @Override
    public BackendQueue openQueue(int queueIndex) {
        return this::execute;
    }

    private void execute(BlockRequest r) {
        switch (r.op()) {
            case BlockRequest.READ -> {
                long at = r.offset();
                for (int i = 0; i < r.bufferCount(); i++) {
                    int n = r.bufferLength(i);
                    MemorySegment.copy(data, at, r.buffer(i), r.bufferOffset(i), n);
                    at += n;
                }
            }
            case BlockRequest.WRITE -> {
                long at = r.offset();
                for (int i = 0; i < r.bufferCount(); i++) {
                    int n = r.bufferLength(i);
                    MemorySegment.copy(r.buffer(i), r.bufferOffset(i), data, at, n);
                    at += n;
                }
            }
            case BlockRequest.DISCARD, BlockRequest.WRITE_ZEROES -> {
                for (int i = 0; i < r.rangeCount(); i++) {
                    data.asSlice(r.rangeOffset(i), r.rangeLength(i)).fill((byte) 0);
                }
            }
            default -> { } // FLUSH: nothing is volatile beyond this memory
        }
        r.complete(BlockRequest.STATUS_OK);
    }

    @Override
    public String describe() {
        return "memory " + data.byteSize() + " bytes";
    }

    @Override
    public void close() {
        arena.close();
    }
}
