package io.github.vduse4j.blockdev.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.blockdev.uring.IoUringRing;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.Supplier;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The io_uring file backend against the real kernel io_uring: data through the rings (many requests in flight,
 * scattered buffers, against a model), FLUSH, DISCARD / WRITE_ZEROES and their fallbacks, end of file, SQ
 * back-pressure, O_DIRECT, batching, and no allocation per request. Skipped with the reason where io_uring_setup
 * fails; {@link #fallsBackToPreadWhereIoUringIsUnavailable} runs everywhere.
 */
class IoUringFileBackendTest {
    static final Path SHM = Path.of("/dev/shm");
    static String unavailable;

    @TempDir
    Path dir;

    final Arena arena = Arena.ofAuto();

    @BeforeAll
    static void probe() {
        unavailable = IoUringRing.probe();
    }

    static void assumeIoUring() {
        assumeTrue(unavailable == null, () -> "io_uring unavailable on this host: " + unavailable);
    }

    /** A directory on disk (the JUnit temp dir, ext4 here) or on tmpfs. */
    Path where(String fs) throws IOException {
        if (fs.equals("tmpfs")) {
            assumeTrue(Files.isDirectory(SHM) && Files.isWritable(SHM), "no writable /dev/shm");
            Path d = Files.createTempDirectory(SHM, "vduse4j-iouring-test");
            d.toFile().deleteOnExit(); // after the files in it (deleteOnExit runs in reverse order)
            return d;
        }
        return dir;
    }

    static Path file(Path d, String name, byte[] contents) throws IOException {
        Path f = d.resolve(name);
        Files.write(f, contents);
        f.toFile().deleteOnExit();
        return f;
    }

    /** Drives a queue as the virtio-blk handler does: slots share one scratch list; completions recorded by slot. */
    static final class Driver {
        final BackendQueue q;
        final BlockRequest.Scratch scratch;
        final BlockRequest[] slots;
        final int[] status;
        final int[] done;
        int doneCount;

        Driver(BackendQueue q, int slotCount, int maxBuffers) {
            this.q = q;
            this.scratch = new BlockRequest.Scratch(maxBuffers, 16);
            this.slots = new BlockRequest[slotCount];
            this.status = new int[slotCount];
            this.done = new int[slotCount];
            for (int i = 0; i < slotCount; i++) {
                slots[i] = new BlockRequest(i, scratch, r -> {
                    status[r.slot()] = r.status();
                    done[doneCount++] = r.slot();
                });
                status[i] = -1;
            }
        }

        /** Polls until nothing is in flight; returns the status of {@code slot} (for single requests). */
        int drain(int slot) {
            drainAll();
            return status[slot];
        }

        void drainAll() {
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (q.inflight() > 0) {
                q.poll();
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("requests still in flight after 30 s: " + q.inflight());
                }
            }
        }

        int run(BlockRequest r) {
            status[r.slot()] = -1;
            doneCount = 0;
            q.submit(r);
            return drain(r.slot());
        }
    }

    IoUringFileBackend open(Path f, IoUringFileBackend.Options o) {
        return new IoUringFileBackend(f, false, o);
    }

    @ParameterizedTest
    @ValueSource(strings = {"disk", "tmpfs"})
    void manyRequestsInFlightMatchAModel(String fs) throws IOException {
        assumeIoUring();
        int size = 8 << 20;
        byte[] model = new byte[size];
        new Random(1).nextBytes(model);
        Path f = file(where(fs), "model.img", model);
        int slotCount = 64;
        int maxBuffers = 24; // > IOV_PER_IO: some requests span several READV/WRITEV ios
        int maxLen = 128 << 10;
        try (IoUringFileBackend b = open(f, IoUringFileBackend.Options.defaults().withQueueDepth(slotCount))) {
            BackendQueue q = b.openQueue(0);
            Driver d = new Driver(q, slotCount, maxBuffers);
            MemorySegment guest = arena.allocate((long) slotCount * maxLen, 4096);
            Random rnd = new Random(42);
            boolean[] busy = new boolean[size / 512]; // sectors of requests in flight: no overlaps
            long[] reqOff = new long[slotCount];
            int[] reqLen = new int[slotCount];
            boolean[] reqRead = new boolean[slotCount];
            int[][] bufStart = new int[slotCount][];
            int[][] bufLen = new int[slotCount][];
            int[] free = new int[slotCount];
            int freeCount = slotCount;
            for (int i = 0; i < slotCount; i++) {
                free[i] = i;
            }
            int submitted = 0, completed = 0, reads = 0, multiIo = 0;
            int total = 3000;
            while (completed < total) {
                // submit a random burst, as a virtio-blk round would
                int burst = 1 + rnd.nextInt(16);
                for (int k = 0; k < burst && freeCount > 0 && submitted < total; k++) {
                    int sectors = 1 + rnd.nextInt(maxLen / 512);
                    int len = sectors * 512;
                    long off = 512L * rnd.nextInt(size / 512 - sectors + 1);
                    boolean overlap = false;
                    for (int s = 0; s < sectors && !overlap; s++) {
                        overlap = busy[(int) (off / 512) + s];
                    }
                    if (overlap) {
                        continue;
                    }
                    int slot = free[--freeCount];
                    for (int s = 0; s < sectors; s++) {
                        busy[(int) (off / 512) + s] = true;
                    }
                    BlockRequest r = d.slots[slot];
                    boolean read = rnd.nextBoolean();
                    // scatter: split into n pieces (multiples of 512), placed in shuffled order in the slot's memory
                    int n = Math.min(1 + rnd.nextInt(maxBuffers), sectors);
                    int[] cuts = cut(rnd, sectors, n);
                    int[] starts = new int[n];
                    int[] order = shuffled(rnd, n);
                    int at = 0;
                    for (int j : order) {
                        starts[j] = at;
                        at += cuts[j] * 512;
                    }
                    long base = (long) slot * maxLen;
                    r.reset(read ? BlockRequest.READ : BlockRequest.WRITE, off);
                    int[] lens = new int[n];
                    long pos = off;
                    for (int j = 0; j < n; j++) {
                        lens[j] = cuts[j] * 512;
                        if (read) {
                            guest.asSlice(base + starts[j], lens[j]).fill((byte) 0x5a);
                        } else {
                            byte[] data = new byte[lens[j]];
                            rnd.nextBytes(data);
                            MemorySegment.copy(data, 0, guest, ValueLayout.JAVA_BYTE, base + starts[j], lens[j]);
                            System.arraycopy(data, 0, model, (int) pos, lens[j]);
                        }
                        r.addBuffer(guest, base + starts[j], lens[j]);
                        pos += lens[j];
                    }
                    reqOff[slot] = off;
                    reqLen[slot] = len;
                    reqRead[slot] = read;
                    bufStart[slot] = starts;
                    bufLen[slot] = lens;
                    reads += read ? 1 : 0;
                    multiIo += n > IoUringFileQueue.IOV_PER_IO ? 1 : 0;
                    d.status[slot] = -1;
                    q.submit(r);
                    submitted++;
                }
                q.poll();
                for (int k = 0; k < d.doneCount; k++) {
                    int slot = d.done[k];
                    assertEquals(BlockRequest.STATUS_OK, d.status[slot], "request at " + reqOff[slot]);
                    long pos = reqOff[slot];
                    long base = (long) slot * maxLen;
                    for (int j = 0; j < bufLen[slot].length; j++) {
                        if (reqRead[slot]) {
                            byte[] got = guest.asSlice(base + bufStart[slot][j], bufLen[slot][j]).toArray(ValueLayout.JAVA_BYTE);
                            assertArrayEquals(Arrays.copyOfRange(model, (int) pos, (int) pos + bufLen[slot][j]), got,
                                    "read at " + pos);
                        }
                        pos += bufLen[slot][j];
                    }
                    for (int s = 0; s < reqLen[slot] / 512; s++) {
                        busy[(int) (reqOff[slot] / 512) + s] = false;
                    }
                    free[freeCount++] = slot;
                    completed++;
                }
                d.doneCount = 0;
            }
            assertEquals(0, q.inflight());
            assertTrue(reads > total / 3 && reads < 2 * total / 3, "mix of reads and writes: " + reads);
            assertTrue(multiIo > 100, "requests split over several ios: " + multiIo);
            q.close();
        }
        assertArrayEquals(model, Files.readAllBytes(f), "file contents after all writes");
    }

    /** {@code n} positive parts summing to {@code total}. */
    static int[] cut(Random rnd, int total, int n) {
        int[] parts = new int[n];
        Arrays.fill(parts, 1);
        for (int left = total - n; left > 0; left--) {
            parts[rnd.nextInt(n)]++;
        }
        return parts;
    }

    static int[] shuffled(Random rnd, int n) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
        return a;
    }

    /** The completion eventfd the poller sleeps on: quiet while nothing completed, readable once a read has. */
    @Test
    void aCompletionMakesTheCompletionFdReadable() throws IOException {
        assumeIoUring();
        Path f = file(dir, "cfd.img", new byte[1 << 20]);
        Poll poll = new Poll(1);
        try (IoUringFileBackend b = open(f, IoUringFileBackend.Options.defaults())) {
            IoUringFileQueue q = (IoUringFileQueue) b.openQueue(0);
            int cfd = q.completionFd();
            assertTrue(cfd >= 0, "the ring accepted IORING_REGISTER_EVENTFD");
            poll.add(cfd, Poll.POLLIN);
            assertEquals(0, poll.poll(0), "nothing completed yet");
            Driver d = new Driver(q, 1, 1);
            BlockRequest r = d.slots[0];
            r.reset(BlockRequest.READ, 4096);
            r.addBuffer(arena.allocate(4096, 4096), 0, 4096);
            q.submit(r);
            q.poll(); // the poller's reap step is also where SQEs go to the kernel
            // Not reaped here: the thread sleeps in poll(2) and the kernel must still post the CQE and signal.
            assertEquals(1, poll.poll(10_000), "the kernel signalled the completion");
            assertEquals(BlockRequest.STATUS_OK, d.drain(0));
            assertTrue(EventFd.consume(cfd) >= 1);
            assertEquals(0, poll.poll(0), "consumed: quiet again");
            q.close();
        }
    }

    @Test
    void writeThenFlushReachesTheFile() throws IOException {
        assumeIoUring();
        Path f = file(dir, "flush.img", new byte[1 << 20]);
        try (IoUringFileBackend b = open(f, IoUringFileBackend.Options.defaults())) {
            IoUringFileQueue q = (IoUringFileQueue) b.openQueue(0);
            assertTrue(q.usesFixedFile(), "the file is registered with the ring");
            Driver d = new Driver(q, 2, 4);
            MemorySegment buf = arena.allocate(8192, 4096);
            byte[] data = new byte[8192];
            new Random(7).nextBytes(data);
            MemorySegment.copy(data, 0, buf, ValueLayout.JAVA_BYTE, 0, data.length);
            BlockRequest w = d.slots[0];
            w.reset(BlockRequest.WRITE, 65536);
            w.addBuffer(buf, 4096, 4096);
            w.addBuffer(buf, 0, 4096);
            BlockRequest fl = d.slots[1];
            q.submit(w);
            fl.reset(BlockRequest.FLUSH, 0);
            q.submit(fl);
            d.drainAll();
            assertEquals(BlockRequest.STATUS_OK, d.status[0]);
            assertEquals(BlockRequest.STATUS_OK, d.status[1]);
            byte[] disk = Files.readAllBytes(f);
            assertArrayEquals(Arrays.copyOfRange(data, 4096, 8192), Arrays.copyOfRange(disk, 65536, 69632));
            assertArrayEquals(Arrays.copyOfRange(data, 0, 4096), Arrays.copyOfRange(disk, 69632, 73728));
            q.close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"disk", "tmpfs"})
    void discardAndWriteZeroesZeroTheFile(String fs) throws IOException {
        assumeIoUring();
        byte[] ff = new byte[1 << 20];
        Arrays.fill(ff, (byte) 0xff);
        Path f = file(where(fs), "ff.img", ff);
        try (IoUringFileBackend b = open(f, IoUringFileBackend.Options.defaults())) {
            BackendQueue q = b.openQueue(0);
            Driver d = new Driver(q, 2, 4);
            BlockRequest r = d.slots[0];
            r.reset(BlockRequest.DISCARD, 0);
            r.addRange(0, 65536, false);
            r.addRange(98304, 4096, false);
            assertEquals(BlockRequest.STATUS_OK, d.run(r));
            r.reset(BlockRequest.WRITE_ZEROES, 0);
            r.addRange(131072, 4096, false); // zero range (tmpfs: EOPNOTSUPP -> punch hole)
            r.addRange(200704, 8192, true);  // may unmap: punch hole
            assertEquals(BlockRequest.STATUS_OK, d.run(r));
            byte[] disk = Files.readAllBytes(f);
            assertEquals(1 << 20, disk.length, "size kept (FALLOC_FL_KEEP_SIZE)");
            for (int i = 0; i < disk.length; i += 512) {
                boolean zero = i < 65536 || (i >= 98304 && i < 102400) || (i >= 131072 && i < 135168)
                        || (i >= 200704 && i < 208896);
                assertEquals(zero ? 0 : (byte) 0xff, disk[i], "offset " + i);
            }
            q.close();
        }
    }

    @Test
    void writeZeroesFallsBackToWritingZerosInChunks() throws IOException {
        assumeIoUring();
        int size = 4 << 20;
        byte[] ff = new byte[size];
        Arrays.fill(ff, (byte) 0xff);
        Path f = file(dir, "zw.img", ff);
        try (IoUringFileBackend b = open(f, IoUringFileBackend.Options.defaults())) {
            IoUringFileQueue q = (IoUringFileQueue) b.openQueue(0);
            q.zeroByWriting = true; // as on a file system without any fallocate support
            Driver d = new Driver(q, 1, 4);
            BlockRequest r = d.slots[0];
            r.reset(BlockRequest.WRITE_ZEROES, 0);
            r.addRange(512, (5 << 19) + 1024, false); // 2.5 MiB + 1 KiB: three 1 MiB chunks
            assertEquals(BlockRequest.STATUS_OK, d.run(r));
            assertTrue(q.resubmits >= 2, "continued chunk by chunk: " + q.resubmits);
            byte[] disk = Files.readAllBytes(f);
            for (int i = 0; i < size; i += 512) {
                boolean zero = i >= 512 && i < 512 + (5 << 19) + 1024;
                assertEquals(zero ? 0 : (byte) 0xff, disk[i], "offset " + i);
            }
            q.close();
        }
    }

    @Test
    void readingPastTheEndOfAShrunkFileFails() throws IOException {
        assumeIoUring();
        Path f = file(dir, "shrink.img", new byte[65536]);
        try (IoUringFileBackend b = open(f, IoUringFileBackend.Options.defaults())) {
            IoUringFileQueue q = (IoUringFileQueue) b.openQueue(0);
            Driver d = new Driver(q, 2, 4);
            byte[] tail = new byte[4096 + 512];
            Arrays.fill(tail, (byte) 7);
            Files.write(f, tail); // shrinks under the export to 4.5 KiB
            MemorySegment buf = arena.allocate(8192, 4096);
            BlockRequest r = d.slots[0];
            r.reset(BlockRequest.READ, 4096); // 512 bytes there, then end of file
            r.addBuffer(buf, 0, 4096);
            assertEquals(BlockRequest.STATUS_IOERR, d.run(r));
            assertEquals(7, buf.get(ValueLayout.JAVA_BYTE, 511), "the short part was read");
            assertTrue(q.resubmits >= 1, "the remainder was resubmitted after the short read");
            r.reset(BlockRequest.READ, 32768); // wholly past the end
            r.addBuffer(buf, 0, 4096);
            assertEquals(BlockRequest.STATUS_IOERR, d.run(r));
            r.reset(BlockRequest.READ, 0); // still inside: fine
            r.addBuffer(buf, 0, 4096);
            assertEquals(BlockRequest.STATUS_OK, d.run(r));
            assertEquals(4608, b.refreshCapacity());
            q.close();
        }
    }

    @Test
    void heapAndOutOfBoundsBuffersAreRejectedNotPassedToTheKernel() throws IOException {
        assumeIoUring();
        Path f = file(dir, "bad.img", new byte[65536]);
        try (IoUringFileBackend b = open(f, IoUringFileBackend.Options.defaults())) {
            BackendQueue q = b.openQueue(0);
            Driver d = new Driver(q, 1, 4);
            BlockRequest r = d.slots[0];
            r.reset(BlockRequest.READ, 0);
            r.addBuffer(MemorySegment.ofArray(new byte[4096]), 0, 4096);
            assertEquals(BlockRequest.STATUS_IOERR, d.run(r));
            MemorySegment small = arena.allocate(4096);
            r.reset(BlockRequest.READ, 0);
            r.addBuffer(small, 2048, 4096);
            assertEquals(BlockRequest.STATUS_IOERR, d.run(r));
            Arena closed = Arena.ofConfined();
            MemorySegment gone = closed.allocate(4096);
            closed.close();
            r.reset(BlockRequest.WRITE, 0);
            r.addBuffer(gone, 0, 4096);
            assertEquals(BlockRequest.STATUS_IOERR, d.run(r));
            assertEquals(0, q.inflight());
            q.close();
        }
    }

    @Test
    void moreRequestsThanSqEntriesAndThanTheIoPoolAllComplete() throws IOException {
        assumeIoUring();
        int size = 4 << 20;
        Path f = file(dir, "bp.img", new byte[size]);
        // 4 SQ entries, depth 8 -> 64 ios; 200 requests submitted without polling, 20 buffers (3 ios) each
        IoUringFileBackend.Options o = IoUringFileBackend.Options.defaults().withQueueDepth(8).withRingEntries(4);
        int requests = 200, buffers = 20;
        try (IoUringFileBackend b = open(f, o)) {
            IoUringFileQueue q = (IoUringFileQueue) b.openQueue(0);
            assertEquals(4, q.ring().sqEntries());
            assertEquals(64, q.ioCapacity());
            Driver d = new Driver(q, requests, buffers);
            MemorySegment guest = arena.allocate((long) requests * buffers * 512, 4096);
            byte[] expected = new byte[requests * buffers * 512];
            new Random(9).nextBytes(expected);
            MemorySegment.copy(expected, 0, guest, ValueLayout.JAVA_BYTE, 0, expected.length);
            for (int i = 0; i < requests; i++) {
                BlockRequest r = d.slots[i];
                r.reset(BlockRequest.WRITE, (long) i * buffers * 512);
                for (int j = 0; j < buffers; j++) {
                    r.addBuffer(guest, ((long) i * buffers + j) * 512, 512);
                }
                q.submit(r); // never polled in between: the SQ fills, ios park, then submit waits for the kernel
            }
            assertTrue(q.waits > 0, "submit waited for free ios");
            d.drainAll();
            assertEquals(requests, d.doneCount);
            for (int i = 0; i < requests; i++) {
                assertEquals(BlockRequest.STATUS_OK, d.status[i], "request " + i);
            }
            assertArrayEquals(expected, Arrays.copyOf(Files.readAllBytes(f), expected.length));
            q.close();
        }
    }

    @Test
    void aRoundOfSubmitsGoesToTheKernelWithOneEnter() throws IOException {
        assumeIoUring();
        Path f = file(dir, "batch.img", new byte[1 << 20]);
        try (IoUringFileBackend b = open(f, IoUringFileBackend.Options.defaults().withQueueDepth(64))) {
            IoUringFileQueue q = (IoUringFileQueue) b.openQueue(0);
            Driver d = new Driver(q, 32, 1);
            MemorySegment guest = arena.allocate(32 * 4096, 4096);
            for (int i = 0; i < 32; i++) {
                d.slots[i].reset(BlockRequest.READ, i * 4096L);
                d.slots[i].addBuffer(guest, i * 4096L, 4096);
                q.submit(d.slots[i]);
            }
            assertEquals(32, q.inflight());
            assertEquals(0, q.enters, "submit only writes SQEs");
            assertEquals(32, q.ring().unsubmitted());
            q.poll();
            assertEquals(1, q.enters, "one io_uring_enter for the whole round");
            assertEquals(0, q.ring().unsubmitted());
            d.drainAll();
            assertEquals(32, d.doneCount);
            q.close();
        }
    }

    @Test
    void directIoWithAlignedBuffersRoundTripsAndMisalignedOnesFail() throws IOException {
        assumeIoUring();
        Path f = file(dir, "direct.img", new byte[1 << 20]);
        IoUringFileBackend b;
        try {
            b = open(f, IoUringFileBackend.Options.defaults().withDirect(true));
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().contains("O_DIRECT") && !e.getMessage().contains("\n"), e.getMessage());
            assumeTrue(false, "this file system refuses O_DIRECT: " + e.getMessage());
            return;
        }
        try (b) {
            assertTrue(b.describe().contains("O_DIRECT"));
            BackendQueue q = b.openQueue(0);
            Driver d = new Driver(q, 1, 4);
            MemorySegment buf = arena.allocate(3 * 4096, 4096);
            byte[] data = new byte[8192];
            new Random(5).nextBytes(data);
            MemorySegment.copy(data, 0, buf, ValueLayout.JAVA_BYTE, 0, data.length);
            BlockRequest r = d.slots[0];
            r.reset(BlockRequest.WRITE, 16384);
            r.addBuffer(buf, 4096, 4096);
            r.addBuffer(buf, 0, 4096);
            assertEquals(BlockRequest.STATUS_OK, d.run(r));
            MemorySegment back = arena.allocate(8192, 4096);
            r.reset(BlockRequest.READ, 16384);
            r.addBuffer(back, 0, 8192);
            assertEquals(BlockRequest.STATUS_OK, d.run(r));
            assertArrayEquals(Arrays.copyOfRange(data, 4096, 8192), back.asSlice(0, 4096).toArray(ValueLayout.JAVA_BYTE));
            assertArrayEquals(Arrays.copyOfRange(data, 0, 4096), back.asSlice(4096, 4096).toArray(ValueLayout.JAVA_BYTE));
            // O_DIRECT needs aligned memory: a buffer 1 byte off fails (EINVAL) instead of being bounced
            r.reset(BlockRequest.READ, 0);
            r.addBuffer(buf, 1, 4096);
            assertEquals(BlockRequest.STATUS_IOERR, d.run(r));
            q.close();
        }
    }

    /**
     * The kernel refuses to pin the driver's buffers (EFAULT; secret memory and O_DIRECT here, a VDUSE bounce mapping
     * on Linux 6.12 in the guest): the first io that meets it and every data io after it are staged copies, one
     * buffer (READ/WRITE) or several (READV/WRITEV), while FLUSH still goes through the ring.
     */
    @Test
    void buffersTheKernelCannotPinAreStagedAfterTheFirstEfault() throws IOException {
        assumeIoUring();
        Path f = file(dir, "unpinnable.img", new byte[4 << 20]);
        MemorySegment guest = UnpinnableMemory.map(arena, 1 << 20);
        UnpinnableMemory.assumeTheKernelRefusesToPin(f, guest);
        byte[] data = new byte[1 << 20];
        new Random(13).nextBytes(data);
        MemorySegment.copy(data, 0, guest, ValueLayout.JAVA_BYTE, 0, data.length);
        try (IoUringFileBackend b = open(f, IoUringFileBackend.Options.defaults().withDirect(true))) {
            IoUringFileQueue q = (IoUringFileQueue) b.openQueue(0);
            Driver d = new Driver(q, 4, 16);
            BlockRequest one = d.slots[0];
            one.reset(BlockRequest.WRITE, 0);
            one.addBuffer(guest, 0, 512 << 10); // one buffer: OP_WRITE, EFAULT, then staged in two chunks
            assertEquals(BlockRequest.STATUS_OK, d.run(one));
            assertTrue(b.staging() && q.staging != null, "the queue switched to staged copies");
            BlockRequest many = d.slots[1];
            many.reset(BlockRequest.WRITE, 512 << 10);
            for (int i = 15; i >= 0; i--) { // 16 scattered buffers: two WRITEV ios, staged from the start
                many.addBuffer(guest, (512 << 10) + i * 32768L, 32768);
            }
            assertEquals(BlockRequest.STATUS_OK, d.run(many));
            BlockRequest flush = d.slots[2];
            flush.reset(BlockRequest.FLUSH, 0);
            assertEquals(BlockRequest.STATUS_OK, d.run(flush));
            byte[] onDisk = Files.readAllBytes(f);
            assertArrayEquals(Arrays.copyOfRange(data, 0, 512 << 10), Arrays.copyOfRange(onDisk, 0, 512 << 10));
            for (int i = 0; i < 16; i++) {
                int at = (512 << 10) + (15 - i) * 32768;
                assertArrayEquals(Arrays.copyOfRange(data, (512 << 10) + i * 32768, (512 << 10) + (i + 1) * 32768),
                        Arrays.copyOfRange(onDisk, at, at + 32768), "buffer " + i);
            }
            MemorySegment back = UnpinnableMemory.map(arena, 1 << 20);
            BlockRequest read = d.slots[3];
            read.reset(BlockRequest.READ, 0);
            read.addBuffer(back, 0, 1 << 20);
            assertEquals(BlockRequest.STATUS_OK, d.run(read));
            assertArrayEquals(Arrays.copyOf(onDisk, 1 << 20), back.toArray(ValueLayout.JAVA_BYTE));
            assertEquals(2L << 20, q.staging.stagedBytes); // 1 MiB written, 1 MiB read
            q.close();
        }
    }

    @Test
    void directOnTmpfsIsAcceptedOrRefusedWithOneLine() throws IOException {
        assumeIoUring();
        Path f = file(where("tmpfs"), "direct.img", new byte[65536]);
        try (IoUringFileBackend b = open(f, IoUringFileBackend.Options.defaults().withDirect(true))) {
            assertTrue(b.describe().contains("O_DIRECT")); // tmpfs has accepted O_DIRECT since Linux 6.6
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().startsWith("cannot open " + f + " with O_DIRECT"), e.getMessage());
            assertFalse(e.getMessage().contains("\n"));
        }
    }

    @Test
    void theDatapathDoesNotAllocatePerRequest() throws IOException {
        assumeIoUring();
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        assumeTrue(threads.isThreadAllocatedMemorySupported() && threads.isThreadAllocatedMemoryEnabled());
        Path f = file(dir, "alloc.img", new byte[1 << 20]);
        try (IoUringFileBackend b = open(f, IoUringFileBackend.Options.defaults().withQueueDepth(32))) {
            IoUringFileQueue q = (IoUringFileQueue) b.openQueue(0);
            Driver d = new Driver(q, 32, 12);
            MemorySegment guest = arena.allocate(32 * 12 * 512, 4096);
            int rounds = 2000;
            long tid = Thread.currentThread().threadId();
            long best = Long.MAX_VALUE;
            // Interpreted/C1 code allocates (errno capture slices, see docs/libc.md): measure windows until one
            // runs in C2 code.
            for (int window = 0; window < 30 && best > 0; window++) {
                long before = threads.getThreadAllocatedBytes(tid);
                long ops = rounds(q, d, guest, rounds);
                best = Math.min(best, threads.getThreadAllocatedBytes(tid) - before);
                assertEquals((long) rounds * 32, ops);
            }
            assertTrue(best < rounds * 32 / 10, best + " bytes allocated for " + rounds * 32 + " requests at best");
            q.close();
        }
    }

    /** Rounds of 32 requests (reads, writes of one and of 12 buffers, a flush): submit all, poll until done. */
    static long rounds(IoUringFileQueue q, Driver d, MemorySegment guest, int rounds) {
        long ops = 0;
        for (int round = 0; round < rounds; round++) {
            for (int i = 0; i < 32; i++) {
                BlockRequest r = d.slots[i];
                long base = i * 12 * 512L;
                if (i == 31) {
                    r.reset(BlockRequest.FLUSH, 0);
                } else if (i % 4 == 0) {
                    r.reset(BlockRequest.WRITE, base);
                    for (int j = 0; j < 12; j++) {
                        r.addBuffer(guest, base + (11 - j) * 512L, 512);
                    }
                } else {
                    r.reset((i & 1) == 0 ? BlockRequest.WRITE : BlockRequest.READ, base);
                    r.addBuffer(guest, base, 4096);
                }
                q.submit(r);
            }
            while (q.inflight() > 0) {
                q.poll();
            }
            ops += d.doneCount;
            d.doneCount = 0;
        }
        return ops;
    }

    @Test
    void engineChoiceDefaultsToPreadForBufferedAndIoUringForDirect() throws IOException {
        Path f = file(dir, "choice.img", new byte[65536]);
        // A real io_uring_setup failure supplies the reason (EINVAL for 0 entries; EPERM/ENOSYS where disabled).
        String reason = assertThrows(ErrnoException.class, () -> IoUringRing.open(0, 0, 0)).getMessage();
        try (BlockBackend b = IoUringFileBackend.openFile(f, false, null, false, 64, reason)) {
            assertInstanceOf(FileBackend.class, b, "buffered I/O defaults to pread/pwrite, io_uring or not");
            // and it serves requests
            BlockRequest.Scratch s = new BlockRequest.Scratch(1, 1);
            int[] st = {-1};
            BlockRequest r = new BlockRequest(0, s, x -> st[0] = x.status());
            MemorySegment buf = arena.allocate(4096, 4096);
            r.reset(BlockRequest.READ, 4096);
            r.addBuffer(buf, 0, 4096);
            b.openQueue(0).submit(r);
            assertEquals(BlockRequest.STATUS_OK, st[0]);
        }
        var asked = assertThrows(IllegalArgumentException.class,
                () -> IoUringFileBackend.openFile(f, false, "io_uring", false, 64, reason));
        assertTrue(asked.getMessage().startsWith("io_uring is unavailable here: "), asked.getMessage());
        assertTrue(asked.getMessage().endsWith("; export with --io-engine pread (or allow io_uring: sysctl"
                + " kernel.io_uring_disabled=0)"), asked.getMessage());
        var direct = assertThrows(IllegalArgumentException.class,
                () -> IoUringFileBackend.openFile(f, false, null, true, 64, reason));
        assertTrue(direct.getMessage().startsWith("--direct needs io_uring"), direct.getMessage());
        assertTrue(direct.getMessage().contains("--io-engine pread and without --direct"), direct.getMessage());
        var preadDirect = assertThrows(IllegalArgumentException.class,
                () -> IoUringFileBackend.openFile(f, false, "pread", true, 64, null));
        assertTrue(preadDirect.getMessage().contains("--direct needs --io-engine io_uring"), preadDirect.getMessage());
        try (BlockBackend b = IoUringFileBackend.openFile(f, false, "pread", false, 64)) {
            assertInstanceOf(FileBackend.class, b);
        }
        try (BlockBackend b = IoUringFileBackend.openFile(f, false, null, false, 64)) {
            assertInstanceOf(FileBackend.class, b, "the real probe is not even asked for buffered I/O");
        }
        if (unavailable == null) {
            try (BlockBackend b = IoUringFileBackend.openFile(f, false, "io_uring", false, 64)) {
                assertInstanceOf(IoUringFileBackend.class, b);
            }
        }
    }

    @Test
    void missingFileAndDirectoryAreOneLineErrors() {
        var missing = assertThrows(IllegalArgumentException.class,
                () -> new IoUringFileBackend(dir.resolve("nope"), false));
        assertTrue(missing.getMessage().contains("does not exist"), missing.getMessage());
        var directory = assertThrows(IllegalArgumentException.class, () -> new IoUringFileBackend(dir, false));
        assertTrue(directory.getMessage().contains("is a directory"), directory.getMessage());
        assertThrows(IllegalArgumentException.class, () -> IoUringFileBackend.Options.defaults().withQueueDepth(0));
    }
}
