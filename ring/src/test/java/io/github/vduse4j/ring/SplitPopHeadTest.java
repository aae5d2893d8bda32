package io.github.vduse4j.ring;

import static io.github.vduse4j.ring.VirtioRing.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.DriverMemory;
import io.github.vduse4j.ring.testkit.SplitDriver;
import io.github.vduse4j.ring.testkit.SplitRawRing;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link SplitVirtqueue#popHead}: a restarted device resubmits chains an earlier instance popped and never used, from
 * their heads, whatever order the others were used in; malformed chains and heads give the same result codes as pop.
 */
class SplitPopHeadTest {
    private static final int SIZE = 8;
    private final SplitDriver driver = DriverConfig.of(SIZE).indirect(true).dataRegions(2, 65536).split();
    private final SplitRawRing raw = driver.raw();
    private final DescriptorChain chain = new DescriptorChain(DescriptorChain.capacityFor(SIZE));
    private final long data = DriverMemory.DATA_BASE;
    private final long table = DriverMemory.TABLE_BASE;

    @AfterEach
    void close() { driver.close(); }

    /** Adds an echo request: 16 readable bytes holding {@code token}, 16 writable; returns its head. */
    private int add(long token) {
        long in = driver.memory().allocate(16);
        long out = driver.memory().allocate(16);
        byte[] b = new byte[16];
        for (int i = 0; i < 16; i++) b[i] = (byte) (token * 31 + i);
        driver.memory().write(in, b);
        int head = driver.chain().readable(in, 16).writable(out, 16).indirect(false).add(token);
        assertTrue(head >= 0);
        return head;
    }

    /** Serves a popped chain: echoes its readable bytes into its writable ones. */
    private static void echo(Virtqueue q, DescriptorChain c) {
        MemorySegment tmp = Arena.ofAuto().allocate(c.readableLength());
        c.readTo(0, tmp, 0, c.readableLength());
        q.complete(c.id(), (int) c.writeFrom(tmp, 0, 0, c.readableLength()));
    }

    @Test
    void resubmitsWhatWasInFlightAfterOutOfOrderUse() {
        SplitVirtqueue first = driver.newDeviceQueue();
        int[] heads = new int[4];
        for (int n = 0; n < 4; n++) heads[n] = add(n);
        for (int n = 0; n < 4; n++) {
            assertEquals(Virtqueue.POPPED, first.pop(chain));
            assertEquals(heads[n], chain.id());
        }
        first.complete(heads[1], 16);   // out of order: 1 and 3 only
        first.complete(heads[3], 16);
        first.publish();
        // the first device is gone; the driver reaps 1 and 3 and reuses their descriptors for two new requests
        UsedBuffer u = new UsedBuffer();
        Set<Long> done = new HashSet<>();
        while (driver.reap(u)) assertTrue(done.add(u.token));
        assertEquals(Set.of(1L, 3L), done);
        int h4 = add(4);
        int h5 = add(5);
        assertTrue(Set.of(heads[1], heads[3]).containsAll(Set.of(h4, h5)), "descriptors reused");

        SplitVirtqueue second = new SplitVirtqueue(SIZE, driver.descSegment(), driver.availSegment(),
                driver.usedSegment(), driver.memory().table(), false, true);
        int ringUsed = second.usedIndexInRing();
        assertEquals(2, ringUsed);
        second.restore(ringUsed + 2);   // every pop was used once or is one of the two heads in flight
        for (int n : new int[] {0, 2}) {
            assertEquals(Virtqueue.POPPED, second.popHead(chain, heads[n]));
            assertEquals(heads[n], chain.id());
            assertEquals(16, chain.readableLength());
            assertEquals((byte) (n * 31), chain.readByte(0), "request " + n + "'s own buffer");
            echo(second, chain);
        }
        assertEquals(Virtqueue.POPPED, second.pop(chain));
        assertEquals(h4, chain.id());
        echo(second, chain);
        assertEquals(Virtqueue.POPPED, second.pop(chain));
        assertEquals(h5, chain.id());
        echo(second, chain);
        assertEquals(Virtqueue.EMPTY, second.pop(chain));
        second.publish();
        while (driver.reap(u)) {
            assertTrue(done.add(u.token), "token " + u.token + " used twice");
            assertEquals(16, u.len);
        }
        assertEquals(Set.of(0L, 1L, 2L, 3L, 4L, 5L), done);
        assertEquals(0, second.inflight());
    }

    @Test
    void resubmittedChainsAreAccountedInFlight() {
        raw.descriptor(0, data, 8, DESC_F_WRITE, 0).descriptor(1, data + 8, 8, DESC_F_WRITE, 0);
        SplitVirtqueue q = driver.newDeviceQueue();
        q.restore(2);
        assertEquals(Virtqueue.POPPED, q.popHead(chain, 1));
        assertEquals(1, q.inflight());
        assertEquals(Virtqueue.POPPED, q.popHead(chain, 0));
        assertEquals(2, q.inflight());
        q.complete(1, 8);
        q.complete(0, 8);
        q.publish();
        assertEquals(2, raw.usedIdx());
        assertEquals(1, raw.usedId(0));
        assertEquals(0, raw.usedId(1));
        assertEquals(2, q.lastAvailIndex(), "popHead leaves the avail index alone");
    }

