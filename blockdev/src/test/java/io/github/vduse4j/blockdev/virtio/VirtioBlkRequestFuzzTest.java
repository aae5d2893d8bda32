package io.github.vduse4j.blockdev.virtio;

import static org.junit.jupiter.api.Assertions.*;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import io.github.vduse4j.blockdev.backend.BackendQueue;
import io.github.vduse4j.blockdev.backend.BlockBackend;
import io.github.vduse4j.blockdev.backend.BlockRequest;
import io.github.vduse4j.blockdev.backend.MemoryBackend;
import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.ring.RegionTable;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.testkit.BlkRequests;
import io.github.vduse4j.ring.testkit.ChainBuilder;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.DriverMemory;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * Coverage-guided fuzzing (Jazzer) of virtio-blk request parsing and validation (§5.2.6) in
 * {@link VirtioBlkQueueHandler}: the fuzzer writes requests (type, sector, header split or short or in the wrong
 * direction, data buffers of any length and direction, discard/write-zeroes range lists, GET_ID, status buffers of
 * any size) into split or packed rings, on a read-only or writable device, with a backend that completes at once or
 * later from poll().
 *
 * <p>Invariants: every request the backend is handed has a known op, sector-aligned offset and length inside the
 * device, buffers that add up to its length and each lie inside one mapping of the driver's memory table, ranges
 * inside the device, and no write of any kind on a read-only device; {@code process} never does more than its budget;
 * every chain added comes back exactly once in the used ring with a used length no larger than its device-writable
 * bytes; every request with a status byte gets OK, IOERR or UNSUPP there, and OK only for a well-formed request.
 */
class VirtioBlkRequestFuzzTest {
    private static final long CAPACITY = 64 * 1024;
    private static final int QSIZE = 16;
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * Checks every request against the device and the driver's mappings, then hands it to a MemoryBackend, or
     * (deferred) captures it and completes it from poll().
     */
    private static final class CheckingBackend implements BlockBackend {
        final MemoryBackend inner;
        final RegionTable table;
        final boolean deferred;
        long requests;

        CheckingBackend(MemoryBackend inner, RegionTable table, boolean deferred) {
            this.inner = inner;
            this.table = table;
            this.deferred = deferred;
        }

        @Override public long capacity() { return inner.capacity(); }
        @Override public boolean isReadOnly() { return inner.isReadOnly(); }
        @Override public boolean supportsDiscard() { return true; }
        @Override public boolean supportsWriteZeroes() { return true; }
        @Override public boolean supportsFlush() { return true; }
        @Override public void flush() {}
        @Override public String describe() { return "checking " + inner.describe(); }
        @Override public void close() { inner.close(); }

        @Override
        public BackendQueue openQueue(int queueIndex) {
            BackendQueue q = inner.openQueue(queueIndex);
            ArrayDeque<Captured> later = new ArrayDeque<>();
            return new BackendQueue() {
                @Override
                public void submit(BlockRequest r) {
                    check(r);
                    if (deferred) later.add(Captured.of(r)); else q.submit(r);
                }

                @Override
                public int poll() {
                    int n = later.size();
                    while (!later.isEmpty()) later.poll().execute();
                    return n + q.poll();
                }

                @Override public int inflight() { return later.size(); }
            };
        }

        /**
         * A request completed later, from poll(). The buffer and range lists of a BlockRequest are valid only during
         * submit (they are the queue's, shared by its requests: BlockRequest's contract), so, as a real asynchronous
         * backend does, the lists are captured at submit and the transfer runs on the captured copy, against a
         * disk of the test's own.
         */
        record Captured(BlockRequest r, int op, long offset, MemorySegment[] segments, long[] offsets, int[] lengths,
                        long[] rangeOffsets, long[] rangeLengths) {
            static Captured of(BlockRequest r) {
                int n = r.bufferCount(), m = r.rangeCount();
                MemorySegment[] segs = new MemorySegment[n];
                long[] offs = new long[n], rOffs = new long[m], rLens = new long[m];
                int[] lens = new int[n];
                for (int i = 0; i < n; i++) {
                    segs[i] = r.buffer(i);
                    offs[i] = r.bufferOffset(i);
                    lens[i] = r.bufferLength(i);
                }
                for (int i = 0; i < m; i++) {
                    rOffs[i] = r.rangeOffset(i);
                    rLens[i] = r.rangeLength(i);
                }
                return new Captured(r, r.op(), r.offset(), segs, offs, lens, rOffs, rLens);
            }

            void execute() {
                long at = offset;
                for (int i = 0; i < segments.length; i++) {
                    if (op == BlockRequest.READ) MemorySegment.copy(DEFERRED_DISK, at, segments[i], offsets[i], lengths[i]);
                    else MemorySegment.copy(segments[i], offsets[i], DEFERRED_DISK, at, lengths[i]);
                    at += lengths[i];
                }
                for (int i = 0; i < rangeOffsets.length; i++) DEFERRED_DISK.asSlice(rangeOffsets[i], rangeLengths[i]).fill((byte) 0);
                r.complete(BlockRequest.STATUS_OK);
            }
        }

