package io.github.vduse4j.engine.control;

import io.github.vduse4j.engine.QueueStats;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The live stats file of one export ({@link StatsLayout}), mapped shared: the export creates it and its pollers write
 * their records in place; readers ({@code vduse4j stats}, the metrics endpoint, any other process) map it read-only
 * and may attach or detach at any time, without asking the export anything.
 */
public final class StatsFile implements AutoCloseable {
    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle().withInvokeExactBehavior();
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle().withInvokeExactBehavior();

    private final Path path;
    private final Arena arena;
    private final MemorySegment map;
    private final String name;
    private final List<QueueStats> queues;
    private final boolean writer;

    private StatsFile(Path path, Arena arena, MemorySegment map, String name, int count, boolean writer) {
        this.path = path;
        this.arena = arena;
        this.map = map;
        this.name = name;
        this.writer = writer;
        long recordsOffset = map.get(ValueLayout.JAVA_LONG, StatsLayout.H_RECORDS_OFFSET);
        int recordSize = map.get(ValueLayout.JAVA_INT, StatsLayout.H_RECORD_SIZE);
        List<QueueStats> q = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            q.add(new QueueStats(map.asSlice(recordsOffset + (long) i * recordSize, StatsLayout.RECORD_SIZE), name, i));
        }
        this.queues = List.copyOf(q);
    }

    /** Creates (or replaces) the stats file of export {@code name} with one zeroed record per queue. */
    public static StatsFile create(Path path, String name, int queueCount) throws IOException {
        long size = StatsLayout.HEADER_SIZE + (long) queueCount * StatsLayout.RECORD_SIZE;
        // A temporary file of this creator's own (in the same directory, so the rename is atomic): two exports
        // started at once under one name would otherwise truncate the file the other writes through its mapping
        // (SIGBUS).
        Path tmp = Files.createTempFile(path.toAbsolutePath().getParent(), path.getFileName() + ".", ".new",
                java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                        java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"))); // as before: readable by `vduse4j stats`
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            // map() below extends the empty file: it reads as zeros
            MemorySegment m = ch.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
            m.set(ValueLayout.JAVA_INT, StatsLayout.H_VERSION, StatsLayout.VERSION);
            m.set(ValueLayout.JAVA_INT, StatsLayout.H_HEADER_SIZE, StatsLayout.HEADER_SIZE);
            m.set(ValueLayout.JAVA_INT, StatsLayout.H_RECORD_SIZE, StatsLayout.RECORD_SIZE);
            m.set(ValueLayout.JAVA_INT, StatsLayout.H_RECORD_COUNT, queueCount);
            m.set(ValueLayout.JAVA_LONG, StatsLayout.H_RECORDS_OFFSET, StatsLayout.HEADER_SIZE);
            m.set(ValueLayout.JAVA_INT, StatsLayout.H_COUNTER_COUNT, StatsLayout.COUNTER_SLOTS);
            m.set(ValueLayout.JAVA_INT, StatsLayout.H_BUCKETS, StatsLayout.HISTOGRAM_BUCKETS);
            m.set(ValueLayout.JAVA_INT, StatsLayout.H_SUB_BUCKET_BITS, StatsLayout.SUB_BUCKET_BITS);
            m.set(ValueLayout.JAVA_LONG, StatsLayout.H_PID, ProcessHandle.current().pid());
            m.set(ValueLayout.JAVA_LONG, StatsLayout.H_START_MILLIS, System.currentTimeMillis());
            putString(m, StatsLayout.H_NAME, StatsLayout.NAME_BYTES, name);
            for (int i = 0; i < StatsLayout.COUNTER_SLOTS; i++) {
                putString(m, StatsLayout.H_COUNTER_NAMES + (long) i * StatsLayout.COUNTER_NAME_BYTES,
                        StatsLayout.COUNTER_NAME_BYTES, StatsLayout.counterName(i));
            }
            LONG.setRelease(m, StatsLayout.H_MAGIC, StatsLayout.MAGIC); // last: a reader that sees it sees the header
            Files.move(tmp, path, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            return new StatsFile(path, arena, m, name, queueCount, true);
        } catch (IOException | RuntimeException e) {
            arena.close();
            Files.deleteIfExists(tmp);
            throw e;
        }
    }

    /**
     * Maps an export's stats file read-only and checks its header.
     *
     * @throws IOException when it is missing, not a stats file, or of a layout this reader does not know
     */
    public static StatsFile open(Path path) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < StatsLayout.HEADER_SIZE) {
                throw new IOException(path + " is not a vduse4j stats file (" + size + " bytes)");
            }
            MemorySegment m = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long magic = (long) LONG.getAcquire(m, StatsLayout.H_MAGIC);
            if (magic != StatsLayout.MAGIC) {
                throw new IOException(path + " is not a vduse4j stats file (bad magic)");
            }
            int version = m.get(ValueLayout.JAVA_INT, StatsLayout.H_VERSION);
            int recordSize = m.get(ValueLayout.JAVA_INT, StatsLayout.H_RECORD_SIZE);
            int count = m.get(ValueLayout.JAVA_INT, StatsLayout.H_RECORD_COUNT);
            long recordsOffset = m.get(ValueLayout.JAVA_LONG, StatsLayout.H_RECORDS_OFFSET);
            if (version != StatsLayout.VERSION || recordSize < StatsLayout.RECORD_SIZE
                    || m.get(ValueLayout.JAVA_INT, StatsLayout.H_BUCKETS) != StatsLayout.HISTOGRAM_BUCKETS
                    || m.get(ValueLayout.JAVA_INT, StatsLayout.H_SUB_BUCKET_BITS) != StatsLayout.SUB_BUCKET_BITS) {
                throw new IOException(path + ": stats layout version " + version + " (record " + recordSize
                        + " bytes) is not the one this vduse4j reads (" + StatsLayout.VERSION + "): use the vduse4j"
                        + " that runs the export");
            }
            if (count < 0 || count > 65536 || recordsOffset < StatsLayout.HEADER_SIZE || recordsOffset % 8 != 0
                    || recordSize % 8 != 0 || recordsOffset + (long) count * recordSize > size) {
                throw new IOException(path + ": stats header describes records beyond the file");
            }
            String name = getString(m, StatsLayout.H_NAME, StatsLayout.NAME_BYTES);
            return new StatsFile(path, arena, m, name, count, false);
        } catch (NoSuchFileException e) {
            arena.close();
            throw new IOException("no stats file " + path, e);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static void putString(MemorySegment m, long off, int max, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        MemorySegment.copy(b, 0, m, ValueLayout.JAVA_BYTE, off, Math.min(b.length, max - 1));
    }

    private static String getString(MemorySegment m, long off, int max) {
        byte[] b = new byte[max];
        MemorySegment.copy(m, ValueLayout.JAVA_BYTE, off, b, 0, max);
        int n = 0;
        while (n < max && b[n] != 0) {
            n++;
        }
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }

    public Path path() {
        return path;
    }

    /** The export's name as its writer recorded it. */
    public String name() {
        return name;
    }

    /** Process id of the export that writes the file. */
    public long pid() {
        return map.get(ValueLayout.JAVA_LONG, StatsLayout.H_PID);
    }

    public long startMillis() {
        return map.get(ValueLayout.JAVA_LONG, StatsLayout.H_START_MILLIS);
    }

    /** True once the writer has stopped (its counters are final). */
    public boolean isClosed() {
        return (int) INT.getAcquire(map, StatsLayout.H_CLOSED) != 0;
    }

    /** One record per queue. */
    public List<QueueStats> queues() {
        return queues;
    }

    /** The names the header gives the counter slots (self-description; index = slot). */
    public List<String> counterNames() {
        List<String> out = new ArrayList<>();
        int n = map.get(ValueLayout.JAVA_INT, StatsLayout.H_COUNTER_COUNT);
        for (int i = 0; i < n; i++) {
            out.add(getString(map, StatsLayout.H_COUNTER_NAMES + (long) i * StatsLayout.COUNTER_NAME_BYTES,
                    StatsLayout.COUNTER_NAME_BYTES));
        }
        return out;
    }

    /**
     * Unmaps the file. The writer marks it closed first; call it only after every poller writing it has stopped
     * (a later write would fail with IllegalStateException, never touch unmapped memory).
     */
    @Override
    public void close() {
        if (writer && arena.scope().isAlive()) {
            INT.setRelease(map, StatsLayout.H_CLOSED, 1);
        }
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
