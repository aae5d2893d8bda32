package io.github.vduse4j.blockdev.backend;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.MemoryMap;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Locale;

/**
 * A RAM disk: an anonymous private mapping with {@code MAP_NORESERVE}, outside the Java heap. Like the kernel's
 * {@code brd} or a tmpfs file, it starts empty (reads return zeros) and takes a page of memory only when a page is
 * first written, so a disk larger than free memory starts at once; DISCARD and WRITE_ZEROES give whole pages back to
 * the kernel ({@code madvise(MADV_DONTNEED)}). Memory is committed as the driver writes: if the machine runs out, the
 * kernel's OOM killer decides (no swap is reserved). Freed on {@link #close()}.
 */
public final class MemoryBackend implements BlockBackend {
    private static final long PAGE = 4096;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment data;
    private final boolean readOnly;
    /** The size the driver sees: up to the memory allocated at start. */
    private volatile long capacity;

    /**
     * Maps {@code capacity} bytes (rounded up to whole pages internally; the disk is exactly {@code capacity}).
     *
     * @param capacity the disk's size in bytes
     * @param readOnly refuse writes (a read-only disk of zeros)
     * @throws IllegalArgumentException with one line a user can act on when the capacity is not positive or the
     *         kernel refuses the mapping (more than the address space, or {@code vm.overcommit_memory=2} and more than
     *         the commit limit)
     */
    public MemoryBackend(long capacity, boolean readOnly) {
        if (capacity <= 0) {
            arena.close();
            throw new IllegalArgumentException("a RAM disk needs a positive size, got " + capacity);
        }
        long mapped = capacity > Long.MAX_VALUE - PAGE ? capacity : (capacity + PAGE - 1) & -PAGE;
        try {
            this.data = MemoryMap.map(mapped, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE,
                    MemoryMap.MAP_PRIVATE | MemoryMap.MAP_ANONYMOUS | MemoryMap.MAP_NORESERVE, -1, 0, arena)
                    .asSlice(0, capacity);
        } catch (ErrnoException e) {
            arena.close();
            throw new IllegalArgumentException("cannot map a RAM disk of " + humanSize(capacity) + " (" + capacity
                    + " bytes): mmap failed with " + e.errnoName() + "; pick a smaller --memory SIZE, or export a"
                    + " sparse file with --file (truncate -s SIZE on a disk, or on a tmpfs for RAM)", e);
        }
        this.readOnly = readOnly;
        this.capacity = capacity;
    }

    /** {@code bytes} in the largest binary unit that keeps one decimal, e.g. {@code 30.0 GiB}. */
    static String humanSize(long bytes) {
        String[] units = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        int u = 0;
        double v = bytes;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes + " bytes" : String.format(Locale.ROOT, "%.1f %s", v, units[u]);
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

    /**
     * The whole disk, for tests and embedding code that wants to inspect it.
     *
     * @return the mapping, {@link #capacity()} bytes
     */
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
        CallState st = new CallState(); // this queue's poller is the only caller of execute
        return r -> execute(r, st);
    }

    private void execute(BlockRequest r, CallState st) {
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
                    zero(r.rangeOffset(i), r.rangeLength(i), st);
                }
            }
            default -> { } // FLUSH: nothing is volatile beyond this memory
        }
        r.complete(BlockRequest.STATUS_OK);
    }

    /**
     * Zeroes {@code [offset, offset + length)}: the whole pages inside it are dropped (they read back zero and no
     * longer take memory), the partial pages at either end are filled.
     */
    private void zero(long offset, long length, CallState st) {
        long end = offset + length;
        long first = (offset + PAGE - 1) & -PAGE;
        long last = end & -PAGE;
        if (last - first < PAGE
                || MemoryMap.adviseRaw(st, data, first, last - first, MemoryMap.MADV_DONTNEED) != 0) {
            data.asSlice(offset, length).fill((byte) 0); // no whole page, or madvise refused: zero by hand
            return;
        }
        data.asSlice(offset, first - offset).fill((byte) 0);
        data.asSlice(last, end - last).fill((byte) 0);
    }

    @Override
    public String identity() {
        return "memory of process " + ProcessHandle.current().pid() + " (dies with it)";
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
