package io.github.vduse4j.blockdev.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** A RAM disk in native memory, zero-filled at start and freed on {@link #close()}. */
public final class MemoryBackend implements BlockBackend {
    private final Arena arena = Arena.ofShared();
    private final MemorySegment data;
    private final boolean readOnly;

    public MemoryBackend(long capacity, boolean readOnly) {
        this.data = arena.allocate(capacity, 4096);
        this.readOnly = readOnly;
    }

    @Override
    public long capacity() {
        return data.byteSize();
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
