package io.github.vduse4j.blockdev.backend;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class FaultInjectingBackendTest {
    private static final long CAPACITY = 4 << 20;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment buf = arena.allocate(64 * 1024, 4096);
    private final List<Integer> statuses = new ArrayList<>();
    private final BlockRequest.Scratch scratch = new BlockRequest.Scratch(8, 4);
    private final BlockRequest req = new BlockRequest(0, scratch, r -> statuses.add(r.status()));
    private MemoryBackend memory;

    @AfterEach
    void close() {
        arena.close();
        if (memory != null) memory.close();
    }

    private BackendQueue open(String spec) {
        memory = new MemoryBackend(CAPACITY, false);
        return new FaultInjectingBackend(memory, FaultInjectingBackend.parse(spec), 7).openQueue(0);
    }

    private int io(BackendQueue q, int op, long offset, int len, byte fill) {
        if (op == BlockRequest.WRITE) buf.asSlice(0, len).fill(fill);
        req.reset(op, offset);
        req.addBuffer(buf, 0, len / 2);
        req.addBuffer(buf, len / 2, len - len / 2);
        q.submit(req);
        return statuses.removeLast();
    }

    @Test
    void eioOnARangeFailsExactlyTheOverlappingRequestsAndLeavesTheStorageAlone() {
        BackendQueue q = open("eio:read+write:range=1M-2M");
        assertEquals(BlockRequest.STATUS_OK, io(q, BlockRequest.WRITE, (1 << 20) - 4096, 4096, (byte) 1));
        assertEquals(BlockRequest.STATUS_IOERR, io(q, BlockRequest.WRITE, (1 << 20) - 512, 4096, (byte) 2), "overlaps");
        assertEquals(BlockRequest.STATUS_IOERR, io(q, BlockRequest.WRITE, 1 << 20, 4096, (byte) 3));
        assertEquals(BlockRequest.STATUS_IOERR, io(q, BlockRequest.READ, (2 << 20) - 512, 512, (byte) 0));
        assertEquals(BlockRequest.STATUS_OK, io(q, BlockRequest.WRITE, 2 << 20, 4096, (byte) 4), "END is exclusive");
        assertEquals(BlockRequest.STATUS_OK, io(q, BlockRequest.READ, (1 << 20) - 4096, 4096, (byte) 0));
        assertEquals(1, buf.get(ValueLayout.JAVA_BYTE, 4095), "the failed write did not reach the storage");
        assertEquals(0, memory.contents().get(ValueLayout.JAVA_BYTE, 1 << 20));
        req.reset(BlockRequest.FLUSH, 0);
        q.submit(req);
        assertEquals(BlockRequest.STATUS_OK, statuses.removeLast(), "flush not in the rule's ops");
    }

    @Test
    void rateAndCountDecideHowManyFail() {
        memory = new MemoryBackend(CAPACITY, false);
        FaultInjectingBackend f = new FaultInjectingBackend(memory, FaultInjectingBackend.parse("eio:read:rate=0.25"), 7);
        BackendQueue q = f.openQueue(0);
        int failed = 0;
        for (int i = 0; i < 1000; i++) {
            if (io(q, BlockRequest.READ, 0, 512, (byte) 0) == BlockRequest.STATUS_IOERR) failed++;
        }
        assertEquals(f.errorsInjected(), failed);
        assertTrue(failed > 150 && failed < 350, failed + " of 1000 at rate 0.25");
        assertEquals(1000, f.requestsSeen());

        BackendQueue c = open("eio:flush:count=3");
        int flushErrors = 0;
        for (int i = 0; i < 10; i++) {
            req.reset(BlockRequest.FLUSH, 0);
            c.submit(req);
            if (statuses.removeLast() == BlockRequest.STATUS_IOERR) flushErrors++;
        }
        assertEquals(3, flushErrors, "count=3: the first three flushes fail, then none");
    }

    @Test
    void aShortTransferMovesHalfTheDataAndIsNeverReportedAsSuccess() {
        BackendQueue q = open("short:write+read:range=0-64K");
        assertEquals(BlockRequest.STATUS_IOERR, io(q, BlockRequest.WRITE, 0, 8192, (byte) 9));
        assertEquals(9, memory.contents().get(ValueLayout.JAVA_BYTE, 4095), "first half written");
        assertEquals(0, memory.contents().get(ValueLayout.JAVA_BYTE, 4096), "second half not");
        buf.fill((byte) 0x55);
        assertEquals(BlockRequest.STATUS_IOERR, io(q, BlockRequest.READ, 0, 8192, (byte) 0));
        assertEquals(9, buf.get(ValueLayout.JAVA_BYTE, 0));
        assertEquals(0x55, buf.get(ValueLayout.JAVA_BYTE, 4096), "second half of the read not delivered");
        assertEquals(BlockRequest.STATUS_OK, io(q, BlockRequest.WRITE, 64 * 1024, 8192, (byte) 1), "outside the range");
        // the request is reusable: a later plain request is not failed by the earlier short transfer
        assertEquals(BlockRequest.STATUS_OK, io(q, BlockRequest.READ, 128 * 1024, 8192, (byte) 0));
    }

    @Test
    void delaysHoldTheRequestAndAreCounted() {
        memory = new MemoryBackend(CAPACITY, false);
        FaultInjectingBackend f = new FaultInjectingBackend(memory,
                FaultInjectingBackend.parse("delay:write:time=2ms:count=2,delay:read:time=1ms-3ms"), 7);
        BackendQueue q = f.openQueue(0);
        long t0 = System.nanoTime();
        for (int i = 0; i < 3; i++) assertEquals(BlockRequest.STATUS_OK, io(q, BlockRequest.WRITE, 0, 512, (byte) 1));
        assertTrue(System.nanoTime() - t0 >= 4_000_000L, "two 2 ms delays were served");
        assertEquals(BlockRequest.STATUS_OK, io(q, BlockRequest.READ, 0, 512, (byte) 0));
        assertEquals(3, f.delaysInjected());
        assertTrue(f.delayNanos() >= 5_000_000L && f.delayNanos() <= 7_000_000L, "delay total " + f.delayNanos());
        assertEquals(0, f.errorsInjected());
        assertTrue(f.summary().contains("3 delays"), f.summary());
    }

    @Test
    void badSpecsSayWhatIsWrong() {
        String[][] cases = {
            {"", "empty fault spec"}, {"eio", "needs KIND:OPS"}, {"boom:read", "unknown fault kind 'boom'"},
            {"eio:sideways", "unknown op 'sideways'"}, {"eio:read:rate=2", "not a probability"},
            {"eio:read:range=2M-1M", "is empty"}, {"delay:read", "needs time=DUR"}, {"delay:read:time=5", "needs a unit"},
            {"eio:read:time=1s", "only applies to delay"}, {"eio:read:count=0", "not a positive number"},
            {"eio:read:colour=red", "unknown key 'colour'"}, {"eio:read:range=1X-2M", "not a byte offset"},
        };
        for (String[] c : cases) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> FaultInjectingBackend.parse(c[0]), c[0]);
            assertTrue(e.getMessage().contains(c[1]), c[0] + " -> " + e.getMessage());
        }
        assertEquals(3, FaultInjectingBackend.parse("eio:all,short:read:rate=0.1,delay:flush:time=35s:count=1").size());
    }
}
