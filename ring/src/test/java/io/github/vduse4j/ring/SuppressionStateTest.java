package io.github.vduse4j.ring;

import static io.github.vduse4j.ring.VirtioRing.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.PackedDriver;
import io.github.vduse4j.ring.testkit.SplitDriver;
import io.github.vduse4j.ring.testkit.UsedBuffer;

import org.junit.jupiter.api.Test;

/** What the device writes into the shared suppression fields, and the index state it reports. */
class SuppressionStateTest {
    @Test
    void splitWithoutEventIdxUsesTheNoNotifyFlag() {
        try (SplitDriver d = DriverConfig.of(8).split()) {
            SplitVirtqueue q = d.newDeviceQueue();
            q.disableNotifications();
            assertEquals(USED_F_NO_NOTIFY, d.raw().usedFlags());
            q.enableNotifications();
            assertEquals(0, d.raw().usedFlags());
        }
    }

    @Test
    void splitWithEventIdxKeepsFlagsZeroAndPublishesAvailEvent() {
        try (SplitDriver d = DriverConfig.of(8).eventIdx(true).split().startAt(0xFFFE)) {
            SplitVirtqueue q = d.newDeviceQueue();
            DescriptorChain c = DescriptorChain.forQueue(q);
            long a = d.memory().allocate(16);
            for (int i = 0; i < 3; i++) d.chain().writable(a, 8).add(i);
            for (int i = 0; i < 3; i++) assertEquals(Virtqueue.POPPED, q.pop(c));
            assertEquals(0x0001, q.lastAvailIndex(), "crossed the u16 wrap");
            q.disableNotifications();
            assertEquals(0, d.raw().usedFlags(), "§2.7.10: flags stay 0 with EVENT_IDX");
            assertFalse(q.enableNotifications());
            assertEquals(0x0001, d.raw().availEvent());
        }
    }

    @Test
    void splitUsedIndexAndRestoreFromTheRing() {
        try (SplitDriver d = DriverConfig.of(4).split().startAt(0xFFFF)) {
            SplitVirtqueue q = d.newDeviceQueue();
            DescriptorChain c = DescriptorChain.forQueue(q);
            UsedBuffer u = new UsedBuffer();
            long a = d.memory().allocate(16);
            d.chain().writable(a, 8).add(1);
            d.chain().writable(a, 8).add(2);
            assertEquals(Virtqueue.POPPED, q.pop(c));
            q.complete(c.id(), 3);
            q.publish();
            assertEquals(0, q.usedIndexInRing());
            assertEquals(0, q.lastUsedIndex());
            assertEquals(Virtqueue.POPPED, q.pop(c));
            assertEquals(2, q.inflight() + 1);
            // vhost-user reconnect: frontend says next avail = 0 (the in-flight chain is resubmitted by the
            // engine's inflight tracking); used comes from the ring.
            SplitVirtqueue q2 = d.newDeviceQueue();
            q2.restore(0);
            assertEquals(0, q2.lastAvailIndex());
            assertEquals(0, q2.lastUsedIndex());
            assertEquals(Virtqueue.POPPED, q2.pop(c));
            q2.complete(c.id(), 5);
            q2.publish();
            assertTrue(d.reap(u));
            assertEquals(1, u.token);
            assertTrue(d.reap(u));
            assertEquals(2, u.token);
            assertEquals(5, u.len);
        }
    }

    @Test
    void packedDeviceEventStructure() {
        try (PackedDriver d = DriverConfig.of(5).eventIdx(true).packed()) {
            PackedVirtqueue q = d.newDeviceQueue();
            DescriptorChain c = DescriptorChain.forQueue(q);
            long a = d.memory().allocate(16);
            q.disableNotifications();
            assertEquals(EVENT_FLAGS_DISABLE, d.raw().deviceEventFlags());
            UsedBuffer u = new UsedBuffer();
            for (int i = 0; i < 7; i++) {   // past the end of the ring: wrap counter 0
                d.chain().writable(a, 8).add(i);
                assertEquals(Virtqueue.POPPED, q.pop(c));
                q.complete(c.id(), 8);
                q.publish();
                assertTrue(d.reap(u));
            }
            assertEquals(2, q.lastAvailIndex());
            assertFalse(q.lastAvailWrapCounter());
            assertEquals(2, q.lastUsedIndex());
            assertFalse(q.lastUsedWrapCounter());
            assertFalse(q.enableNotifications());
            assertEquals(EVENT_FLAGS_DESC, d.raw().deviceEventFlags());
            assertEquals(2, d.raw().deviceEventOffWrap(), "offset 2, wrap bit 0");
        }
        try (PackedDriver d = DriverConfig.of(5).packed()) {
            PackedVirtqueue q = d.newDeviceQueue();
            q.disableNotifications();
            q.enableNotifications();
            assertEquals(EVENT_FLAGS_ENABLE, d.raw().deviceEventFlags(), "no EVENT_IDX: plain ENABLE");
        }
    }

    /** Used index goes 3 (wrap 1) -> 1 (wrap 0) across the ring end of a size-5 ring in one check. */
    private static boolean notifyAcrossTheEnd(int offWrap) {
        try (PackedDriver d = DriverConfig.of(5).eventIdx(true).packed()) {
            PackedVirtqueue q = d.newDeviceQueue();
            DescriptorChain c = DescriptorChain.forQueue(q);
            UsedBuffer u = new UsedBuffer();
            long a = d.memory().allocate(16);
            for (int round = 0; round < 2; round++) {
                for (int i = 0; i < 3; i++) d.chain().writable(a, 8).add(i);
                for (int i = 0; i < 3; i++) {
                    assertEquals(Virtqueue.POPPED, q.pop(c));
                    q.complete(c.id(), 8);
                }
                if (round == 1) d.raw().driverEvent(offWrap, EVENT_FLAGS_DESC);
                q.publish();
                boolean notify = q.needsNotification();
                if (round == 1) {
                    assertEquals(1, q.lastUsedIndex());
                    assertFalse(q.lastUsedWrapCounter());
                    return notify;
                }
                for (int i = 0; i < 3; i++) assertTrue(d.reap(u));
            }
            throw new AssertionError();
        }
    }

    @Test
    void packedDriverEventOffsetsAcrossTheRingEnd() {
        assertTrue(notifyAcrossTheEnd(4 | 1 << 15), "descriptor 4 of the previous lap was used");
        assertTrue(notifyAcrossTheEnd(3 | 1 << 15), "descriptor 3 of the previous lap was used");
        assertTrue(notifyAcrossTheEnd(0), "descriptor 0 of the current lap was used");
        assertFalse(notifyAcrossTheEnd(1), "descriptor 1 of the current lap is not used yet");
        assertFalse(notifyAcrossTheEnd(2 | 1 << 15), "descriptor 2 of the previous lap was used before this batch");
    }
}
