package io.github.vduse4j.blockdev.virtio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vduse4j.blockdev.backend.BlockBackend;
import io.github.vduse4j.blockdev.backend.MemoryBackend;
import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.testkit.BlkRequests;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.DriverMemory;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The virtio-blk request path (§5.2.6) driven through real split and packed rings by the ring test kit's driver. */
class VirtioBlkQueueHandlerTest {
    static final int QSIZE = 64;
    static final long CAPACITY = 1 << 20;
    static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    VirtqueueDriver driver;
    Virtqueue queue;
    MemoryBackend backend;
    QueueHandler handler;
    final UsedBuffer used = new UsedBuffer();

    void setUp(boolean packed, boolean readOnly) {
        driver = DriverConfig.of(QSIZE).eventIdx(true).indirect(true).dataRegions(2, 4 << 20).build(packed);
        queue = driver.newDeviceQueue();
        backend = new MemoryBackend(CAPACITY, readOnly);
        VirtioBlkDevice dev = new VirtioBlkDevice(backend, new VirtioBlkSettings(1, QSIZE, 512, "serial-123", packed));
        handler = dev.openQueue(0, dev.deviceFeatures(), QSIZE);
    }

    @AfterEach
    void tearDown() {
        handler.close();
        backend.close();
        driver.close();
    }

    /** Lets the device run and returns the used element of the single request added. */
    UsedBuffer serveOne() {
        assertTrue(handler.process(queue, 64) > 0);
        queue.publish();
        assertTrue(driver.reap(used), "a used element");
        assertFalse(driver.reap(new UsedBuffer()), "only one");
        return used;
    }

    byte status(BlkRequests.Request r) {
        return BlkRequests.status(driver, r);
    }

    BlkRequests.Request write(long sector, byte[] data, int segments) {
        var r = BlkRequests.add(driver, VirtioBlk.T_OUT, sector, data.length, segments, false, 1);
        driver.memory().write(r.data(), data);
        return r;
    }

