package io.github.vduse4j.ring;

import static io.github.vduse4j.ring.VirtioRing.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.DriverMemory;
import io.github.vduse4j.ring.testkit.PackedDriver;
import io.github.vduse4j.ring.testkit.SplitDriver;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Randomly corrupted rings (bit flips, hostile descriptor fields, index jumps, flag corruption, corrupted indirect
 * tables) never make the device throw, read outside a mapping, or loop: every pop returns one of the four results,
 * every buffer lies inside one mapping of the memory table, each pop does a bounded number of translations, and a
 * broken queue stays broken.
 */
class MalformedRingFuzzTest {
    private static final int ITERATIONS = Integer.getInteger("ring.fuzz.iterations", 10_000);
    private static final long[] ADDRS = {0, 1, DriverMemory.DATA_BASE - 1, DriverMemory.DATA_BASE,
        DriverMemory.TABLE_BASE, DriverMemory.RING_BASE, -1L, -16L, Long.MIN_VALUE, Long.MAX_VALUE, 0x7000_0000L};
    private static final int[] LENS = {0, 1, 15, 16, 17, 32, 4096, 0x7FFF_FFFF, 0x8000_0000, -1, -16};

    /** Counts translations; checks each answer against the table it wraps. */
    private static final class CountingMemory implements GuestMemory {
        final RegionTable table;
        long calls;

        CountingMemory(RegionTable table) { this.table = table; }

