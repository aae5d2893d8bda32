package io.github.vduse4j.engine.frontend;

import static io.github.vduse4j.ring.VirtioRing.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.RegionTable;
import io.github.vduse4j.ring.SplitVirtqueue;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.driver.DriverRing;
import io.github.vduse4j.ring.driver.SplitDriverRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link SplitDriverRing} against {@link SplitVirtqueue}: used lengths, and a device that writes back what it must
 * not (unknown head, a head used twice, a used index running ahead, a length beyond the buffer) is counted as a
 * {@link DriverRing#deviceFaults() device fault} instead of throwing.
 */
class SplitDriverRingTest {
    private static final long GPA = 0x4000_0000L;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort S16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int SIZE = 8;

    private final MemoryRegion mem = MemoryRegion.memfd(64 * 1024, GPA);
    private final SplitDriverRing ring = new SplitDriverRing(mem, SIZE, false, false, 0);

    {
        ring.disableCallbacks();   // the bench's way: busy polling
    }

    private final long data = mem.allocate(4096, 4096);
    private final SplitVirtqueue dev = new SplitVirtqueue(SIZE, view(ring.descAddress(), descTableBytes(SIZE)),
            view(ring.driverAreaAddress(), availRingBytes(SIZE)), view(ring.deviceAreaAddress(), usedRingBytes(SIZE)),
            RegionTable.builder().add(GPA, mem.segment(), GuestMemory.READ | GuestMemory.WRITE).build(), false, false);
    private final DescriptorChain chain = DescriptorChain.forQueue(dev);
    private final int[] ids = new int[SIZE];
    private final int[] lens = new int[SIZE];

    @AfterEach
    void close() {
        mem.close();
    }

    private MemorySegment view(long gpa, long bytes) {
        return mem.segment().asSlice(gpa - mem.gpa(), bytes);
    }

    /** A 3-element buffer: 16 readable bytes, then 512 + 1 writable. Returns the head. */
    private int add() {
        int head = ring.add(new long[] {mem.gpaOf(data), mem.gpaOf(data + 64), mem.gpaOf(data + 1024)},
                new int[] {16, 512, 1}, new boolean[] {false, true, true}, 3, 0);
        ring.flush();
        return head;
    }

    private int pop() {
        assertEquals(Virtqueue.POPPED, dev.pop(chain));
        return chain.id();
    }

    @Test
    void usedLengthsComeBack() {
        for (int i = 0; i < 100; i++) {
            int head = add();
            assertEquals(head, pop());
            assertEquals(513, chain.writableLength());
            dev.complete(head, 513);
            dev.publish();
            assertEquals(1, ring.poll(ids, lens, SIZE));
            assertEquals(head, ids[0]);
            assertEquals(513, lens[0]);
        }
        assertEquals(SIZE, ring.freeDescriptors());
        assertEquals(0, ring.deviceFaults());
        assertEquals(100, ring.vringBase(), "next avail index");
    }

    /**
     * writeDescriptor stores only what differs from the table: a chain that comes back to the same descriptors with
     * other addresses, lengths or directions, or over descriptors a device scribbled on, still reaches the device
     * exactly as added.
     */
    @Test
    void aReusedChainIsWhatWasAddedWhateverTheTableHeldBefore() {
        MemorySegment desc = view(ring.descAddress(), descTableBytes(SIZE));
        long[][] addrs = {{data, data + 64, data + 1024}, {data, data + 64, data + 1024}, {data + 128, data + 2048, data + 96},
                {data, data + 64, data + 1024}};
        int[][] lengths = {{16, 512, 1}, {16, 512, 1}, {16, 1024, 1}, {16, 512, 1}};
        boolean[][] writable = {{false, true, true}, {false, true, true}, {false, false, true}, {false, true, true}};
        for (int round = 0; round < addrs.length; round++) {
            if (round == 3) {
                desc.fill((byte) 0x5a);   // a device that wrote what it must not: the next add puts it right
            }
            long[] gpas = new long[3];
            for (int k = 0; k < 3; k++) {
                gpas[k] = mem.gpaOf(addrs[round][k]);
            }
            int head = ring.add(gpas, lengths[round], writable[round], 3, round);
            ring.flush();
            assertEquals(head, pop(), "round " + round);
            assertEquals(3, chain.bufferCount(), "round " + round);
            long expectWritable = 0;
            for (int k = 0; k < 3; k++) {
                assertEquals(gpas[k], chain.address(k), "round " + round + " element " + k);
                assertEquals(lengths[round][k], chain.length(k), "round " + round + " element " + k);
                assertEquals(writable[round][k], chain.isWritable(k), "round " + round + " element " + k);
                expectWritable += writable[round][k] ? lengths[round][k] : 0;
            }
            assertEquals(expectWritable, chain.writableLength(), "round " + round);
            dev.complete(head, 1);
            dev.publish();
            assertEquals(1, ring.poll(ids, lens, SIZE));
            assertEquals(head, ids[0]);
        }
        assertEquals(0, ring.deviceFaults());
    }

    @Test
    void anUnknownHeadIsCountedNotThrown() {
        add();
        pop();
        MemorySegment used = view(ring.deviceAreaAddress(), usedRingBytes(SIZE));
        used.set(U32, USED_RING, 999);
        used.set(U32, USED_RING + 4, 1);
        used.set(S16, USED_IDX, (short) 1);
        assertEquals(0, ring.poll(ids, lens, SIZE));
        assertEquals(1, ring.deviceFaults());
        assertTrue(ring.broken());
        assertTrue(ring.firstDeviceFault().contains("id 999"), ring.firstDeviceFault());
        assertEquals(-1, ring.add(new long[] {GPA}, new int[] {1}, new boolean[] {false}, 1, 0), "broken: no more adds");
        ring.reset();
        assertFalse(ring.broken());
        assertEquals(0, ring.deviceFaults());
    }

    @Test
    void aHeadUsedTwiceIsCounted() {
        int head = add();
        add();
        pop();
        pop();
        dev.complete(head, 1);
        dev.complete(head, 1);   // the device repeats itself (2 buffers in flight: the used index is plausible)
        dev.publish();
        assertEquals(1, ring.poll(ids, lens, SIZE), "the first completion counts");
        assertEquals(1, ring.deviceFaults());
        assertTrue(ring.broken());
        assertTrue(ring.firstDeviceFault().contains("not in flight"), ring.firstDeviceFault());
    }

    @Test
    void aUsedIndexAheadOfWhatIsInFlightIsCounted() {
        add();
        pop();
        view(ring.deviceAreaAddress(), usedRingBytes(SIZE)).set(S16, USED_IDX, (short) 5);
        assertEquals(0, ring.poll(ids, lens, SIZE));
        assertEquals(1, ring.deviceFaults());
        assertTrue(ring.broken());
        assertTrue(ring.firstDeviceFault().contains("moved by 5 with 1"), ring.firstDeviceFault());
    }

    /**
     * The elements up to the used index read once are reaped from that read (one load of the device's line per batch,
     * not per element); the next read, when they are all reaped, still gets the §2.7.8 check. The device rewinds the
     * index after publishing 3: the driver, which already read 3, reaps all 3, then sees the rewound index as a jump.
     */
    @Test
    void aBatchIsReapedOnOneReadOfTheUsedIndexAndTheNextReadIsStillChecked() {
        int[] heads = new int[3];
        for (int i = 0; i < heads.length; i++) {   // one-descriptor chains: three fit the 8-entry table
            heads[i] = ring.add(new long[] {mem.gpaOf(data + 1024L * i)}, new int[] {512}, new boolean[] {true}, 1, i);
        }
        ring.flush();
        for (int h : heads) {
            assertEquals(h, pop());
            dev.complete(h, 1);
        }
        dev.publish();
        assertTrue(ring.reap(), "the first reap reads used idx 3");
        MemorySegment used = view(ring.deviceAreaAddress(), usedRingBytes(SIZE));
        used.set(S16, USED_IDX, (short) 0x8000);   // a hostile index: 0x8000 - 1 ahead of the driver
        assertTrue(ring.hasUsed());
        assertTrue(ring.reap());
        assertTrue(ring.reap());
        assertEquals(heads[2], ring.usedId(), "the third element, reaped from the first read");
        assertEquals(0, ring.deviceFaults());
        assertFalse(ring.reap(), "the next read sees the jump");
        assertEquals(1, ring.deviceFaults());
        assertTrue(ring.broken());
        assertTrue(ring.firstDeviceFault().contains("with 0"), ring.firstDeviceFault());
    }

    @Test
    void aLengthBeyondTheWritablePartIsCountedAndClamped() {
        int head = add();
        pop();
        dev.complete(head, 1 << 20);
        dev.publish();
        assertEquals(1, ring.poll(ids, lens, SIZE));
        assertEquals(513, lens[0]);
        assertEquals(1, ring.deviceFaults());
        assertFalse(ring.broken());
        int next = add();
        assertEquals(next, pop());
        dev.complete(next, 513);
        dev.publish();
        assertEquals(1, ring.poll(ids, lens, SIZE), "the ring goes on");
        assertEquals(1, ring.deviceFaults());
    }
}
