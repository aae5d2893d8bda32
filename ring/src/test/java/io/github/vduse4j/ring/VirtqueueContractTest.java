package io.github.vduse4j.ring;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.testkit.BlkRequests;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Behaviour both ring layouts share, run against the test-kit driver of each. */
class VirtqueueContractTest {
    private static VirtqueueDriver driver(boolean packed, boolean eventIdx, boolean indirect) {
        return DriverConfig.of(16).eventIdx(eventIdx).indirect(indirect).dataRegions(4, 64 * 1024).build(packed);
    }

    private static byte[] bytes(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte) (seed * 31 + i * 7);
        return b;
    }

    private static byte[] readable(DescriptorChain c) {
        byte[] out = new byte[(int) c.readableLength()];
        int at = 0;
        for (int i = 0; i < c.readableCount(); i++) {
            MemorySegment.copy(c.segment(i), ValueLayout.JAVA_BYTE, c.offset(i), out, at, c.length(i));
            at += c.length(i);
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void emptyQueuePopsEmpty(boolean packed) {
        try (VirtqueueDriver d = driver(packed, false, false)) {
            Virtqueue q = d.newDeviceQueue();
            DescriptorChain c = DescriptorChain.forQueue(q);
            assertEquals(Virtqueue.EMPTY, q.pop(c));
            assertEquals(Virtqueue.EMPTY, q.pop(c));
            assertEquals(0, q.inflight());
            q.publish();
            assertFalse(q.needsNotification(), "nothing published, nothing to notify");
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void blkShapedRequestRoundTrip(boolean packed) {
        try (VirtqueueDriver d = driver(packed, false, false)) {
            Virtqueue q = d.newDeviceQueue();
            DescriptorChain c = DescriptorChain.forQueue(q);
            BlkRequests.Request r = BlkRequests.add(d, 1, 0x1234_5678_9AL, 4096, 1, false, 77);
            d.memory().write(r.data(), bytes(4096, 3));
            assertTrue(d.kickPrepare(), "notifications enabled: first addition kicks");

            assertEquals(Virtqueue.POPPED, q.pop(c));
            assertEquals(r.id(), c.id());
            assertEquals(3, c.bufferCount());
            assertEquals(2, c.readableCount());
            assertEquals(1, c.writableCount());
            assertEquals(16 + 4096, c.readableLength());
            assertEquals(1, c.writableLength());
            assertEquals(1, c.readIntLE(0));
            assertEquals(0x1234_5678_9AL, c.readLongLE(8));
            assertFalse(c.isWritable(1));
            assertTrue(c.isWritable(2));
            byte[] seen = readable(c);
            assertArrayEquals(bytes(4096, 3), java.util.Arrays.copyOfRange(seen, 16, seen.length));
            assertEquals(1, q.inflight());
            // each buffer's device address as the driver gave it (what the vhost-user bridge forwards)
            assertEquals(r.header(), c.address(0));
            assertEquals(r.data(), c.address(1));
            assertEquals(r.status(), c.address(2));
            // payload copies through the chain's helpers are counted; direct segment reads above are not
            assertEquals(0, c.copiedBytes());
            try (Arena a = Arena.ofConfined()) {
                assertEquals(4096, c.readTo(16, a.allocate(4096), 0, 4096));
            }
            assertEquals(4096, c.copiedBytes());

            c.writeLastByte((byte) 0);
            q.complete(c.id(), 1);
            UsedBuffer u = new UsedBuffer();
            assertFalse(d.reap(u), "not visible before publish");
            q.publish();
            assertTrue(q.needsNotification());
            assertTrue(d.interrupt());
            assertTrue(d.reap(u));
            assertEquals(r.id(), u.id);
            assertEquals(1, u.len);
            assertEquals(77, u.token);
            assertEquals(0, BlkRequests.status(d, r));
            assertEquals(0, q.inflight());
            assertEquals(d.size(), d.numFree());
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void batchIsPublishedOnceAndReapedInCompletionOrder(boolean packed) {
        try (VirtqueueDriver d = driver(packed, true, false)) {
            Virtqueue q = d.newDeviceQueue();
            DescriptorChain c = DescriptorChain.forQueue(q);
            int[] ids = new int[5];
            for (int i = 0; i < 5; i++) {
                long a = d.memory().allocate(100);
                ids[i] = d.chain().readable(a, 50).writable(a + 50, 50).add(i);
            }
            int[] popped = new int[5];
            for (int i = 0; i < 5; i++) {
                assertEquals(Virtqueue.POPPED, q.pop(c));
                popped[i] = c.id();
            }
            assertArrayEquals(ids, popped);
            assertEquals(Virtqueue.EMPTY, q.pop(c));
            for (int i = 4; i >= 0; i--) q.complete(popped[i], i);
            UsedBuffer u = new UsedBuffer();
            assertFalse(d.reap(u));
            q.publish();
            for (int i = 4; i >= 0; i--) {
                assertTrue(d.reap(u));
                assertEquals(ids[i], u.id);
                assertEquals(i, u.len);
                assertEquals(i, u.token);
            }
            assertFalse(d.reap(u));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void indirectChainUsesOneRingDescriptor(boolean packed) {
        try (VirtqueueDriver d = driver(packed, false, true)) {
            Virtqueue q = d.newDeviceQueue();
            DescriptorChain c = DescriptorChain.forQueue(q);
            long a = d.memory().allocate(5000);
            d.memory().write(a, bytes(5000, 9));
            int id = d.chain().readable(a, 1000).readable(a + 1000, 1000).readable(a + 2000, 1000)
                    .writable(a + 3000, 1000).writable(a + 4000, 1000).add(5);
            assertEquals(d.size() - 1, d.numFree());
            assertEquals(Virtqueue.POPPED, q.pop(c));
            assertEquals(id, c.id());
            assertEquals(3, c.readableCount());
            assertEquals(2, c.writableCount());
            assertArrayEquals(java.util.Arrays.copyOf(bytes(5000, 9), 3000), readable(c));
            q.complete(id, 2000);
            q.publish();
            UsedBuffer u = new UsedBuffer();
            assertTrue(d.reap(u));
            assertEquals(1, u.descriptors);
            assertEquals(d.size(), d.numFree());
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void bufferSpanningTwoMappingsBecomesTwoBuffers(boolean packed) {
        try (VirtqueueDriver d = driver(packed, false, false)) {
            Virtqueue q = d.newDeviceQueue();
            DescriptorChain c = DescriptorChain.forQueue(q);
            long boundary = d.memory().table().guestBase(3);   // data region 1 starts here (ring, tables, data0, data1)
            d.memory().write(boundary - 100, bytes(300, 1));
            d.chain().readable(boundary - 100, 300).writable(boundary + 1000, 8).add(0);
            assertEquals(Virtqueue.POPPED, q.pop(c));
            assertEquals(3, c.bufferCount());
            assertEquals(100, c.length(0));
            assertEquals(200, c.length(1));
            assertNotSame(c.segment(0), c.segment(1));
            assertEquals(300, c.readableLength());
            assertArrayEquals(bytes(300, 1), readable(c));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void zeroLengthDescriptorsProduceNoBuffer(boolean packed) {
        try (VirtqueueDriver d = driver(packed, false, false)) {
            Virtqueue q = d.newDeviceQueue();
            DescriptorChain c = DescriptorChain.forQueue(q);
            long a = d.memory().allocate(64);
            d.chain().readable(a, 0).readable(a, 16).writable(a + 16, 0).writable(a + 32, 1).add(0);
            assertEquals(Virtqueue.POPPED, q.pop(c));
            assertEquals(2, c.bufferCount());
            assertEquals(16, c.readableLength());
            assertEquals(1, c.writableLength());
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void copyHelpersStreamAcrossBuffers(boolean packed) {
        try (VirtqueueDriver d = driver(packed, false, false); Arena arena = Arena.ofConfined()) {
            Virtqueue q = d.newDeviceQueue();
            DescriptorChain c = DescriptorChain.forQueue(q);
            long a = d.memory().allocate(64);
            d.memory().write(a, bytes(64, 5));
            long w = d.memory().allocate(64);
            d.memory().fill(w, 64, (byte) 0);
            d.chain().readable(a, 3).readable(a + 3, 5).readable(a + 8, 56).writable(w, 7).writable(w + 7, 57).add(0);
            assertEquals(Virtqueue.POPPED, q.pop(c));
            MemorySegment dst = arena.allocate(64);
            assertEquals(20, c.readTo(2, dst, 0, 20));
            assertArrayEquals(java.util.Arrays.copyOfRange(bytes(64, 5), 2, 22), dst.asSlice(0, 20).toArray(ValueLayout.JAVA_BYTE));
            assertEquals(4, c.readTo(60, dst, 0, 20), "stream ends at 64");
            assertEquals(0, c.readTo(64, dst, 0, 1));
            int v = c.readIntLE(1);   // straddles buffers 0 and 1
            byte[] b = bytes(64, 5);
            assertEquals((b[1] & 0xFF) | (b[2] & 0xFF) << 8 | (b[3] & 0xFF) << 16 | (b[4] & 0xFF) << 24, v);
            MemorySegment src = MemorySegment.ofArray(bytes(64, 8));
            assertEquals(10, c.writeFrom(src, 0, 3, 10));
            assertArrayEquals(java.util.Arrays.copyOf(bytes(64, 8), 10), d.memory().read(w + 3, 10));
            c.writeByte(6, (byte) 0x55);
            c.writeByte(7, (byte) 0x66);
            assertEquals(0x55, d.memory().getByte(w + 6));
            assertEquals(0x66, d.memory().getByte(w + 7));
            assertThrows(IndexOutOfBoundsException.class, () -> c.writeByte(64, (byte) 0));
            assertThrows(IndexOutOfBoundsException.class, () -> c.readByte(64));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void disableNotificationsSuppressesKicksAndEnableReportsPendingWork(boolean packed) {
        for (boolean eventIdx : new boolean[] {false, true}) {
            try (VirtqueueDriver d = driver(packed, eventIdx, false)) {
                Virtqueue q = d.newDeviceQueue();
                DescriptorChain c = DescriptorChain.forQueue(q);
                long a = d.memory().allocate(64);
                // EVENT_IDX: avail_event starts at 0, so the driver's first entry kicks whatever the device does;
                // suppression by a stale avail_event holds once the driver is past it.
                d.chain().writable(a, 8).add(-1);
                assertTrue(d.kickPrepare());
                assertEquals(Virtqueue.POPPED, q.pop(c));
                q.disableNotifications();
                d.chain().writable(a, 8).add(0);
                assertFalse(d.kickPrepare(), "device is polling: no kick");
                assertTrue(q.enableNotifications(), "a buffer arrived while disabled");
                assertEquals(Virtqueue.POPPED, q.pop(c));
                assertFalse(q.enableNotifications(), "nothing pending");
                d.chain().writable(a, 8).add(1);
                assertTrue(d.kickPrepare(), "device re-enabled: kick");
                if (eventIdx) {
                    d.chain().writable(a, 8).add(2);
                    assertFalse(d.kickPrepare(), "EVENT_IDX: already kicked for an entry the device has not reached");
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void driverSuppressionControlsNeedsNotification(boolean packed) {
        for (boolean eventIdx : new boolean[] {false, true}) {
            try (VirtqueueDriver d = driver(packed, eventIdx, false)) {
                Virtqueue q = d.newDeviceQueue();
                DescriptorChain c = DescriptorChain.forQueue(q);
                UsedBuffer u = new UsedBuffer();
                long a = d.memory().allocate(64);
                for (int i = 0; i < 4; i++) d.chain().writable(a, 8).add(i);
                d.disableCallbacks();
                for (int i = 0; i < 2; i++) {
                    assertEquals(Virtqueue.POPPED, q.pop(c));
                    q.complete(c.id(), 0);
                }
                q.publish();
                // Linux's EVENT_IDX disable writes used_event = 0; the first ever publication (idx 0 -> 2) crosses it.
                boolean first = q.needsNotification();
                if (!eventIdx) assertFalse(first, "NO_INTERRUPT / DISABLE: no notification");
                assertTrue(d.reap(u));
                assertTrue(d.reap(u));
                assertFalse(d.reap(u));
                assertTrue(d.enableCallbacks(), "nothing pending");
                assertEquals(Virtqueue.POPPED, q.pop(c));
                q.complete(c.id(), 0);
                q.publish();
                assertTrue(q.needsNotification(), "callbacks enabled: notify");
                assertEquals(Virtqueue.POPPED, q.pop(c));
                q.complete(c.id(), 0);
                q.publish();
                if (eventIdx) {
                    assertFalse(q.needsNotification(), "EVENT_IDX: driver has not consumed the previous one");
                } else {
                    assertTrue(q.needsNotification(), "no EVENT_IDX: every publication notifies");
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void stateSaveAndRestoreContinuesWhereTheQueueStopped(boolean packed) {
        try (VirtqueueDriver d = DriverConfig.of(8).dataRegions(1, 65536).build(packed)) {
            Virtqueue q = d.newDeviceQueue();
            DescriptorChain c = DescriptorChain.forQueue(q);
            UsedBuffer u = new UsedBuffer();
            long a = d.memory().allocate(64);
            // run a few laps so packed wrap counters flip
            for (int round = 0; round < 11; round++) {
                d.chain().readable(a, 8).writable(a + 8, 8).add(round);
                assertEquals(Virtqueue.POPPED, q.pop(c));
                q.complete(c.id(), 8);
                q.publish();
                assertTrue(d.reap(u));
            }
            int[] ids = new int[3];
            for (int i = 0; i < 3; i++) ids[i] = d.chain().readable(a, 8).writable(a + 8, 8).add(100 + i);
            assertEquals(Virtqueue.POPPED, q.pop(c));
            q.complete(c.id(), 8);
            q.publish();
            int lastAvail = q.lastAvailIndex();
            boolean availWrap = q.lastAvailWrapCounter();
            int lastUsed = q.lastUsedIndex();
            boolean usedWrap = q.lastUsedWrapCounter();

            Virtqueue q2 = d.newDeviceQueue();
            q2.restore(lastAvail, availWrap, lastUsed, usedWrap);
            assertFalse(q2.isBroken());
            assertEquals(lastAvail, q2.lastAvailIndex());
            assertEquals(availWrap, q2.lastAvailWrapCounter());
            for (int i = 1; i < 3; i++) {
                assertEquals(Virtqueue.POPPED, q2.pop(c));
                assertEquals(ids[i], c.id());
                q2.complete(c.id(), 8);
            }
            q2.publish();
            for (int i = 0; i < 3; i++) {
                assertTrue(d.reap(u));
                assertEquals(100 + i, u.token);
            }
            assertEquals(Virtqueue.EMPTY, q2.pop(c));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void completeRejectsIdsTheQueueNeverHandedOut(boolean packed) {
        try (VirtqueueDriver d = driver(packed, false, false)) {
            Virtqueue q = d.newDeviceQueue();
            assertThrows(IllegalArgumentException.class, () -> q.complete(-1, 0));
            assertThrows(IllegalArgumentException.class, () -> q.complete(1 << 16, 0));
        }
    }
}