        @Override
        public boolean translate(long addr, long len, int access, Translation out) {
            calls++;
            return table.translate(addr, len, access, out);
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void corruptedRingsAreContained(boolean packed) {
        Random master = new Random(packed ? 0xBAD : 0xBEEF);
        int[] outcomes = new int[4];
        for (int i = 0; i < ITERATIONS; i++) {
            long seed = master.nextLong();
            try {
                fuzzOnce(new Random(seed), packed, outcomes);
            } catch (Throwable t) {
                throw new AssertionError("seed " + seed, t);
            }
        }
        // the corpus reaches every outcome
        for (int k = 0; k < 4; k++) assertTrue(outcomes[k] > 0, "outcome " + (k - 2) + " never seen");
    }

    private static void fuzzOnce(Random r, boolean packed, int[] outcomes) {
        int size = packed ? 1 + r.nextInt(20) : 1 << r.nextInt(6);
        boolean eventIdx = r.nextBoolean(), indirect = r.nextBoolean();
        DriverConfig cfg = DriverConfig.of(size).eventIdx(eventIdx).indirect(indirect).dataRegions(3, 4096).maxIndirect(8);
        try (VirtqueueDriver d = cfg.build(packed)) {
            CountingMemory memory = new CountingMemory(d.memory().table());
            Virtqueue q = d.newDeviceQueue(memory);
            DescriptorChain chain = new DescriptorChain(1 + r.nextInt(2 * size + 2));
            // some valid traffic first
            int valid = r.nextInt(size + 1);
            for (int k = 0; k < valid; k++) {
                long a = d.memory().allocate(64 + r.nextInt(300));
                int n = 1 + r.nextInt(Math.min(size, 4));
                var c = d.chain();
                for (int b = 0; b < n; b++) c.buffer(a + 16L * b, 1 + r.nextInt(100), b == n - 1);
                if (c.add(k) < 0) break;
            }
            corrupt(r, d, packed, size);
            boolean broken = false;
            List<Integer> popped = new ArrayList<>();
            int bound = 3 * size + 5;
            for (int k = 0; k < bound; k++) {
                long before = memory.calls;
                int res = q.pop(chain);
                assertTrue(memory.calls - before <= chain.capacity() + 2L, "translations per pop are bounded");
                assertTrue(res >= Virtqueue.NEEDS_RESET && res <= Virtqueue.POPPED, "result " + res);
                outcomes[res + 2]++;
                if (broken) assertEquals(Virtqueue.NEEDS_RESET, res, "broken stays broken");
                if (res == Virtqueue.NEEDS_RESET) {
                    broken = true;
                    assertTrue(q.isBroken());
                    assertNotEquals(ChainError.NONE, chain.error());
                    continue;
                }
                if (res == Virtqueue.EMPTY) break;
                if (res == Virtqueue.CHAIN_ERROR) assertNotEquals(ChainError.NONE, chain.error());
                if (res == Virtqueue.POPPED) assertEquals(ChainError.NONE, chain.error());
                assertTrue(chain.id() >= 0 && chain.id() <= 0xFFFF);
                assertBuffersInsideMappings(chain, memory.table);
                if (res == Virtqueue.POPPED) {   // touching every byte must be safe
                    for (int b = 0; b < chain.bufferCount(); b++) {
                        chain.segment(b).get(ValueLayout.JAVA_BYTE, chain.offset(b));
                        chain.segment(b).get(ValueLayout.JAVA_BYTE, chain.offset(b) + chain.length(b) - 1);
                    }
                }
                popped.add(chain.id());
                if (r.nextBoolean()) {
                    q.complete(popped.removeLast(), r.nextInt(64));
                    if (r.nextBoolean()) {
                        q.publish();
                        q.needsNotification();
                    }
                }
                if (r.nextInt(8) == 0) q.disableNotifications();
                if (r.nextInt(8) == 0) q.enableNotifications();
            }
            for (int id : popped) q.complete(id, 0);
            q.publish();
            q.needsNotification();
            q.enableNotifications();
            assertEquals(0, q.inflight());
        }
    }

    private static void assertBuffersInsideMappings(DescriptorChain c, RegionTable t) {
        for (int b = 0; b < c.bufferCount(); b++) {
            MemorySegment seg = c.segment(b);
            long off = c.offset(b), len = c.length(b);
            assertTrue(len > 0);
            boolean inside = false;
            for (int i = 0; i < t.size(); i++) {
                if (t.segment(i) == seg && off >= t.segmentOffset(i)
                        && off + len <= t.segmentOffset(i) + t.regionSize(i)) {
                    inside = true;
                }
            }
            assertTrue(inside, "buffer " + b + " outside every mapping");
            if (c.isWritable(b)) assertTrue(b >= c.readableCount());
        }
    }

    private static void corrupt(Random r, VirtqueueDriver d, boolean packed, int size) {
        int rounds = 1 + r.nextInt(6);
        for (int k = 0; k < rounds; k++) {
            switch (r.nextInt(6)) {
                case 0 -> flipBits(r, packed ? ((PackedDriver) d).descSegment() : ((SplitDriver) d).descSegment());
                case 1 -> flipBits(r, d.memory().tableSegment().asSlice(0, 16L * 8 * size));
                case 2 -> hostileDescriptor(r, d, packed, size);
                case 3 -> hostileTableEntry(r, d, size);
                case 4 -> {
                    if (packed) {
                        PackedDriver p = (PackedDriver) d;
                        p.raw().flags(r.nextInt(size), r.nextInt(0x10000));
                        if (r.nextBoolean()) p.raw().driverEvent(r.nextInt(0x10000), r.nextInt(4));
                    } else {
                        SplitDriver s = (SplitDriver) d;
                        s.raw().availIdx(r.nextBoolean() ? r.nextInt(0x10000) : s.raw().availIdx() + r.nextInt(2 * size + 2));
                    }
                }
                default -> {
                    if (packed) {
                        flipBits(r, ((PackedDriver) d).driverEventSegment());
                    } else {
                        SplitDriver s = (SplitDriver) d;
                        s.raw().availEntry(r.nextInt(size), r.nextInt(3) == 0 ? r.nextInt(0x10000) : r.nextInt(size + 1));
                        if (r.nextBoolean()) flipBits(r, s.availSegment());
                    }
                }
            }
        }
    }

    private static void flipBits(Random r, MemorySegment s) {
        int n = 1 + r.nextInt(8);
        for (int i = 0; i < n; i++) {
            long at = (long) (r.nextDouble() * s.byteSize());
            byte b = s.get(ValueLayout.JAVA_BYTE, at);
            s.set(ValueLayout.JAVA_BYTE, at, (byte) (b ^ (1 << r.nextInt(8))));
        }
    }

    private static long hostileAddr(Random r, VirtqueueDriver d) {
        return switch (r.nextInt(4)) {
            case 0 -> ADDRS[r.nextInt(ADDRS.length)];
            case 1 -> DriverMemory.DATA_BASE + d.memory().dataBytes() - r.nextInt(64);
            case 2 -> DriverMemory.TABLE_BASE + r.nextInt(512);
            default -> r.nextLong();
        };
    }

    private static int hostileLen(Random r) {
        return r.nextBoolean() ? LENS[r.nextInt(LENS.length)] : r.nextInt(5000);
    }

    private static int hostileFlags(Random r, boolean packed) {
        int f = r.nextInt(8);   // NEXT | WRITE | INDIRECT combos
        if (packed) f |= r.nextInt(4) == 0 ? r.nextInt(0x10000) : (r.nextBoolean() ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED);
        return f;
    }

    private static void hostileDescriptor(Random r, VirtqueueDriver d, boolean packed, int size) {
        int i = r.nextInt(size);
        if (packed) {
            ((PackedDriver) d).raw().descriptor(i, hostileAddr(r, d), hostileLen(r), r.nextInt(3) == 0 ? r.nextInt(0x10000) : r.nextInt(size),
                    hostileFlags(r, true));
        } else {
            ((SplitDriver) d).raw().descriptor(i, hostileAddr(r, d), hostileLen(r), hostileFlags(r, false),
                    r.nextInt(size + 2));
        }
    }

    private static void hostileTableEntry(Random r, VirtqueueDriver d, int size) {
        long table = DriverMemory.TABLE_BASE + 16L * 8 * r.nextInt(size);
        int index = r.nextInt(8);
        MemorySegment s = d.memory().view(table + 16L * index, 16);
        s.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, hostileAddr(r, d));
        s.set(ValueLayout.JAVA_INT_UNALIGNED, 8, hostileLen(r));
        s.set(ValueLayout.JAVA_SHORT_UNALIGNED, 12, (short) hostileFlags(r, false));
        s.set(ValueLayout.JAVA_SHORT_UNALIGNED, 14, (short) r.nextInt(10));
    }
}
