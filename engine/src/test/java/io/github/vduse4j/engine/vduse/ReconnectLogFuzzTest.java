package io.github.vduse4j.engine.vduse;

import static org.junit.jupiter.api.Assertions.*;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.github.vduse4j.engine.TransportException;
import io.github.vduse4j.engine.inflight.PackedInflightTracker;
import io.github.vduse4j.engine.inflight.SplitInflightTracker;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;

/**
 * The reconnect log is a file: whoever can write it (the run directory's owner, a crashed or hostile earlier
 * process, a torn write) controls every byte a restarted export reads from it. Each input is a log file, either raw
 * bytes or a well-formed log (made by {@link ReconnectLog#create}, queues formatted and the driver marked running)
 * with fuzzed patches and a fuzzed length; then what a takeover does with it: {@link ReconnectLog#open} against the
 * export's identity, and for every queue whose logged ring size the kernel's would match, the split or packed
 * inflight recovery over the log's region (the packed one against a fuzzed descriptor ring).
 *
 * <p>Invariants: open refuses with a {@link TransportException} (one line) or opens, never anything else; an opened
 * log has the export's queue count; recovery returns only heads inside the ring ({@code [0, num)}), each once, at
 * most {@code num} of them, nothing to resubmit when it reports a problem (split) or leaves the region alone
 * (packed: used position -1); packed lists have 1..num descriptors, unique buffer ids, and a used position inside
 * the ring; every store stays inside the queue's region (the region is a bounded slice: a store outside it throws,
 * which the fuzzer reports). Work per input is bounded by the file (libFuzzer's timeout reports a hang).
 */
class ReconnectLogFuzzTest {
    private static final int QUEUES = 2, MAX_QUEUE_SIZE = 8;
    private static final ReconnectLog.Identity ID = new ReconnectLog.Identity(0x1_3000_0046L, QUEUES, MAX_QUEUE_SIZE,
            512, 1 << 20, "memory 1048576 bytes");
    private static final long FILE = ReconnectLog.fileSize(QUEUES, MAX_QUEUE_SIZE);
    private static final Path PATH;
    private static final MemorySegment RING = Arena.global().allocate(16L * MAX_QUEUE_SIZE, 8);

    static {
        try {
            Path dir = Files.createTempDirectory("reconnect-log-fuzz");
            dir.toFile().deleteOnExit();
            PATH = dir.resolve("inflight");
            PATH.toFile().deleteOnExit();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @FuzzTest(maxDuration = "30s")
    void logs(FuzzedDataProvider data) throws IOException {
        if (data.consumeBoolean()) {
            Files.write(PATH, data.consumeBytes(data.consumeInt(0, (int) FILE + 64)));
        } else {
            wellFormedThenPatched(data);
        }
        ReconnectLog log;
        try {
            log = ReconnectLog.open(PATH, ID);
        } catch (TransportException e) {
            assertNotNull(e.getMessage());
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
            return;
        }
        try {
            assertEquals(QUEUES, log.queues());
            log.state();
            boolean packedFeature = (log.negotiatedFeatures() & (1L << 34)) != 0;
            for (int q = 0; q < QUEUES; q++) {
                int num = log.ringSize(q);
                // the kernel's ring size is at most the device's maximum; a different one refuses the takeover
                int kernelNum = data.consumeBoolean() ? num : data.consumeInt(1, MAX_QUEUE_SIZE);
                if (kernelNum != num || num < 1 || num > MAX_QUEUE_SIZE) {
                    continue;
                }
                MemorySegment region = log.region(q);
                if (data.consumeBoolean() ? packedFeature : data.consumeBoolean()) {
                    packed(region, num, data);
                } else {
                    split(region, num, data.consumeInt(0, 0xffff));
                }
            }
        } finally {
            log.close();
        }
    }

    private static void split(MemorySegment region, int num, int ringUsedIdx) {
        SplitInflightTracker.Recovered r = new SplitInflightTracker(region, num).recover(ringUsedIdx);
        assertTrue(r.heads().length <= num, r.heads().length + " heads on a ring of " + num);
        if (r.problem() != null) {
            assertEquals(0, r.heads().length, "a problem resubmits nothing: " + r.problem());
        }
        Set<Integer> seen = new HashSet<>();
        for (int h : r.heads()) {
            assertTrue(h >= 0 && h < num, "head " + h + " outside a ring of " + num);
            assertTrue(seen.add(h), "head " + h + " twice");
        }
    }

    private static void packed(MemorySegment region, int num, FuzzedDataProvider data) {
        MemorySegment ring = RING.asSlice(0, 16L * num);
        ring.fill((byte) 0);
        byte[] b = data.consumeBytes(16 * num);
        MemorySegment.copy(MemorySegment.ofArray(b), 0, ring, 0, b.length);
        PackedInflightTracker.Recovered r = new PackedInflightTracker(region, num).recover(ring);
        if (r.usedIdx() < 0) {
            assertEquals(0, r.lists().size(), "a refused region resubmits nothing: " + r.problem());
            assertNotNull(r.problem());
            return;
        }
        assertTrue(r.usedIdx() < num, "used position " + r.usedIdx() + " outside a ring of " + num);
        assertTrue(r.descriptors() <= num, r.descriptors() + " descriptors in flight on a ring of " + num);
        Set<Integer> ids = new HashSet<>();
        for (PackedInflightTracker.SavedList l : r.lists()) {
            assertTrue(l.count() >= 1 && l.count() <= num, "a list of " + l.count());
            assertEquals(l.count(), l.len().length);
            assertEquals(l.count(), l.flags().length);
            assertTrue(ids.add(l.id()), "buffer id " + l.id() + " twice");
        }
    }

    /** A log as an export leaves it (created, queues formatted, driver running), then patched and resized. */
    private static void wellFormedThenPatched(FuzzedDataProvider data) throws IOException {
        Files.deleteIfExists(PATH);
        try (ReconnectLog log = ReconnectLog.create(PATH, ID)) {
            boolean packed = data.consumeBoolean();
            for (int q = 0; q < QUEUES; q++) {
                if (data.consumeBoolean()) {
                    log.formatQueue(q, data.consumeInt(1, MAX_QUEUE_SIZE), packed, data.consumeInt(0, 0xffff) ,
                            data.consumeBoolean());
                }
            }
            if (data.consumeBoolean()) {
                log.running(ID.offeredFeatures() & ~(1L << 34) | (packed ? 1L << 34 : 0), 0x0f);
            }
        }
        try (RandomAccessFile f = new RandomAccessFile(PATH.toFile(), "rw")) {
            int patches = data.consumeInt(0, 16);
            for (int i = 0; i < patches && data.remainingBytes() > 0; i++) {
                long at = switch (data.consumeInt(0, 2)) {
                    case 0 -> data.consumeInt(0, 64);   // the header's fields
                    case 1 -> ReconnectLog.HEADER_BYTES + data.consumeLong(0, FILE - ReconnectLog.HEADER_BYTES - 1);
                    default -> data.consumeLong(0, FILE - 1);
                };
                f.seek(at);
                f.write(data.consumeBytes(data.consumeInt(1, 16)));
            }
            if (data.consumeBoolean()) {
                f.setLength(data.consumeLong(0, FILE + 64));
            }
        }
    }
}