        void check(BlockRequest r) {
            requests++;
            long cap = capacity();
            switch (r.op()) {
                case BlockRequest.READ, BlockRequest.WRITE -> {
                    if (r.op() == BlockRequest.WRITE) assertFalse(isReadOnly(), "a write reached a read-only backend");
                    assertTrue(r.offset() >= 0 && r.length() >= 0 && r.offset() % 512 == 0 && r.length() % 512 == 0,
                            "offset " + r.offset() + " length " + r.length());
                    assertTrue(r.offset() <= cap - r.length(), "transfer past the device end");
                    long sum = 0;
                    for (int i = 0; i < r.bufferCount(); i++) {
                        assertInsideMapping(r.buffer(i), r.bufferOffset(i), r.bufferLength(i));
                        sum += r.bufferLength(i);
                    }
                    assertEquals(r.length(), sum, "buffers add up to the transfer");
                }
                case BlockRequest.FLUSH -> assertEquals(0, r.bufferCount());
                case BlockRequest.DISCARD, BlockRequest.WRITE_ZEROES -> {
                    assertFalse(isReadOnly(), "discard/write-zeroes reached a read-only backend");
                    assertTrue(r.rangeCount() >= 1 && r.rangeCount() <= VirtioBlkSettings.MAX_RANGES);
                    for (int i = 0; i < r.rangeCount(); i++) {
                        long o = r.rangeOffset(i), l = r.rangeLength(i);
                        assertTrue(o >= 0 && l > 0 && o % 512 == 0 && l % 512 == 0 && o <= cap - l,
                                "range " + o + "+" + l);
                    }
                }
                default -> fail("unknown op " + r.op());
            }
        }

        void assertInsideMapping(MemorySegment seg, long off, long len) {
            assertTrue(len > 0, "empty buffer");
            for (int i = 0; i < table.size(); i++) {
                if (table.segment(i) == seg && off >= table.segmentOffset(i)
                        && off + len <= table.segmentOffset(i) + table.regionSize(i)) {
                    return;
                }
            }
            fail("buffer outside every mapping: +" + off + " len " + len);
        }
    }

    /** What the fuzz driver added: where the status byte is and how many bytes the device may write. */
    private record Added(long status, long writable, boolean wellFormed, String what) {}

    /**
     * Reused by every input (the cost of an execution is the parsing, not mapping and unmapping): the driver's memory
     * (recycled, i.e. zeroed, for each driver; same size for the split and the packed layout) and one RAM disk per
     * read-only flag (its contents carry over, which no invariant depends on).
     */
    private static final DriverMemory MEMORY = new DriverMemory(3 * 4096, QSIZE * 64 * 16, 3, 128 * 1024);
    private static final MemoryBackend[] DISKS = {new MemoryBackend(CAPACITY, false), new MemoryBackend(CAPACITY, true)};
    /** The disk behind the requests completed later (CheckingBackend.Captured). */
    private static final MemorySegment DEFERRED_DISK = java.lang.foreign.Arena.global().allocate(CAPACITY);

    @FuzzTest(maxDuration = "30s")
    void requests(FuzzedDataProvider data) {
        boolean packed = data.consumeBoolean(), readOnly = data.consumeBoolean();
        try (VirtqueueDriver driver = DriverConfig.of(QSIZE).eventIdx(data.consumeBoolean()).indirect(true)
                .dataRegions(3, 128 * 1024).reuse(MEMORY).build(packed)) {
            DriverMemory mem = driver.memory();
            Virtqueue queue = driver.newDeviceQueue();
            CheckingBackend backend = new CheckingBackend(DISKS[readOnly ? 1 : 0], mem.table(), data.consumeBoolean());
            VirtioBlkDevice dev = new VirtioBlkDevice(backend, new VirtioBlkSettings(1, QSIZE, 512, "fuzz-serial", packed));
            long features = dev.deviceFeatures() & data.consumeLong();
            try (QueueHandler handler = dev.openQueue(0, features, QSIZE)) {
                Map<Integer, Added> added = new HashMap<>();
                int requests = data.consumeInt(1, 24);
                for (int k = 0; k < requests && data.remainingBytes() > 0; k++) {
                    if (data.consumeInt(0, 3) == 0) {
                        serve(data, handler, queue, driver, added);
                    }
                    addRequest(data, driver, mem, added, readOnly, features);
                }
                for (int k = 0; k < 4 * QSIZE && !added.isEmpty(); k++) serve(data, handler, queue, driver, added);
                assertTrue(added.isEmpty(), added.size() + " requests never completed");
            }
        }
    }

