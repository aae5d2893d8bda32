package io.github.vduse4j.ring;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.testkit.ChainBuilder;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.DriverMemory;
import io.github.vduse4j.ring.testkit.PackedDriver;
import io.github.vduse4j.ring.testkit.SplitDriver;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.ArrayDeque;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Thousands of random request streams through a Linux-like driver and the device queue: random queue sizes, chain
 * shapes and lengths, indirect on/off, EVENT_IDX on/off, start positions near the u16 wrap (split) or at any
 * descriptor/wrap counter (packed), random batch sizes and out-of-order completion. Every byte the device reads and
 * writes, and every used entry the driver reaps, is checked.
 */
class RandomStreamPropertyTest {
    private static final int STREAMS = Integer.getInteger("ring.property.streams", 500);
    private static final byte SENTINEL = (byte) 0xA5;
    private static final byte[] POOL = new byte[1 << 20];
    private static final MemorySegment POOL_SEGMENT;

    static {
        new Random(1).nextBytes(POOL);
        POOL_SEGMENT = MemorySegment.ofArray(POOL);
    }

    /** One chain in flight: what the driver put in, what the device wrote back. */
    private static final class Request {
        final long token;
        int id;
        final int slot;
        final List<long[]> buffers = new ArrayList<>();   // {addr, len, writable}
        byte[] readableBytes;
        long writableLength;
        int written = -1;
        int patternOffset;

        Request(long token, int slot) { this.token = token; this.slot = slot; }
    }

    @ParameterizedTest(name = "packed={0} eventIdx={1} indirect={2}")
    @CsvSource({
        "false, false, false", "false, true, false", "false, false, true", "false, true, true",
        "true, false, false", "true, true, false", "true, false, true", "true, true, true",
    })
    void randomStreams(boolean packed, boolean eventIdx, boolean indirect) {
        Random master = new Random(0xC0FFEE ^ (packed ? 1 : 0) ^ (eventIdx ? 2 : 0) ^ (indirect ? 4 : 0));
        long chains = 0;
        for (int s = 0; s < STREAMS; s++) {
            long seed = master.nextLong();
            try {
                chains += runStream(new Random(seed), packed, eventIdx, indirect);
            } catch (Throwable t) {
                throw new AssertionError("stream seed " + seed + " failed", t);
            }
        }
        assertTrue(chains > STREAMS * 20L, "streams carried " + chains + " chains");
    }

    private static int queueSize(Random r, boolean packed) {
        int pick = r.nextInt(10);
        if (packed) return pick < 6 ? 1 + r.nextInt(16) : 1 + r.nextInt(300);
        return 1 << (pick < 6 ? r.nextInt(5) : r.nextInt(9));
    }

