package io.github.vduse4j.jmh.backend;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.blockdev.backend.BackendQueue;
import io.github.vduse4j.blockdev.backend.BlockBackend;
import io.github.vduse4j.blockdev.backend.BlockRequest;
import io.github.vduse4j.blockdev.backend.FileBackend;
import io.github.vduse4j.blockdev.backend.IoUringFileBackend;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * 4 KiB random reads or writes through a file backend's queue, driven as a virtio-blk poller would: up to
 * {@code qd} requests in flight, each completion immediately replaced by a new request at a random 4 KiB-aligned
 * offset, {@code poll()} called in a loop. One operation = one completed request (so the score is IOPS).
 *
 * <p>{@code engine}: {@code pread} ({@link FileBackend}: synchronous, so the queue depth is always 1 whatever
 * {@code qd} says), {@code io_uring} ({@link IoUringFileBackend}, buffered), {@code io_uring_direct} (O_DIRECT) or
 * {@code pread_direct} (the pread/pwrite loop of {@link FileBackend} on an O_DIRECT fd, defined here since
 * {@code FileBackend} has no O_DIRECT option: the synchronous baseline for O_DIRECT).
 * {@code fs}: {@code tmpfs} ({@code /dev/shm}) or {@code disk} (system property {@code vduse4j.bench.diskdir},
 * default {@code /var/tmp}). The 256 MiB file (property {@code vduse4j.bench.filemb}) is written with random data
 * and fsynced first, so buffered reads on disk are page-cache hits; O_DIRECT reads go to the device.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1)
public class FileBackendBenchmark {
    static final int OPS = 256;
    static final int BLOCK = 4096;

    @Param({"pread", "io_uring"})
    public String engine;

    @Param({"tmpfs", "disk"})
    public String fs;

    @Param({"1", "32"})
    public int qd;

    @Param({"read", "write"})
    public String rw;

    private Path file;
    private BlockBackend backend;
    private BackendQueue queue;
    private BlockRequest[] slots;
    private int[] free;
    private int freeCount;
    private int[] done;
    private int doneCount;
    private int failures;
    private MemorySegment buffers;
    private long blocks;
    private long seed = 0x9E3779B97F4A7C15L;
    private int op;
    private int surplus;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        Path dir = fs.equals("tmpfs") ? Path.of("/dev/shm") : Path.of(System.getProperty("vduse4j.bench.diskdir", "/var/tmp"));
        long size = Long.getLong("vduse4j.bench.filemb", 256) << 20;
        file = Files.createTempFile(dir, "vduse4j-bench", ".img");
        byte[] chunk = new byte[1 << 20];
        new Random(1).nextBytes(chunk);
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            for (long at = 0; at < size; at += chunk.length) {
                raf.write(chunk);
            }
            raf.getFD().sync();
        }
        blocks = size / BLOCK;
        backend = switch (engine) {
            case "pread" -> new FileBackend(file, false);
            case "io_uring" -> new IoUringFileBackend(file, false, IoUringFileBackend.Options.defaults().withQueueDepth(qd));
            case "io_uring_direct" -> new IoUringFileBackend(file, false,
                    IoUringFileBackend.Options.defaults().withQueueDepth(qd).withDirect(true));
            case "pread_direct" -> new DirectPreadBackend(file, size);
            default -> throw new IllegalArgumentException("engine " + engine);
        };
        queue = backend.openQueue(0);
        op = rw.equals("write") ? BlockRequest.WRITE : BlockRequest.READ;
        buffers = Arena.ofAuto().allocate((long) qd * BLOCK, BLOCK);
        BlockRequest.Scratch scratch = new BlockRequest.Scratch(1, 1);
        slots = new BlockRequest[qd];
        free = new int[qd];
        done = new int[qd];
        for (int i = 0; i < qd; i++) {
            slots[i] = new BlockRequest(i, scratch, r -> {
                if (r.status() != BlockRequest.STATUS_OK) {
                    failures++;
                }
                done[doneCount++] = r.slot();
            });
            free[i] = i;
        }
        freeCount = qd;
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        while (queue.inflight() > 0) {
            queue.poll();
        }
        queue.close();
        backend.close();
        Files.deleteIfExists(file);
        if (failures > 0) {
            throw new IllegalStateException(failures + " requests failed");
        }
    }

    /** Synchronous pread/pwrite on an O_DIRECT fd (READ/WRITE only; the benchmark's 4 KiB buffers are aligned). */
    static final class DirectPreadBackend implements BlockBackend {
        private final int fd;
        private final long size;

        DirectPreadBackend(Path file, long size) {
            this.fd = FileIo.open(file.toString(), FileIo.O_RDWR | FileIo.O_DIRECT | FileIo.O_CLOEXEC);
            this.size = size;
        }

        @Override
        public long capacity() {
            return size;
        }

        @Override
        public boolean isReadOnly() {
            return false;
        }

        @Override
        public boolean supportsDiscard() {
            return false;
        }

        @Override
        public boolean supportsWriteZeroes() {
            return false;
        }

        @Override
        public BackendQueue openQueue(int queueIndex) {
            CallState st = new CallState();
            return r -> {
                long pos = r.offset();
                boolean ok = true;
                for (int i = 0; i < r.bufferCount() && ok; i++) {
                    long n = r.op() == BlockRequest.WRITE
                            ? FileIo.pwriteRaw(st, fd, r.buffer(i), r.bufferOffset(i), r.bufferLength(i), pos)
                            : FileIo.preadRaw(st, fd, r.buffer(i), r.bufferOffset(i), r.bufferLength(i), pos);
                    ok = n == r.bufferLength(i);
                    pos += n;
                }
                r.complete(ok ? BlockRequest.STATUS_OK : BlockRequest.STATUS_IOERR);
            };
        }

        @Override
        public String describe() {
            return "pread O_DIRECT";
        }

        @Override
        public void close() {
            FileIo.close(fd);
        }
    }

    private long nextOffset() {
        long x = seed; // xorshift64
        x ^= x << 13;
        x ^= x >>> 7;
        x ^= x << 17;
        seed = x;
        return ((x >>> 1) % blocks) * BLOCK;
    }

    @Benchmark
    @OperationsPerInvocation(OPS)
    public int randomIo() {
        BackendQueue q = queue;
        int completed = surplus;
        while (completed < OPS) {
            while (freeCount > 0) {
                int slot = free[--freeCount];
                BlockRequest r = slots[slot];
                r.reset(op, nextOffset());
                r.addBuffer(buffers, (long) slot * BLOCK, BLOCK);
                q.submit(r);
            }
            q.poll();
            for (int i = 0; i < doneCount; i++) {
                free[freeCount++] = done[i];
            }
            completed += doneCount;
            doneCount = 0;
        }
        surplus = completed - OPS; // completions beyond this invocation's count go to the next one
        return completed;
    }
}
