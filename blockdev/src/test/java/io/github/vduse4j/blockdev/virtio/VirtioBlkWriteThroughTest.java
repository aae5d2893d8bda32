package io.github.vduse4j.blockdev.virtio;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.blockdev.backend.BackendQueue;
import io.github.vduse4j.blockdev.backend.BlockBackend;
import io.github.vduse4j.blockdev.backend.BlockRequest;
import io.github.vduse4j.blockdev.backend.FileBackend;
import io.github.vduse4j.blockdev.backend.IoUringFileBackend;
import io.github.vduse4j.blockdev.backend.MemoryBackend;
import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.testkit.BlkRequests;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Writethrough mode (§5.2.6.2 with VIRTIO_BLK_F_CONFIG_WCE and {@code writeback} = 0) through real rings: every
 * WRITE, DISCARD and WRITE_ZEROES that completes OK is followed by a backend FLUSH before its status is written; in
 * writeback mode nothing is added. Checked against a backend that logs what it is asked to do, synchronously and
 * asynchronously (completions from {@code poll()}, as io_uring), and against the real file backends.
 */
class VirtioBlkWriteThroughTest {
    static final int QSIZE = 64;
    static final long CAPACITY = 1 << 20;
    static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path dir;

    VirtqueueDriver driver;
    Virtqueue queue;
    BlockBackend backend;
    VirtioBlkDevice device;
    QueueHandler handler;
    final UsedBuffer used = new UsedBuffer();

    /** A memory disk that logs each request it gets; async: completes them only from poll(), in order. */
    static final class LoggingBackend implements BlockBackend {
        final MemoryBackend inner = new MemoryBackend(CAPACITY, false);
        final boolean async;
        final List<String> log = new ArrayList<>();
        boolean failFlushes;

        LoggingBackend(boolean async) {
            this.async = async;
        }

        @Override public long capacity() { return inner.capacity(); }
        @Override public boolean isReadOnly() { return false; }
        @Override public boolean supportsDiscard() { return true; }
        @Override public boolean supportsWriteZeroes() { return true; }
        @Override public boolean supportsFlush() { return true; }
        @Override public void flush() { log.add("device-flush"); }
        @Override public String describe() { return "logging"; }
        @Override public void close() { inner.close(); }

        static String name(int op) {
            return switch (op) {
                case BlockRequest.READ -> "read";
                case BlockRequest.WRITE -> "write";
                case BlockRequest.FLUSH -> "flush";
                case BlockRequest.DISCARD -> "discard";
                case BlockRequest.WRITE_ZEROES -> "write-zeroes";
                default -> "op" + op;
            };
        }

        @Override
        public BackendQueue openQueue(int queueIndex) {
            BackendQueue mem = inner.openQueue(queueIndex);
            List<BlockRequest> held = new ArrayList<>();
            return new BackendQueue() {
                @Override
                public void submit(BlockRequest r) {
                    log.add(name(r.op()));
                    if (!async) {
                        execute(r);
                    } else {
                        // the request's buffer list is valid only now: do the data part now, complete later
                        held.add(r);
                        int op = r.op();
                        if (op != BlockRequest.FLUSH) {
                            mem.submit(shadow(r));
                        }
                    }
                }

                /** The request's data moved by the memory disk without completing the request itself. */
                private BlockRequest shadow(BlockRequest r) {
                    BlockRequest.Scratch s = new BlockRequest.Scratch(Math.max(1, r.bufferCount()), Math.max(1, r.rangeCount()));
                    BlockRequest copy = new BlockRequest(0, s, x -> { });
                    copy.reset(r.op(), r.offset());
                    for (int i = 0; i < r.bufferCount(); i++) {
                        copy.addBuffer(r.buffer(i), r.bufferOffset(i), r.bufferLength(i));
                    }
                    for (int i = 0; i < r.rangeCount(); i++) {
                        copy.addRange(r.rangeOffset(i), r.rangeLength(i), r.rangeMayUnmap(i));
                    }
                    return copy;
                }

                private void execute(BlockRequest r) {
                    if (r.op() == BlockRequest.FLUSH && failFlushes) {
                        r.complete(BlockRequest.STATUS_IOERR);
                    } else if (r.op() == BlockRequest.FLUSH) {
                        r.complete(BlockRequest.STATUS_OK);
                    } else {
                        mem.submit(r);
                    }
                }

                @Override
                public int poll() {
                    List<BlockRequest> now = new ArrayList<>(held);
                    held.clear();
                    for (BlockRequest r : now) {
                        r.complete(r.op() == BlockRequest.FLUSH && failFlushes ? BlockRequest.STATUS_IOERR
                                : BlockRequest.STATUS_OK);
                    }
                    return now.size();
                }

                @Override
                public int inflight() {
                    return held.size();
                }
            };
        }
    }