    private static void serve(FuzzedDataProvider data, QueueHandler handler, Virtqueue queue, VirtqueueDriver driver,
                              Map<Integer, Added> added) {
        int budget = data.consumeInt(1, 2 * QSIZE);
        int inflightBefore = queue.inflight();
        int work = handler.process(queue, budget);
        int inflightAfter = queue.inflight();
        assertTrue(work >= 0, "work " + work);
        assertFalse(queue.isBroken(), "a well-formed ring broke");
        queue.publish();
        UsedBuffer used = new UsedBuffer();
        int reaped = 0;
        while (driver.reap(used)) {
            reaped++;
            Added a = added.remove(used.id);
            assertNotNull(a, "used id " + used.id + " was not in flight");
            assertTrue(Integer.toUnsignedLong(used.len) <= a.writable, "used len " + used.len + " > writable " + a.writable);
            if (a.status >= 0) {
                byte s = driver.memory().getByte(a.status);
                if (used.len == 0) {   // a chain error (§2.7.8 / §2.8.21): returned untouched
                    assertEquals(BlkRequests.STATUS_UNSET, s, "status written but used len 0");
                } else {
                    assertTrue(s == VirtioBlk.S_OK || s == VirtioBlk.S_IOERR || s == VirtioBlk.S_UNSUPP, "status " + s);
                    if (s == VirtioBlk.S_OK) assertTrue(a.wellFormed, "OK for a malformed request: " + a.what);
                }
            }
        }
        // QueueHandler.process: at most budget chains popped (the completions it stages come on top)
        int popped = inflightAfter - inflightBefore + reaped;
        assertTrue(popped >= 0 && popped <= budget, popped + " chains popped, budget " + budget);
    }

    private static long sector(FuzzedDataProvider data) {
        return switch (data.consumeInt(0, 4)) {
            case 0 -> data.consumeLong(0, CAPACITY / 512);
            case 1 -> CAPACITY / 512 - data.consumeInt(0, 4);
            case 2 -> data.consumeLong();
            default -> data.consumeInt(0, 16);
        };
    }

    private static int length(FuzzedDataProvider data) {
        return switch (data.consumeInt(0, 3)) {
            case 0 -> 512 * data.consumeInt(0, 16);
            case 1 -> data.consumeInt(0, 9000);
            case 2 -> 16 * data.consumeInt(0, 18);   // range lists
            default -> data.consumeInt(0, 40);       // GET_ID sizes
        };
    }

