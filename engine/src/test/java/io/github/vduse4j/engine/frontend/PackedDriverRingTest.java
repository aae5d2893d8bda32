package io.github.vduse4j.engine.frontend;

import static io.github.vduse4j.ring.VirtioRing.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.PackedVirtqueue;
import io.github.vduse4j.ring.RegionTable;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.driver.DriverRing;
import io.github.vduse4j.ring.driver.PackedDriverRing;
import io.github.vduse4j.ring.testkit.PackedRawRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link PackedDriverRing} against the ring module's device side, {@link PackedVirtqueue}, over one memfd: laps of
 * the ring with lists of 1..3 descriptors (lists straddle the end of the ring), out-of-order completion, both kick
 * schemes, SET_VRING_BASE encoding, a device that writes back garbage, and no allocation per request.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class PackedDriverRingTest {
    private static final long GPA = 0x4000_0000L;
    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Bytes of data area per buffer id; each element of a buffer gets its own 64-byte piece of it. */
    private static final int SLOT = 256;

    /** A driver ring, the device queue over the same memory, and per-id bookkeeping of what was added. */
    private static final class Rig implements AutoCloseable {
        final MemoryRegion mem;
        final PackedDriverRing ring;
        final PackedVirtqueue dev;
        final DescriptorChain chain;
        final long data;
        final int size;
        final long[] addr = new long[3];
        final int[] len = new int[3];
        final boolean[] writable = new boolean[3];
        final int[] ids;
        final int[] lens;
        /** Per in-flight id: the tag, the expected written length, the element count and the data slot. */
        final long[] tagOf;
        final int[] writableOf;
        final int[] countOf;
        final int[] slotOf;
        /** Data slots not used by a buffer in flight (at most size buffers are). */
        final int[] freeSlots;
        int freeSlotCount;

        Rig(int size, boolean eventIdx) {
            this.size = size;
            mem = MemoryRegion.memfd(descTableBytes(size) + 3 * 4096L + (long) size * SLOT + 4096, GPA);
            ring = new PackedDriverRing(mem, size, eventIdx, false, 0);
            ring.disableCallbacks();   // the bench's way: busy polling
            data = mem.allocate((long) size * SLOT, 4096);
            RegionTable table = RegionTable.builder().add(GPA, mem.segment(), GuestMemory.READ | GuestMemory.WRITE)
                    .build();
            dev = new PackedVirtqueue(size, view(ring.descAddress(), descTableBytes(size)),
                    view(ring.driverAreaAddress(), EVENT_SUPPRESSION_BYTES),
                    view(ring.deviceAreaAddress(), EVENT_SUPPRESSION_BYTES), table, eventIdx, false);
            chain = DescriptorChain.forQueue(dev);
            ids = new int[size];
            lens = new int[size];
            tagOf = new long[size];
            writableOf = new int[size];
            countOf = new int[size];
            slotOf = new int[size];
            freeSlots = new int[size];
            for (int i = 0; i < size; i++) {
                freeSlots[freeSlotCount++] = i;
            }
        }

        MemorySegment view(long gpa, long bytes) {
            return mem.segment().asSlice(gpa - mem.gpa(), bytes);
        }

        MemorySegment desc() {
            return view(ring.descAddress(), descTableBytes(size));
        }

        /**
         * Adds a buffer of {@code count} elements tagged {@code tag}: a readable element holding the tag, then
         * (count >= 2) writable ones. Element k of the buffer sits at piece k of a data slot of its own, with a
         * length that depends on the tag. Returns the id or -1.
         */
        int add(long tag, int count) {
            if (freeSlotCount == 0) {
                return -1;   // size buffers in flight: no descriptor is free either
            }
            int s = freeSlots[freeSlotCount - 1];
            long slot = data + (long) s * SLOT;
            for (int k = 0; k < count; k++) {
                addr[k] = mem.gpaOf(slot + 64L * k);
                len[k] = k == 0 ? 8 : 1 + (int) ((tag + k) % 48);
                writable[k] = k > 0;
            }
            mem.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, slot, tag);
            int id = ring.add(addr, len, writable, count, 0);
            if (id >= 0) {
                freeSlotCount--;
                slotOf[id] = s;
                tagOf[id] = tag;
                countOf[id] = count;
                int w = 0;
                for (int k = 1; k < count; k++) {
                    w += len[k];
                }
                writableOf[id] = w;
            }
            return id;
        }

        /** Device side: pops one buffer, checks it against what the driver added; returns its id or -1 if none. */
        int pop() {
            int r = dev.pop(chain);
            if (r == Virtqueue.EMPTY) {
                return -1;
            }
            assertEquals(Virtqueue.POPPED, r, "chain error " + chain.error());
            int id = chain.id();
            assertEquals(countOf[id], chain.bufferCount(), "elements of id " + id);
            assertEquals(8, chain.readableLength());
            assertEquals(writableOf[id], chain.writableLength(), "writable bytes of id " + id);
            assertEquals(tagOf[id], chain.readLongLE(0), "the device reads what the driver wrote");
            assertEquals(data + (long) slotOf[id] * SLOT, chain.offset(0), "element address");
            return id;
        }

        /** Driver side: polls used buffers into ids/lens and frees their data slots. */
        int poll() {
            int n = ring.poll(ids, lens, ids.length);
            for (int i = 0; i < n; i++) {
                freeSlots[freeSlotCount++] = slotOf[ids[i]];
            }
            return n;
        }

        /** Writes a used descriptor by hand at ring index {@code index}, as a broken device might. */
        void writeUsed(int index, int id, int length, boolean wrap, boolean write) {
            MemorySegment d = desc();
            long off = (long) DESC_SIZE * index;
            d.set(U32, off + DESC_LEN, length);
            d.set(S16, off + PACKED_DESC_ID, (short) id);
            d.set(S16, off + PACKED_DESC_FLAGS, (short) (PackedRawRing.usedFlags(wrap) | (write ? DESC_F_WRITE : 0)));
        }

        @Override
        public void close() {
            mem.close();
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {3, 7, 8, 64})
    void lapsTheRingManyTimesInOrder(int size) {
        try (Rig r = new Rig(size, false)) {
            Random random = new Random(size);
            long nextTag = 0, expectTag = 0;
            int laps = 0;
            boolean wrap = r.ring.availWrapCounter();
            while (expectTag < 20_000) {
                while (r.add(nextTag, 1 + random.nextInt(3)) >= 0) {
                    nextTag++;
                }
                r.ring.flush();
                if (r.ring.availWrapCounter() != wrap) {
                    laps++;
                    wrap = r.ring.availWrapCounter();
                }
                for (int id; (id = r.pop()) >= 0; ) {
                    r.dev.complete(id, r.writableOf[id]);
                }
                r.dev.publish();
                int n = r.poll();
                assertTrue(n > 0, "completions arrive: " + r.ring);
                for (int i = 0; i < n; i++) {
                    int id = r.ids[i];
                    assertEquals(expectTag++, r.tagOf[id], "in order");
                    assertEquals(r.writableOf[id], r.lens[i], "written length of id " + id);
                }
            }
            assertTrue(laps >= 20_000 / size - 1, laps + " laps");
            assertEquals(size, r.ring.freeDescriptors(), "every descriptor back");
            assertEquals(0, r.ring.deviceFaults());
            assertFalse(r.ring.broken());
            // driver and device agree on where they stand
            assertEquals(r.dev.lastAvailIndex(), r.ring.nextAvail());
            assertEquals(r.dev.lastAvailWrapCounter(), r.ring.availWrapCounter());
            assertEquals(r.dev.lastUsedIndex(), r.ring.nextUsed());
            assertEquals(r.dev.lastUsedWrapCounter(), r.ring.usedWrapCounter());
        }
    }

    @Test
    void outOfOrderCompletionsFreeTheRightIdsAndDescriptors() {
        int size = 16;
        try (Rig r = new Rig(size, false)) {
            Random random = new Random(7);
            long nextTag = 0;
            int completed = 0;
            boolean[] done = new boolean[60_000];
            List<Integer> popped = new ArrayList<>();
            while (nextTag < done.length) {
                while (nextTag < done.length && r.add(nextTag, 1 + random.nextInt(3)) >= 0) {
                    nextTag++;
                }
                r.ring.flush();
                for (int id; (id = r.pop()) >= 0; ) {
                    popped.add(id);
                }
                // complete a random part of what the device holds, in random order; the rest stays in flight
                Collections.shuffle(popped, random);
                int k = popped.isEmpty() ? 0 : 1 + random.nextInt(popped.size());
                for (int j = 0; j < k; j++) {
                    int id = popped.removeLast();
                    r.dev.complete(id, r.writableOf[id]);
                }
                r.dev.publish();
                int n = r.poll();
                assertEquals(k, n, "every completion seen: " + r.ring);
                for (int i = 0; i < n; i++) {
                    int id = r.ids[i];
                    long tag = r.tagOf[id];
                    assertFalse(done[(int) tag], "tag " + tag + " completed twice");
                    done[(int) tag] = true;
                    completed++;
                    assertEquals(r.writableOf[id], r.lens[i], "length of id " + id);
                }
                int inflightDescriptors = 0;
                for (int id : popped) {
                    inflightDescriptors += r.countOf[id];
                }
                assertEquals(size - inflightDescriptors, r.ring.freeDescriptors(), "free descriptors: " + r.ring);
            }
            for (int id : popped) {
                r.dev.complete(id, 0);
            }
            r.dev.publish();
            completed += r.poll();
            assertEquals(done.length, completed);
            assertEquals(size, r.ring.freeDescriptors());
            assertEquals(0, r.ring.deviceFaults(), r.ring.firstDeviceFault());
        }
    }

    @Test
    void kicksFollowTheDeviceFlagsWithoutEventIdx() {
        try (Rig r = new Rig(8, false)) {
            assertFalse(r.ring.flush(), "nothing added, nothing to kick");
            r.add(0, 1);
            assertTrue(r.ring.flush(), "a fresh Device Area is RING_EVENT_FLAGS_ENABLE");
            r.dev.disableNotifications();
            r.add(1, 1);
            assertFalse(r.ring.flush(), "RING_EVENT_FLAGS_DISABLE");
            assertEquals(0, r.pop());
            assertEquals(1, r.pop());
            assertFalse(r.dev.enableNotifications(), "drained");
            r.add(2, 2);
            assertTrue(r.ring.flush(), "RING_EVENT_FLAGS_ENABLE again");
            // §2.8.10: DESC is only valid with EVENT_IDX; a driver without it kicks, as for the reserved value 3
            MemorySegment deviceEvent = r.view(r.ring.deviceAreaAddress(), 4);
            deviceEvent.set(U32, 0, EVENT_FLAGS_DESC << 16 | 0x8000 | 7);
            r.add(3, 1);
            assertTrue(r.ring.flush());
            deviceEvent.set(U32, 0, 3 << 16);
            r.add(4, 1);
            assertTrue(r.ring.flush());
        }
    }

    @Test
    void eventIdxKicksOnlyWhenTheAskedForDescriptorIsMadeAvailable() {
        try (Rig r = new Rig(8, true)) {
            assertFalse(r.dev.enableNotifications());   // DESC, off 0, wrap 1
            int first = r.add(0, 3);                      // descriptors 0..2
            assertTrue(r.ring.flush(), "descriptor 0 was asked for");
            int second = r.add(1, 3);                     // 3..5 (Linux ids: a list of 3 consumes 3 free-list entries)
            assertFalse(r.ring.flush(), "the device has not come back for more");
            assertEquals(first, r.pop());
            assertEquals(second, r.pop());
            assertFalse(r.dev.enableNotifications());    // off 6, wrap 1
            r.dev.complete(first, r.writableOf[first]);
            r.dev.complete(second, r.writableOf[second]);
            r.dev.publish();
            assertEquals(2, r.poll());
            r.add(2, 3);                                  // 6, 7, 0: the driver wrap counter flips to 0
            assertFalse(r.ring.availWrapCounter());
            assertTrue(r.ring.flush(), "descriptor 6 of the previous lap was among those added");
            r.add(3, 2);                                  // 1, 2
            assertFalse(r.ring.flush(), "event offset 6 lies behind");
            r.dev.disableNotifications();
            r.add(4, 1);
            assertFalse(r.ring.flush(), "RING_EVENT_FLAGS_DISABLE holds with EVENT_IDX too");
            // the device catches up and asks for the next descriptor (4, wrap 0)
            for (int i = 0; i < 3; i++) {
                assertTrue(r.pop() >= 0);
            }
            assertFalse(r.dev.enableNotifications());
            r.add(5, 1);
            assertTrue(r.ring.flush(), "descriptor 4 of this lap");
        }
    }

    @Test
    void theDeviceIsAskedForNoUsedBufferNotifications() {
        try (Rig r = new Rig(8, true)) {
            MemorySegment driverEvent = r.view(r.ring.driverAreaAddress(), 4);
            assertEquals(EVENT_FLAGS_DISABLE, driverEvent.get(S16, EVENT_FLAGS));
            for (int round = 0; round < 50; round++) {
                int id = r.add(round, 2);
                r.ring.flush();
                assertEquals(id, r.pop());
                r.dev.complete(id, 1);
                r.dev.publish();
                assertFalse(r.dev.needsNotification(), "the driver polls: no interrupt wanted");
                assertEquals(1, r.poll());
            }
        }
    }

    @Test
    void vringBaseEncodesIndexesAndWrapCounters() {
        assertEquals(0x8000_8000, PackedDriverRing.base(0, true, 0, true), "a fresh ring: idx 0, wrap counters 1");
        assertEquals(5 | 3 << 16 | 0x8000_0000, PackedDriverRing.base(5, false, 3, true));
        try (Rig r = new Rig(8, false)) {
            assertEquals(0x8000_8000, r.ring.vringBase());
            for (int i = 0; i < 5; i++) {   // 15 descriptors: one lap and 7
                r.add(i, 3);
                r.ring.flush();
                int id = r.pop();
                r.dev.complete(id, 0);
                r.dev.publish();
                assertEquals(1, r.poll());
            }
            int base = r.ring.vringBase();
            assertEquals(PackedDriverRing.base(7, false, 7, false), base);
            // a device restarted from that base (as the engine decodes SET_VRING_BASE) carries on with the driver
            r.dev.restore(base & 0x7fff, (base & 0x8000) != 0, (base >>> 16) & 0x7fff, (base >>> 31) != 0);
            assertFalse(r.dev.isBroken());
            int id = r.add(99, 3);
            r.ring.flush();
            assertEquals(id, r.pop());
            r.dev.complete(id, r.writableOf[id]);
            r.dev.publish();
            assertEquals(1, r.poll());
            assertEquals(99, r.tagOf[r.ids[0]]);
        }
    }

    @Test
    void anIdOutsideTheRingIsCountedAndStopsTheRing() {
        try (Rig r = new Rig(8, false)) {
            int id = r.add(0, 3);
            r.ring.flush();
            assertEquals(id, r.pop());
            r.writeUsed(0, 200, 1, true, true);
            assertEquals(0, r.poll(), "nothing delivered");
            assertEquals(1, r.ring.deviceFaults());
            assertTrue(r.ring.broken());
            assertTrue(r.ring.firstDeviceFault().contains("id 200"), r.ring.firstDeviceFault());
            assertTrue(r.ring.firstDeviceFault().contains("outside the ring"), r.ring.firstDeviceFault());
            // broken: no more adds, no more polls, no double counting
            assertEquals(0, r.poll());
            assertEquals(1, r.ring.deviceFaults());
            assertEquals(-1, r.ring.add(r.addr, r.len, r.writable, 1, 0));
            assertFalse(r.ring.flush());
            // reset starts afresh (a new device queue over the zeroed ring)
            r.ring.reset();
            assertFalse(r.ring.broken());
            assertEquals(0, r.ring.deviceFaults());
            assertNull(r.ring.firstDeviceFault());
            assertEquals(8, r.ring.freeDescriptors());
        }
    }

    @Test
    void anIdThatIsNotInFlightIsCounted() {
        try (Rig r = new Rig(8, false)) {
            int id = r.add(0, 3);
            r.ring.flush();
            assertEquals(id, r.pop());
            r.writeUsed(0, id + 1, 1, true, true);   // in range, never handed out
            assertEquals(0, r.poll());
            assertEquals(1, r.ring.deviceFaults());
            assertTrue(r.ring.broken());
            assertTrue(r.ring.firstDeviceFault().contains("not in flight"), r.ring.firstDeviceFault());
        }
    }

    @Test
    void aSecondCompletionOfTheSameIdIsCounted() {
        try (Rig r = new Rig(8, false)) {
            int a = r.add(0, 3);
            r.add(1, 3);
            r.ring.flush();
            assertEquals(a, r.pop());
            r.dev.complete(a, r.writableOf[a]);
            r.dev.publish();
            // a device that also marks descriptor 3 used with the same id
            r.writeUsed(3, a, 1, true, true);
            assertEquals(1, r.poll(), "the real completion is delivered");
            assertEquals(a, r.ids[0]);
            assertEquals(1, r.ring.deviceFaults());
            assertTrue(r.ring.broken());
        }
    }

    @Test
    void aLengthBeyondTheWritablePartIsCountedAndClamped() {
        try (Rig r = new Rig(8, false)) {
            int id = r.add(0, 3);
            r.ring.flush();
            assertEquals(id, r.pop());
            r.writeUsed(0, id, 1 << 20, true, true);
            assertEquals(1, r.poll());
            assertEquals(r.writableOf[id], r.lens[0], "clamped to what the buffer can hold");
            assertEquals(1, r.ring.deviceFaults());
            assertFalse(r.ring.broken(), "accounting is intact: the ring goes on");
            assertTrue(r.ring.firstDeviceFault().contains("1048576 bytes"), r.ring.firstDeviceFault());
            // the device queue is out of step after the hand-written element; a fresh pair carries on
        }
    }

    @Test
    void aLengthWithoutTheWriteFlagMeansNothingWritten() {
        try (Rig r = new Rig(8, false)) {
            int id = r.add(0, 3);
            r.ring.flush();
            assertEquals(id, r.pop());
            r.writeUsed(0, id, 12345, true, false);   // §2.8.4: len is reserved without WRITE
            assertEquals(1, r.poll());
            assertEquals(0, r.lens[0]);
            assertEquals(0, r.ring.deviceFaults());
        }
    }

    @Test
    void noAllocationPerRequest() {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (Rig r = new Rig(64, true)) {
            for (int k = 0; k < 3; k++) {
                r.addr[k] = r.mem.gpaOf(r.data + 64L * k);
                r.len[k] = 16;
                r.writable[k] = k > 0;
            }
            r.dev.disableNotifications();
            assertEquals(0, run(r, 50_000));   // warm-up: class loading, JIT
            long before = threads.getCurrentThreadAllocatedBytes();
            int bad = run(r, 200_000);
            long allocated = threads.getCurrentThreadAllocatedBytes() - before;
            assertEquals(0, bad);
            assertTrue(allocated < 200_000 / 4, allocated + " bytes allocated for 200000 requests");
        }
    }

    /** Driver and device in one loop, allocation-free (no boxing, no asserts on the way); returns mismatches. */
    private static int run(Rig r, int requests) {
        int bad = 0;
        for (int done = 0; done < requests; ) {
            int added = 0;
            while (r.ring.add(r.addr, r.len, r.writable, 3, 0) >= 0) {
                added++;
            }
            r.ring.flush();
            for (int popped; (popped = r.dev.pop(r.chain)) != Virtqueue.EMPTY; ) {
                if (popped != Virtqueue.POPPED || r.chain.writableLength() != 32) {
                    bad++;
                }
                if (popped == Virtqueue.NEEDS_RESET) {
                    return bad + 1_000_000;
                }
                r.dev.complete(r.chain.id(), 1);
            }
            r.dev.publish();
            int n = r.ring.poll(r.ids, r.lens, r.ids.length);
            for (int i = 0; i < n; i++) {
                if (r.lens[i] != 1) {
                    bad++;
                }
            }
            if (n != added) {
                bad++;
            }
            if (n == 0) {
                return bad + 1_000_000;   // no progress: the driver lost track of the ring
            }
            done += n;
        }
        return bad + (int) r.ring.deviceFaults();
    }
}