    void setUp(boolean packed, BlockBackend b, boolean negotiateConfigWce) {
        driver = DriverConfig.of(QSIZE).eventIdx(true).indirect(true).dataRegions(2, 4 << 20).build(packed);
        queue = driver.newDeviceQueue();
        backend = b;
        device = new VirtioBlkDevice(b, new VirtioBlkSettings(1, QSIZE, 512, "wt", packed));
        long features = device.deviceFeatures() | (negotiateConfigWce ? device.configWriteFeatures() : 0);
        handler = device.openQueue(0, features, QSIZE);
    }

    void setWriteback(int value) {
        long features = device.deviceFeatures() | device.configWriteFeatures();
        assertNull(device.writeConfig(VirtioBlk.CONFIG_WRITEBACK_OFFSET, new byte[] {(byte) value}, features));
    }

    @AfterEach
    void tearDown() {
        if (handler != null) {
            handler.close();
        }
        if (backend != null) {
            backend.close();
        }
        if (driver != null) {
            driver.close();
        }
    }

    /** Runs the device until {@code n} used elements came back (asynchronous backends need several rounds). */
    List<Long> serve(int n) {
        List<Long> tokens = new ArrayList<>();
        long deadline = System.nanoTime() + 10_000_000_000L; // io_uring: the kernel completes in its own time
        while (tokens.size() < n && System.nanoTime() < deadline) {
            handler.process(queue, 64);
            queue.publish();
            while (driver.reap(used)) {
                tokens.add(used.token);
            }
        }
        assertEquals(n, tokens.size(), "used elements");
        assertEquals(0, handler.inflight());
        return tokens;
    }

    BlkRequests.Request write(long sector, byte[] data, long token) {
        var r = BlkRequests.add(driver, VirtioBlk.T_OUT, sector, data.length, 2, false, token);
        driver.memory().write(r.data(), data);
        return r;
    }

    BlkRequests.Request ranges(int type, long sector, int sectors, int flags, long token) {
        var r = BlkRequests.add(driver, type, 0, 16, 1, false, token);
        MemorySegment v = driver.memory().view(r.data(), 16);
        v.set(LE_LONG, 0, sector);
        v.set(LE_INT, 8, sectors);
        v.set(LE_INT, 12, flags);
        return r;
    }

    byte status(BlkRequests.Request r) {
        return BlkRequests.status(driver, r);
    }