    private long runStream(Random r, boolean packed, boolean eventIdx, boolean indirect) {
        final int size = queueSize(r, packed);
        final int maxBuffers = Math.min(size, r.nextInt(4) == 0 ? 24 : 6);
        final int[] lenChoices = {16, 200, 1500, 5000};
        final int maxLen = lenChoices[r.nextInt(lenChoices.length)];
        final long slotBytes = DriverMemory.roundUp((long) maxBuffers * (maxLen + 64), 8) + 24;
        final long dataNeeded = slotBytes * size;
        final long[] regionChoices = {4096, 65536, 1 << 20};
        long regionBytes = regionChoices[r.nextInt(regionChoices.length)];
        int regions = (int) Math.max(1, (dataNeeded + regionBytes - 1) / regionBytes);
        if (regions > 600) { regionBytes = 65536; regions = (int) ((dataNeeded + regionBytes - 1) / regionBytes); }
        DriverConfig cfg = DriverConfig.of(size).eventIdx(eventIdx).indirect(indirect)
                .dataRegions(regions, regionBytes).maxIndirect(Math.max(maxBuffers, 1));
        try (VirtqueueDriver d = packed ? startPacked(cfg.packed(), r, size) : startSplit(cfg.split(), r);
             Arena arena = Arena.ofConfined()) {
            Virtqueue q = d.newDeviceQueue();
            DescriptorChain chain = DescriptorChain.forQueue(q);
            MemorySegment scratch = arena.allocate((long) maxBuffers * maxLen + 1);
            UsedBuffer used = new UsedBuffer();
            ArrayDeque<Integer> freeSlots = new ArrayDeque<>();
            for (int i = 0; i < size; i++) freeSlots.add(i);
            Map<Integer, Request> byId = new HashMap<>();
            List<Request> deviceInflight = new ArrayList<>();
            long nextToken = 1;
            long reaped = 0;
            long added = 0;
            int steps = 50 + r.nextInt(300);
            for (int step = 0; step < steps; step++) {
                switch (r.nextInt(8)) {
                    case 0, 1, 2 -> {   // driver adds a few chains, then maybe kicks
                        int n = 1 + r.nextInt(4);
                        for (int k = 0; k < n && !freeSlots.isEmpty(); k++) {
                            Request req = newRequest(r, d, nextToken, freeSlots.poll(), slotBytes, maxBuffers, maxLen);
                            int id = addRequest(r, d, req, indirect);
                            if (id < 0) { freeSlots.add(req.slot); break; }
                            nextToken++;
                            added++;
                            req.id = id;
                            assertNull(byId.put(id, req), "driver reused an in-flight id");
                        }
                        if (r.nextInt(4) != 0) d.kickPrepare();
                    }
                    case 3, 4 -> popSome(r, q, chain, scratch, byId, deviceInflight, r.nextInt(size + 1) + 1);
                    case 5 -> completeSome(r, q, d, deviceInflight, r.nextInt(deviceInflight.size() + 1));
                    case 6 -> reaped += reapSome(r, d, used, byId, freeSlots, r.nextInt(size + 1));
                    default -> {
                        switch (r.nextInt(4)) {
                            case 0 -> q.disableNotifications();
                            case 1 -> q.enableNotifications();
                            case 2 -> d.disableCallbacks();
                            default -> d.enableCallbacks();
                        }
                    }
                }
            }
            // drain
            popSome(r, q, chain, scratch, byId, deviceInflight, Integer.MAX_VALUE);
            completeSome(r, q, d, deviceInflight, deviceInflight.size());
            reaped += reapSome(r, d, used, byId, freeSlots, Integer.MAX_VALUE);
            assertEquals(added, reaped, "every chain comes back exactly once");
            assertTrue(byId.isEmpty());
            assertEquals(0, q.inflight());
            assertEquals(0, d.inflight());
            assertEquals(size, d.numFree());
            assertEquals(Virtqueue.EMPTY, q.pop(chain));
            assertFalse(q.isBroken());
            return added;
        }
    }

    private static SplitDriver startSplit(SplitDriver d, Random r) {
        int start = switch (r.nextInt(3)) {
            case 0 -> 0;
            case 1 -> 0x10000 - r.nextInt(3 * d.size() + 2);   // crosses the u16 wrap during the stream
            default -> r.nextInt(0x10000);
        };
        return d.startAt(start);
    }

    private static PackedDriver startPacked(PackedDriver d, Random r, int size) {
        if (r.nextInt(3) == 0) return d;
        return d.startAt(r.nextInt(size), r.nextBoolean());
    }

    private static Request newRequest(Random r, VirtqueueDriver d, long token, int slot, long slotBytes,
                                      int maxBuffers, int maxLen) {
        Request req = new Request(token, slot);
        int n = 1 + r.nextInt(maxBuffers);
        int readable = r.nextInt(n + 1);
        long at = DriverMemory.DATA_BASE + slot * slotBytes + r.nextInt(8);
        java.io.ByteArrayOutputStream expected = new java.io.ByteArrayOutputStream();
        for (int b = 0; b < n; b++) {
            int len = r.nextInt(20) == 0 ? 0 : 1 + r.nextInt(maxLen);
            boolean writable = b >= readable;
            req.buffers.add(new long[] {at, len, writable ? 1 : 0});
            if (len > 0) {
                if (writable) {
                    d.memory().fill(at, len, SENTINEL);
                    req.writableLength += len;
                } else {
                    int from = r.nextInt(POOL.length - len);
                    byte[] content = java.util.Arrays.copyOfRange(POOL, from, from + len);
                    d.memory().write(at, content);
                    expected.writeBytes(content);
                }
            }
            at += len + r.nextInt(40);
        }
        req.readableBytes = expected.toByteArray();
        return req;
    }