    static byte[] random(Random rnd, int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void writeThenReadRoundTripsThroughTheBackend(boolean packed) {
        setUp(packed, false);
        byte[] data = random(new Random(1), 8192);
        var w = write(8, data, 3);
        assertEquals(1, serveOne().len, "OUT: only the status byte is written");
        assertEquals(VirtioBlk.S_OK, status(w));
        assertArrayEquals(data, backend.contents().asSlice(8 * 512, 8192).toArray(ValueLayout.JAVA_BYTE));

        var rd = BlkRequests.add(driver, VirtioBlk.T_IN, 8, 8192, 4, true, 2);
        assertEquals(8192 + 1, serveOne().len, "IN: data plus status");
        assertEquals(VirtioBlk.S_OK, status(rd));
        assertArrayEquals(data, driver.memory().read(rd.data(), 8192));
        assertEquals(8192, handler.stats().readBytes());
        assertEquals(8192, handler.stats().writtenBytes());
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void outOfRangeAndMisalignedTransfersFailWithIoErr(boolean packed) {
        setUp(packed, false);
        long lastSector = CAPACITY / 512 - 1;
        var ok = BlkRequests.add(driver, VirtioBlk.T_IN, lastSector, 512, 1, true, 1);
        serveOne();
        assertEquals(VirtioBlk.S_OK, status(ok), "the last sector is readable");
        for (long[] c : new long[][] {{lastSector, 1024}, {CAPACITY / 512, 512}, {-1L, 512}, {Long.MAX_VALUE / 256, 512}}) {
            var r = BlkRequests.add(driver, VirtioBlk.T_IN, c[0], (int) c[1], 1, true, 1);
            serveOne();
            assertEquals(VirtioBlk.S_IOERR, status(r), "sector " + c[0] + " len " + c[1]);
        }
        var odd = BlkRequests.add(driver, VirtioBlk.T_OUT, 0, 100, 1, false, 1);
        serveOne();
        assertEquals(VirtioBlk.S_IOERR, status(odd), "not a multiple of 512");
        assertEquals(5, handler.stats().ioErrors());
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void wrongDirectionsFailWithIoErr(boolean packed) {
        setUp(packed, false);
        var in = BlkRequests.add(driver, VirtioBlk.T_IN, 0, 512, 1, false, 1); // data readable on a read
        serveOne();
        assertEquals(VirtioBlk.S_IOERR, status(in));
        var out = BlkRequests.add(driver, VirtioBlk.T_OUT, 0, 512, 1, true, 1); // data writable on a write
        serveOne();
        assertEquals(VirtioBlk.S_IOERR, status(out));
        assertEquals(0, backend.contents().asSlice(0, 512).toArray(ValueLayout.JAVA_BYTE)[0]);
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void shortOrSplitHeaders(boolean packed) {
        setUp(packed, false);
        DriverMemory m = driver.memory();
        // 8-byte header: too short
        long h = m.allocate(8, 8);
        long st = m.allocate(1, 1);
        m.putByte(st, BlkRequests.STATUS_UNSET);
        driver.chain().readable(h, 8).writable(st, 1).add(1);
        serveOne();
        assertEquals(VirtioBlk.S_IOERR, m.getByte(st));

        // a header split into two descriptors of 8 bytes each is still a header (§2.6.4 message framing)
        byte[] data = random(new Random(2), 512);
        long h1 = m.allocate(8, 8);
        long h2 = m.allocate(8, 8);
        MemorySegment hv1 = m.view(h1, 8);
        MemorySegment hv2 = m.view(h2, 8);
        hv1.set(LE_INT, 0, VirtioBlk.T_OUT);
        hv1.set(LE_INT, 4, 0);
        hv2.set(LE_LONG, 0, 3);
        long d = m.allocate(512, 512);
        m.write(d, data);
        m.putByte(st, BlkRequests.STATUS_UNSET);
        driver.chain().readable(h1, 8).readable(h2, 8).readable(d, 512).writable(st, 1).add(2);
        serveOne();
        assertEquals(VirtioBlk.S_OK, m.getByte(st));
        assertArrayEquals(data, backend.contents().asSlice(3 * 512, 512).toArray(ValueLayout.JAVA_BYTE));
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void chainWithoutStatusByteIsReturnedWithLengthZero(boolean packed) {
        setUp(packed, false);
        long h = driver.memory().allocate(16, 16);
        driver.chain().readable(h, 16).add(1);
        assertEquals(0, serveOne().len);
        assertEquals(1, handler.stats().chainErrors());
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void unknownTypeIsUnsupported(boolean packed) {
        setUp(packed, false);
        var r = BlkRequests.add(driver, 99, 0, 0, 0, false, 1);
        serveOne();
        assertEquals(VirtioBlk.S_UNSUPP, status(r));
        assertEquals(1, handler.stats().unsupported());
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void getIdReturnsTheSerialNulPadded(boolean packed) {
        setUp(packed, false);
        var r = BlkRequests.add(driver, VirtioBlk.T_GET_ID, 0, VirtioBlk.ID_BYTES, 1, true, 1);
        driver.memory().fill(r.data(), VirtioBlk.ID_BYTES, (byte) 'x');
        serveOne();
        assertEquals(VirtioBlk.S_OK, status(r));
        byte[] expected = Arrays.copyOf("serial-123".getBytes(StandardCharsets.US_ASCII), VirtioBlk.ID_BYTES);
        assertArrayEquals(expected, driver.memory().read(r.data(), VirtioBlk.ID_BYTES));
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void flushCompletes(boolean packed) {
        setUp(packed, false);
        var r = BlkRequests.add(driver, VirtioBlk.T_FLUSH, 0, 0, 0, false, 1);
        serveOne();
        assertEquals(VirtioBlk.S_OK, status(r));
        assertEquals(1, handler.stats().flushes());
    }

    /** Adds a DISCARD / WRITE_ZEROES with the given {sector, sectors, flags} ranges. */
    BlkRequests.Request ranges(int type, long[]... ranges) {
        var r = BlkRequests.add(driver, type, 0, ranges.length * 16, 1, false, 1);
        MemorySegment v = driver.memory().view(r.data(), ranges.length * 16L);
        for (int i = 0; i < ranges.length; i++) {
            v.set(LE_LONG, i * 16L, ranges[i][0]);
            v.set(LE_INT, i * 16L + 8, (int) ranges[i][1]);
            v.set(LE_INT, i * 16L + 12, (int) ranges[i][2]);
        }
        return r;
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void discardAndWriteZeroesZeroTheirRanges(boolean packed) {
        setUp(packed, false);
        backend.contents().fill((byte) 0x5a);
        var d = ranges(VirtioBlk.T_DISCARD, new long[] {0, 2, 0}, new long[] {10, 1, 0});
        serveOne();
        assertEquals(VirtioBlk.S_OK, status(d));
        var z = ranges(VirtioBlk.T_WRITE_ZEROES, new long[] {20, 4, VirtioBlk.WRITE_ZEROES_FLAG_UNMAP});
        serveOne();
        assertEquals(VirtioBlk.S_OK, status(z));
        byte[] disk = backend.contents().asSlice(0, 30 * 512).toArray(ValueLayout.JAVA_BYTE);
        for (int s = 0; s < 30; s++) {
            boolean zero = s < 2 || s == 10 || (s >= 20 && s < 24);
            assertEquals(zero ? 0 : 0x5a, disk[s * 512] & 0xff, "sector " + s);
            assertEquals(zero ? 0 : 0x5a, disk[s * 512 + 511] & 0xff, "sector " + s);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void badRangesAreRejected(boolean packed) {
        setUp(packed, false);
        var unmapOnDiscard = ranges(VirtioBlk.T_DISCARD, new long[] {0, 1, VirtioBlk.WRITE_ZEROES_FLAG_UNMAP});
        serveOne();
        assertEquals(VirtioBlk.S_UNSUPP, status(unmapOnDiscard), "§5.2.6.2: unmap is not a discard flag");
        var unknownFlag = ranges(VirtioBlk.T_WRITE_ZEROES, new long[] {0, 1, 4});
        serveOne();
        assertEquals(VirtioBlk.S_UNSUPP, status(unknownFlag));
        var beyond = ranges(VirtioBlk.T_DISCARD, new long[] {CAPACITY / 512 - 1, 2, 0});
        serveOne();
        assertEquals(VirtioBlk.S_IOERR, status(beyond));
        long[][] many = new long[VirtioBlkSettings.MAX_RANGES + 1][];
        Arrays.setAll(many, i -> new long[] {i, 1, 0});
        var tooMany = ranges(VirtioBlk.T_DISCARD, many);
        serveOne();
        assertEquals(VirtioBlk.S_IOERR, status(tooMany));
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void readOnlyRefusesEveryWrite(boolean packed) {
        setUp(packed, true);
        var w = write(0, new byte[512], 1);
        serveOne();
        assertEquals(VirtioBlk.S_IOERR, status(w));
        var d = ranges(VirtioBlk.T_DISCARD, new long[] {0, 1, 0});
        serveOne();
        assertEquals(VirtioBlk.S_UNSUPP, status(d), "DISCARD is not offered on a read-only device");
        var r = BlkRequests.add(driver, VirtioBlk.T_IN, 0, 512, 1, true, 1);
        serveOne();
        assertEquals(VirtioBlk.S_OK, status(r));
    }

    /**
     * The request path with live stats on (every request counted, timed and put in the histogram of the record)
     * allocates nothing (issue 16: "record without allocation"; the JMH rows show 0 B/op, this keeps it in CI). Only
     * the device side is measured (the test kit's driver allocates); windows are repeated until one runs in C2 code.
     */
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void theRequestPathWithLiveStatsDoesNotAllocate(boolean packed) {
        setUp(packed, false);
        com.sun.management.ThreadMXBean threads =
                (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        org.junit.jupiter.api.Assumptions.assumeTrue(threads.isThreadAllocatedMemorySupported()
                && threads.isThreadAllocatedMemoryEnabled());
        int rounds = 200, perRound = 16;
        long best = Long.MAX_VALUE;
        for (int window = 0; window < 40 && best > 0; window++) {
            long allocated = 0;
            for (int round = 0; round < rounds; round++) {
                driver.memory().allocatorOffset(0);
                for (int i = 0; i < perRound; i++) {
                    boolean read = (i & 1) == 0;
                    BlkRequests.add(driver, read ? VirtioBlk.T_IN : VirtioBlk.T_OUT, 8L * i, 4096, 1, read, i);
                }
                long before = threads.getCurrentThreadAllocatedBytes();
                handler.process(queue, 64);
                queue.publish();
                allocated += threads.getCurrentThreadAllocatedBytes() - before;
                int reaped = 0;
                while (driver.reap(used)) {
                    reaped++;
                }
                assertEquals(perRound, reaped);
            }
            best = Math.min(best, allocated);
        }
        assertEquals(0, best, best + " bytes allocated for " + rounds * perRound + " requests at best");
        assertEquals(0, handler.stats().inflight());
        assertTrue(handler.stats().requests() >= (long) rounds * perRound);
    }

    /**
     * A pass that stops at its budget hands its clock read to the next pass as that pass's pop time (one clock read
     * per request for one-chain passes), but only to the very next call: a call with budget 0 in between (the
     * poller's drain before a pause) ends it, so the time paused is never counted as a request's latency.
     */
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void theCarriedClockReadIsUsedOnlyByTheNextPass(boolean packed) throws InterruptedException {
        setUp(packed, false);
        BlkRequests.add(driver, VirtioBlk.T_IN, 0, 512, 1, true, 1);
        BlkRequests.add(driver, VirtioBlk.T_IN, 1, 512, 1, true, 2);
        assertEquals(1, handler.process(queue, 1), "stopped at its budget with a chain still waiting");
        assertEquals(1, handler.process(queue, 1), "the next pass pops it");
        BlkRequests.add(driver, VirtioBlk.T_IN, 2, 512, 1, true, 3);
        assertEquals(1, handler.process(queue, 1));
        handler.process(queue, 0);   // the drain
        Thread.sleep(300);           // paused
        BlkRequests.add(driver, VirtioBlk.T_IN, 3, 512, 1, true, 4);
        assertEquals(1, handler.process(queue, 64));
        queue.publish();
        assertEquals(4, handler.stats().requests());
        long max = handler.stats().counter(io.github.vduse4j.engine.control.StatsLayout.LATENCY_MAX);
        assertTrue(max < 300_000_000L, "the pause is not a request's latency: max " + max + " ns");
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void descriptorOutsideMemoryIsAChainErrorNotACrash(boolean packed) {
        setUp(packed, false);
        long h = driver.memory().allocate(16, 16);
        long st = driver.memory().allocate(1, 1);
        driver.chain().readable(h, 16).writable(0x7fff_0000_0000L, 4096).writable(st, 1).add(1);
        assertEquals(0, serveOne().len);
        assertEquals(1, handler.stats().chainErrors());
        assertEquals(0, handler.stats().inflight(), "a chain error is not a request in flight");
        var r = BlkRequests.add(driver, VirtioBlk.T_IN, 0, 512, 1, true, 2);
        serveOne();
        assertEquals(VirtioBlk.S_OK, status(r), "the queue keeps working");
        assertEquals(0, handler.stats().inflight());
        assertEquals(1, handler.stats().requests(), "the chain error is counted as an error, not a request");
    }

    /** Many random requests in flight at once, checked against a model of the disk. */
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void randomRequestStreamMatchesAModelDisk(boolean packed) {
        setUp(packed, false);
        Random rnd = new Random(packed ? 7 : 8);
        byte[] model = new byte[(int) CAPACITY];
        Map<Long, Object[]> pending = new HashMap<>();
        long token = 0;
        int done = 0;
        while (done < 3000) {
            int batch = 1 + rnd.nextInt(8);
            for (int i = 0; i < batch && driver.numFree() >= 8; i++) {
                driver.memory().allocatorOffset(((token % 32) * 64 * 1024));
                int sectors = 1 + rnd.nextInt(16);
                long sector = rnd.nextInt((int) (CAPACITY / 512) - sectors + 1);
                boolean isWrite = rnd.nextBoolean();
                int segs = 1 + rnd.nextInt(4);
                var r = BlkRequests.add(driver, isWrite ? VirtioBlk.T_OUT : VirtioBlk.T_IN, sector, sectors * 512, segs,
                        !isWrite, token);
                byte[] data = null;
                if (isWrite) {
                    data = random(rnd, sectors * 512);
                    driver.memory().write(r.data(), data);
                }
                pending.put(token++, new Object[] {r, data});
            }
            handler.process(queue, 1 + rnd.nextInt(64));
            queue.publish();
            while (driver.reap(used)) {
                Object[] p = pending.remove(used.token);
                var r = (BlkRequests.Request) p[0];
                assertEquals(VirtioBlk.S_OK, status(r));
                int off = (int) (driver.memory().view(r.header(), 16).get(LE_LONG, 8) * 512);
                if (p[1] != null) {
                    System.arraycopy((byte[]) p[1], 0, model, off, r.dataLength());
                    assertEquals(1, used.len);
                } else {
                    assertArrayEquals(Arrays.copyOfRange(model, off, off + r.dataLength()),
                            driver.memory().read(r.data(), r.dataLength()), "read at " + off);
                    assertEquals(r.dataLength() + 1, used.len);
                }
                done++;
            }
        }
        assertArrayEquals(model, backend.contents().toArray(ValueLayout.JAVA_BYTE));
        assertEquals(0, handler.stats().ioErrors());
    }

    /**
     * {@link VirtioBlkQueueHandler#PUBLISH_EVERY}: a pass of 20 requests makes the used elements of every 8 visible
     * while it goes on (a polling driver can take them back at once), and the last 4 with the pass's own publish; the
     * driver then finds all 20, each with its status.
     */
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void aLongPassPublishesItsFirstCompletionsWhileItGoesOn(boolean packed) {
        setUp(packed, false);
        int n = 20;
        var reads = new BlkRequests.Request[n];
        for (int i = 0; i < n; i++) {
            reads[i] = BlkRequests.add(driver, VirtioBlk.T_IN, i * 8L, 4096, 1, true, i);
        }
        int[] publishedAt = new int[n];
        int[] publishes = {0};
        Virtqueue q = queue;
        int[] completed = {0};
        // the queue itself, but for a note of how many completions each publish() made visible
        Virtqueue recording = (Virtqueue) java.lang.reflect.Proxy.newProxyInstance(Virtqueue.class.getClassLoader(),
                new Class<?>[] {Virtqueue.class}, (proxy, method, args) -> {
                    Object r = method.invoke(q, args);
                    if (method.getName().equals("complete")) {
                        completed[0]++;
                    } else if (method.getName().equals("publish")) {
                        publishedAt[publishes[0]++] = completed[0];
                    }
                    return r;
                });
        assertEquals(n, handler.process(recording, 64));
        assertArrayEquals(new int[] {8, 16}, Arrays.copyOf(publishedAt, publishes[0]),
                "completions written at each publish inside the pass");
        recording.publish();   // the poller's publish after the pass
        for (int i = 0; i < n; i++) {
            assertTrue(driver.reap(used), "used element " + i);
            assertEquals(VirtioBlk.S_OK, status(reads[(int) used.token]));
        }
        assertFalse(driver.reap(used));
        assertEquals(n, handler.stats().requests());
    }
}