    static byte[] random(int seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void writethroughFlushesAfterEveryWriteAndWritebackDoesNot(boolean packed) {
        LoggingBackend b = new LoggingBackend(false);
        setUp(packed, b, true);
        var w1 = write(0, random(1, 4096), 1);
        serve(1);
        assertEquals(VirtioBlk.S_OK, status(w1));
        assertEquals(List.of("write"), b.log, "writeback: no flush of our own");

        setWriteback(VirtioBlk.WRITETHROUGH);
        assertEquals(List.of("write", "device-flush"), b.log, "the switch flushes what was written before");
        b.log.clear();
        var w2 = write(8, random(2, 4096), 2);
        serve(1);
        var d = ranges(VirtioBlk.T_DISCARD, 100, 8, 0, 3);
        serve(1);
        var z = ranges(VirtioBlk.T_WRITE_ZEROES, 200, 8, VirtioBlk.WRITE_ZEROES_FLAG_UNMAP, 4);
        serve(1);
        var rd = BlkRequests.add(driver, VirtioBlk.T_IN, 8, 4096, 1, true, 5);
        serve(1);
        var fl = BlkRequests.add(driver, VirtioBlk.T_FLUSH, 0, 0, 0, false, 6);
        serve(1);
        assertEquals(List.of("write", "flush", "discard", "flush", "write-zeroes", "flush", "read", "flush"), b.log,
                "a flush after each write, discard and write-zeroes; none after a read; the driver's own flush as is");
        for (var r : List.of(w2, d, z, rd, fl)) {
            assertEquals(VirtioBlk.S_OK, status(r));
        }
        assertArrayEquals(random(2, 4096), driver.memory().read(rd.data(), 4096));
        assertEquals(4, handler.stats().flushes(), "3 writethrough flushes and the driver's");
        assertEquals(3, handler.stats().writeThroughFlushes());
        assertEquals(8192, handler.stats().writtenBytes(), "the writes are counted as writes");

        setWriteback(VirtioBlk.WRITEBACK);
        b.log.clear();
        write(16, random(3, 512), 7);
        serve(1);
        assertEquals(List.of("write"), b.log, "back in writeback mode");
        assertEquals(3, handler.stats().writeThroughFlushes());
    }

    @Test
    void failedWritesAreNotFlushedAndAFailedFlushFailsTheWrite() {
        LoggingBackend b = new LoggingBackend(false);
        setUp(false, b, true);
        setWriteback(VirtioBlk.WRITETHROUGH);
        b.log.clear();
        var beyond = write(CAPACITY / 512, random(4, 512), 1);
        serve(1);
        assertEquals(VirtioBlk.S_IOERR, status(beyond));
        assertEquals(List.of(), b.log, "refused before the backend: nothing to make durable");

        b.failFlushes = true;
        var w = write(0, random(5, 512), 2);
        serve(1);
        assertEquals(List.of("write", "flush"), b.log);
        assertEquals(VirtioBlk.S_IOERR, status(w), "written but not durable: the driver must not see OK");
        assertEquals(2, handler.stats().ioErrors(), "both requests failed");
        assertEquals(0, handler.stats().writeThroughFlushes());
        assertEquals(0, handler.stats().writtenBytes());
    }

    @Test
    void withoutConfigWceNegotiatedTheDriverIsInWritebackMode() {
        LoggingBackend b = new LoggingBackend(false);
        setUp(false, b, false);
        setWriteback(VirtioBlk.WRITETHROUGH); // e.g. left by an earlier driver; this one sends its own FLUSHes
        b.log.clear();
        write(0, random(6, 512), 1);
        serve(1);
        assertEquals(List.of("write"), b.log);
    }

    @Test
    void configWceWithoutFlushMeansWritethrough() {
        LoggingBackend b = new LoggingBackend(false);
        driver = DriverConfig.of(QSIZE).eventIdx(true).indirect(true).dataRegions(2, 4 << 20).build(false);
        queue = driver.newDeviceQueue();
        backend = b;
        device = new VirtioBlkDevice(b, new VirtioBlkSettings(1, QSIZE, 512, "wt", false));
        long features = (device.deviceFeatures() | device.configWriteFeatures()) & ~VirtioBlk.bit(VirtioBlk.F_FLUSH);
        handler = device.openQueue(0, features, QSIZE);
        assertTrue(device.writeback());
        write(0, random(7, 512), 1);
        serve(1);
        assertEquals(List.of("write", "flush"), b.log, "§5.2.5: CONFIG_WCE without FLUSH starts in writethrough");
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void onAnAsynchronousBackendTheStatusWaitsForTheFlush(boolean packed) {
        LoggingBackend b = new LoggingBackend(true);
        setUp(packed, b, true);
        setWriteback(VirtioBlk.WRITETHROUGH);
        b.log.clear();
        var w = write(0, random(8, 4096), 1);
        handler.process(queue, 64); // submitted
        handler.process(queue, 64); // the write completed; the flush is submitted
        queue.publish();
        assertEquals(List.of("write", "flush"), b.log);
        assertFalse(driver.reap(used), "no used element before the flush completed");
        assertEquals(BlkRequests.STATUS_UNSET, status(w), "no status before the flush completed");
        assertEquals(1, handler.inflight());
        handler.process(queue, 64); // the flush completed
        queue.publish();
        assertTrue(driver.reap(used));
        assertEquals(VirtioBlk.S_OK, status(w));
        assertEquals(0, handler.inflight());
        assertEquals(1, handler.stats().writeThroughFlushes());
    }

    @ParameterizedTest(name = "async={0}")
    @ValueSource(booleans = {false, true})
    void theWritesOfOneBatchShareOneFlush(boolean async) {
        LoggingBackend b = new LoggingBackend(async);
        setUp(false, b, true);
        setWriteback(VirtioBlk.WRITETHROUGH);
        b.log.clear();
        List<BlkRequests.Request> ws = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            ws.add(write(i * 8, random(10 + i, 4096), i));
        }
        serve(5);
        assertEquals(List.of("write", "write", "write", "write", "write", "flush"), b.log);
        for (var r : ws) {
            assertEquals(VirtioBlk.S_OK, status(r));
        }
        assertEquals(1, handler.stats().writeThroughFlushes());
        assertEquals(5 * 4096, handler.stats().writtenBytes());

        b.failFlushes = true;
        b.log.clear();
        ws.clear();
        for (int i = 0; i < 3; i++) {
            ws.add(write(i * 8, random(20 + i, 512), 10 + i));
        }
        serve(3);
        assertEquals(List.of("write", "write", "write", "flush"), b.log);
        for (var r : ws) {
            assertEquals(VirtioBlk.S_IOERR, status(r), "a failed flush fails every write it covered");
        }
        assertEquals(3, handler.stats().ioErrors());
    }

    /** The real file backends: writethrough data lands in the file, one fdatasync (or io_uring FSYNC) per batch. */
    @ParameterizedTest(name = "io_uring={0}")
    @ValueSource(booleans = {false, true})
    void fileBackendsFlushInWritethroughMode(boolean ioUring) throws IOException {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[(int) CAPACITY]);
        if (ioUring) {
            BlockBackend b = new IoUringFileBackend(img, false, IoUringFileBackend.Options.defaults().withQueueDepth(QSIZE));
            try {
                setUp(false, b, true); // opens the queue's ring
            } catch (RuntimeException e) {
                Assumptions.abort("io_uring unavailable: " + e.getMessage());
            }
        } else {
            setUp(false, new FileBackend(img, false), true);
        }
        setWriteback(VirtioBlk.WRITETHROUGH);
        Random rnd = new Random(30);
        byte[] model = new byte[(int) CAPACITY];
        long token = 0;
        for (int round = 0; round < 20; round++) {
            int n = 1 + rnd.nextInt(6);
            for (int i = 0; i < n; i++) { // disjoint within a batch: an asynchronous backend may reorder them
                int sectors = 1 + rnd.nextInt(16);
                long sector = i * 32L + rnd.nextInt(16) + (round % 8) * 256L;
                byte[] data = new byte[sectors * 512];
                rnd.nextBytes(data);
                var r = write(sector, data, token++);
                System.arraycopy(data, 0, model, (int) sector * 512, data.length);
                assertNotNull(r);
            }
            serve(n);
        }
        long wt = handler.stats().writeThroughFlushes();
        assertTrue(wt >= 20 && wt <= token, "one flush per batch at most per write: " + wt + " for " + token + " writes");
        assertEquals(0, handler.stats().ioErrors());
        assertArrayEquals(model, Files.readAllBytes(img));
    }
}