    private static void addRequest(FuzzedDataProvider data, VirtqueueDriver driver, DriverMemory mem,
                                   Map<Integer, Added> added, boolean readOnly, long features) {
        if (driver.numFree() < 8 || added.size() >= 8) return;   // 8 x < 40 KiB in flight: no buffer shared
        int type = switch (data.consumeInt(0, 7)) {
            case 0 -> VirtioBlk.T_IN;
            case 1 -> VirtioBlk.T_OUT;
            case 2 -> VirtioBlk.T_FLUSH;
            case 3 -> VirtioBlk.T_GET_ID;
            case 4 -> VirtioBlk.T_DISCARD;
            case 5 -> VirtioBlk.T_WRITE_ZEROES;
            default -> data.consumeInt();
        };
        long sector = sector(data);
        if (added.isEmpty()) {   // otherwise allocate after the requests in flight (the allocator is circular)
            mem.resetAllocator();
            mem.allocatorOffset(data.consumeInt(0, 16) * 4096L);
        }
        ChainBuilder c = driver.chain();
        c.indirect(data.consumeBoolean() ? ChainBuilder.Indirect.ALWAYS : ChainBuilder.Indirect.NEVER);
        long writable = 0;
        // header: 16 readable bytes, split in two, short, or device-writable
        long h = mem.allocate(16, 8);
        writeSixteen(mem, h, Integer.toUnsignedLong(type) | (long) data.consumeInt() << 32, sector);
        int hdrShape = data.consumeInt(0, 5);
        // Only for an intact header do we know the request's type and sector (a short one is gathered from the
        // buffers after it, §2.6.4); then S_OK needs the conditions collected in wellFormed.
        boolean headerKnown = hdrShape <= 2;
        long readableData = 0;
        switch (hdrShape) {
            case 0, 1 -> c.readable(h, 16);
            case 2 -> c.readable(h, 8).readable(h + 8, 8);
            case 3 -> c.readable(h, data.consumeInt(0, 15));
            case 4 -> { c.buffer(h, 16, true); writable += 16; }
            default -> c.readable(h, 16 + data.consumeInt(1, 600));
        }
        int buffers = data.consumeInt(0, 4);
        long dataBytes = 0;
        boolean dataWritable = type == VirtioBlk.T_IN || type == VirtioBlk.T_GET_ID;
        for (int b = 0; b < buffers; b++) {
            int len = length(data);
            boolean w = data.consumeInt(0, 5) == 0 ? !dataWritable : dataWritable;
            long a = data.consumeInt(0, 9) == 0 ? DriverMemory.DATA_BASE + mem.dataBytes() - data.consumeInt(0, 64)
                    : mem.allocate(Math.max(len, 1), 16);
            if (type == VirtioBlk.T_DISCARD || type == VirtioBlk.T_WRITE_ZEROES) {   // range list
                for (long r = 0; r + 16 <= len && a + r + 16 <= DriverMemory.DATA_BASE + mem.dataBytes(); r += 16) {
                    long rangeSector = sector(data);
                    int sectors = data.consumeInt(0, 3) == 0 ? data.consumeInt() : data.consumeInt(0, 130);
                    writeSixteen(mem, a + r, rangeSector, Integer.toUnsignedLong(sectors) | (long) data.consumeInt(0, 2) << 32);
                }
            }
            c.buffer(a, len, w);
            if (w) writable += Integer.toUnsignedLong(len); else readableData += Integer.toUnsignedLong(len);
            dataBytes += len;
        }
        // status: one writable byte, several, none, or readable
        long status = -1;
        int stShape = data.consumeInt(0, 4);
        long st = mem.allocate(8, 1);
        mem.putByte(st, BlkRequests.STATUS_UNSET);
        switch (stShape) {
            case 0, 1 -> { c.writable(st, 1); writable += 1; status = st; }
            case 2 -> { int n = data.consumeInt(2, 8); c.writable(st, n); writable += n; status = st + n - 1;
                        mem.putByte(status, BlkRequests.STATUS_UNSET); }
            case 3 -> c.buffer(st, 1, false);
            default -> { }   // no status byte
        }
        boolean wellFormed = !headerKnown
                || stShape <= 2 && plausible(type, sector, readableData, writable, readOnly, features);
        int id = c.add(0);
        if (id < 0) return;
        added.put(id, new Added(status, writable, wellFormed, "type " + type + " sector " + sector + " header shape "
                + hdrShape + " data " + dataBytes + " in " + buffers + " status shape " + stShape + " read-only " + readOnly
                + " features 0x" + Long.toHexString(features)));
        driver.kickPrepare();
    }

    /** A necessary condition for S_OK (the device may still refuse, never the reverse). */
    /**
     * Writes two little-endian longs at {@code addr} with {@link DriverMemory#write}, which spans data regions: a
     * header or range entry the fuzzer places across a region boundary is a legal driver layout (virtio 1.2 §2.7.4,
     * buffers are guest-physical ranges), and the device must gather it from both regions.
     */
    private static void writeSixteen(DriverMemory mem, long addr, long first, long second) {
        byte[] b = new byte[16];
        MemorySegment s = MemorySegment.ofArray(b);
        s.set(LE_LONG, 0, first);
        s.set(LE_LONG, 8, second);
        mem.write(addr, b);
    }

    private static boolean plausible(int type, long sector, long readable, long writable, boolean readOnly,
                                     long features) {
        return switch (type) {   // §5.2.6: readable = data after the 16-byte header; writable includes the status
            case VirtioBlk.T_IN -> readable == 0 && inRange(sector, writable - 1);
            case VirtioBlk.T_OUT -> !readOnly && writable == 1 && inRange(sector, readable);
            case VirtioBlk.T_FLUSH -> true;
            case VirtioBlk.T_GET_ID -> readable == 0 && writable >= 2;
            case VirtioBlk.T_DISCARD -> !readOnly && (features & VirtioBlk.bit(VirtioBlk.F_DISCARD)) != 0
                    && writable == 1 && readable > 0 && readable % 16 == 0;
            case VirtioBlk.T_WRITE_ZEROES -> !readOnly && (features & VirtioBlk.bit(VirtioBlk.F_WRITE_ZEROES)) != 0
                    && writable == 1 && readable > 0 && readable % 16 == 0;
            default -> false;
        };
    }

    private static boolean inRange(long sector, long bytes) {
        return bytes >= 0 && bytes % 512 == 0 && sector >= 0 && sector <= CAPACITY / 512
                && bytes <= CAPACITY - sector * 512;
    }
}