    private static int addRequest(Random r, VirtqueueDriver d, Request req, boolean indirect) {
        ChainBuilder c = d.chain();
        for (long[] b : req.buffers) {
            if (b[2] == 0) c.readable(b[0], (int) b[1]); else c.writable(b[0], (int) b[1]);
        }
        if (indirect && r.nextInt(3) == 0) c.indirect(r.nextBoolean());   // else the Linux rule
        return c.add(req.token);
    }

    private static void popSome(Random r, Virtqueue q, DescriptorChain chain, MemorySegment scratch,
                                Map<Integer, Request> byId, List<Request> deviceInflight, int max) {
        for (int i = 0; i < max; i++) {
            int result = q.pop(chain);
            if (result == Virtqueue.EMPTY) return;
            assertEquals(Virtqueue.POPPED, result, () -> "valid stream must pop: " + chain);
            Request req = byId.get(chain.id());
            assertNotNull(req, "device popped an id the driver does not have in flight: " + chain.id());
            assertEquals(-1, req.written, "popped twice");
            assertEquals(req.readableBytes.length, chain.readableLength());
            assertEquals(req.writableLength, chain.writableLength());
            long copied = chain.readTo(0, scratch, 0, chain.readableLength());
            assertEquals(chain.readableLength(), copied);
            assertEquals(-1, MemorySegment.mismatch(scratch, 0, copied, MemorySegment.ofArray(req.readableBytes), 0,
                    req.readableBytes.length), "device read different bytes than the driver wrote");
            for (int b = 0; b < chain.bufferCount(); b++) {
                assertTrue(chain.length(b) > 0);
                assertTrue(chain.offset(b) >= 0 && chain.offset(b) + chain.length(b) <= chain.segment(b).byteSize());
            }
            int written = chain.writableLength() == 0 ? 0 : r.nextInt((int) chain.writableLength() + 1);
            req.written = written;
            req.patternOffset = r.nextInt(POOL.length - written);
            assertEquals(written, chain.writeFrom(POOL_SEGMENT, req.patternOffset, 0, written));
            deviceInflight.add(req);
        }
    }

    private static void completeSome(Random r, Virtqueue q, VirtqueueDriver d, List<Request> deviceInflight, int n) {
        Collections.shuffle(deviceInflight, r);
        for (int i = 0; i < n; i++) {
            Request req = deviceInflight.removeLast();
            q.complete(req.id, req.written);
            if (r.nextInt(8) == 0) q.publish();   // sometimes publish mid-batch
        }
        q.publish();
        if (q.needsNotification()) {
            assertTrue(d.interrupt(), "device notified with nothing new in the used ring");
        }
    }

    private static int reapSome(Random r, VirtqueueDriver d, UsedBuffer used, Map<Integer, Request> byId,
                                ArrayDeque<Integer> freeSlots, int max) {
        int n = 0;
        while (n < max && d.reap(used)) {
            Request req = byId.remove(used.id);
            assertNotNull(req, "reaped an id that is not in flight");
            assertEquals(req.token, used.token);
            assertEquals(req.written, used.len, "used len is the written length");
            // writable stream: first `written` bytes are the device's pattern, the rest untouched
            long streamAt = 0;
            for (long[] b : req.buffers) {
                if (b[1] == 0) continue;
                byte[] now = d.memory().read(b[0], (int) b[1]);
                if (b[2] == 0) {
                    continue;
                }
                for (int k = 0; k < now.length; k++) {
                    long pos = streamAt + k;
                    byte want = pos < req.written ? POOL[(int) (req.patternOffset + pos)] : SENTINEL;
                    if (now[k] != want) fail("writable byte " + pos + " of token " + req.token + ": " + now[k] + " != " + want);
                }
                streamAt += b[1];
            }
            // readable buffers were not modified by the device
            java.io.ByteArrayOutputStream again = new java.io.ByteArrayOutputStream();
            for (long[] b : req.buffers) if (b[2] == 0 && b[1] > 0) again.writeBytes(d.memory().read(b[0], (int) b[1]));
            assertArrayEquals(req.readableBytes, again.toByteArray(), "device wrote into a readable buffer");
            freeSlots.add(req.slot);
            n++;
        }
        return n;
    }
}