    private SplitVirtqueue restoredTo(int entries) {
        SplitVirtqueue q = driver.newDeviceQueue();
        q.restore(entries);
        return q;
    }

    private void expectChainError(SplitVirtqueue q, int head, int error) {
        assertEquals(Virtqueue.CHAIN_ERROR, q.popHead(chain, head), () -> ChainError.name(chain.error()));
        assertEquals(error, chain.error(), () -> ChainError.name(chain.error()));
        assertEquals(head, chain.id());
        assertEquals(1, q.inflight());
        q.complete(head, 0);
        q.publish();
        assertFalse(q.isBroken());
    }

    private void expectNeedsReset(SplitVirtqueue q, int head, int reason) {
        assertEquals(Virtqueue.NEEDS_RESET, q.popHead(chain, head));
        assertEquals(reason, chain.error(), () -> ChainError.name(chain.error()));
        assertTrue(q.isBroken());
        assertEquals(Virtqueue.NEEDS_RESET, q.popHead(chain, 0), "stays broken");
        assertEquals(ChainError.QUEUE_BROKEN, chain.error());
        assertEquals(Virtqueue.NEEDS_RESET, q.pop(chain));
    }

    @Test
    void loop() {
        raw.descriptor(2, data, 8, DESC_F_NEXT, 3).descriptor(3, data, 8, DESC_F_NEXT, 2);
        expectChainError(restoredTo(1), 2, ChainError.LOOP);
    }

    @Test
    void nextOutsideTheTable() {
        raw.descriptor(0, data, 8, DESC_F_NEXT, SIZE);
        expectChainError(restoredTo(1), 0, ChainError.BAD_INDEX);
    }

    @Test
    void readableAfterWritable() {
        raw.descriptor(0, data, 8, DESC_F_WRITE | DESC_F_NEXT, 1).descriptor(1, data, 8, 0, 0);
        expectChainError(restoredTo(1), 0, ChainError.READABLE_AFTER_WRITABLE);
    }

    @Test
    void unmappedBuffer() {
        raw.descriptor(4, 0x9000_0000_0000L, 8, 0, 0);
        expectChainError(restoredTo(1), 4, ChainError.OUT_OF_MEMORY_RANGE);
    }

    @Test
    void nestedIndirect() {
        raw.indirectEntry(table, 0, table + 64, 16, DESC_F_INDIRECT, 0);
        raw.descriptor(0, table, 16, DESC_F_INDIRECT, 0);
        expectChainError(restoredTo(1), 0, ChainError.NESTED_INDIRECT);
    }

    @Test
    void indirectTableIsFollowed() {
        raw.indirectEntry(table, 0, data, 8, DESC_F_NEXT, 1).indirectEntry(table, 1, data + 64, 4, DESC_F_WRITE, 0);
        raw.descriptor(6, table, 32, DESC_F_INDIRECT, 0);
        SplitVirtqueue q = restoredTo(1);
        assertEquals(Virtqueue.POPPED, q.popHead(chain, 6));
        assertEquals(8, chain.readableLength());
        assertEquals(4, chain.writableLength());
    }

    @Test
    void headOutsideTheTableBreaksTheQueue() {
        expectNeedsReset(restoredTo(1), SIZE, ChainError.BAD_INDEX);
    }

    @Test
    void negativeHeadBreaksTheQueue() {
        expectNeedsReset(restoredTo(1), -1, ChainError.BAD_INDEX);
    }

    @Test
    void moreResubmissionsThanEntriesBetweenUsedAndAvailBreakTheQueue() {
        raw.descriptor(0, data, 8, 0, 0).descriptor(1, data, 8, 0, 0);
        SplitVirtqueue q = restoredTo(1);
        assertEquals(Virtqueue.POPPED, q.popHead(chain, 0));
        expectNeedsReset(q, 1, ChainError.USED_INDEX_JUMP);
    }

    @Test
    void nothingCanBeResubmittedWithoutRoomBeforeTheAvailIndex() {
        expectNeedsReset(driver.newDeviceQueue(), 0, ChainError.USED_INDEX_JUMP);
    }

    @Test
    void brokenQueueStaysBroken() {
        SplitVirtqueue q = restoredTo(2);
        raw.availIdx(SIZE + 5);   // an avail index jump breaks it
        assertEquals(Virtqueue.NEEDS_RESET, q.pop(chain));
        assertEquals(Virtqueue.NEEDS_RESET, q.popHead(chain, 0));
        assertEquals(ChainError.QUEUE_BROKEN, chain.error());
    }
}
