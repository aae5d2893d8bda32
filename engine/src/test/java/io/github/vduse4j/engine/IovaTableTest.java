package io.github.vduse4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class IovaTableTest {
    record R(long start, long last) { }

    @Test
    void findsByUnsignedRangeIncludingTheTopOfTheAddressSpace() {
        R low = new R(0, 0xfff), mid = new R(0x10_0000, 0x10_ffff), high = new R(0x8000_0000_0000_0000L, -2L), top = new R(-1L, -1L);
        IovaTable<R> t = IovaTable.of(List.of(top, mid, high, low), R::start, R::last); // any order in
        assertEquals(4, t.size());
        assertEquals(List.of(low, mid, high, top), t.entries(), "sorted by unsigned start");
        assertEquals(low, t.find(0));
        assertEquals(low, t.find(0xfff));
        assertNull(t.find(0x1000));
        assertEquals(mid, t.find(0x10_8000));
        assertNull(t.find(0x7fff_ffff_ffff_ffffL));
        assertEquals(high, t.find(0x8000_0000_0000_0000L), "negative as signed, high as unsigned");
        assertEquals(high, t.find(-2L));
        assertEquals(top, t.find(-1L));
        assertNull(IovaTable.<R>empty().find(0));
    }

    @Test
    void agreesWithALinearScanOnRandomTables() {
        Random rnd = new Random(11);
        for (int round = 0; round < 200; round++) {
            List<R> ranges = new ArrayList<>();
            long at = rnd.nextLong() & 0xffff;
            for (int i = 0, n = rnd.nextInt(40); i < n; i++) {
                long len = 1 + rnd.nextInt(1 << 16);
                ranges.add(new R(at, at + len - 1));
                at += len + rnd.nextInt(1 << 16); // gaps, sometimes none
            }
            List<R> shuffled = new ArrayList<>(ranges);
            Collections.shuffle(shuffled, rnd);
            IovaTable<R> t = IovaTable.of(shuffled, R::start, R::last);
            for (int probe = 0; probe < 200; probe++) {
                long a = ranges.isEmpty() ? rnd.nextLong() : ranges.get(rnd.nextInt(ranges.size())).start + rnd.nextInt(1 << 17) - (1 << 16);
                R expected = null;
                for (R r : ranges) {
                    if (Long.compareUnsigned(a, r.start) >= 0 && Long.compareUnsigned(a, r.last) <= 0) {
                        expected = r;
                    }
                }
                assertEquals(expected, t.find(a), "address 0x" + Long.toHexString(a));
            }
        }
    }
}
