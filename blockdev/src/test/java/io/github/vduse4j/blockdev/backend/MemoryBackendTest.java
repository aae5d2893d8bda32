package io.github.vduse4j.blockdev.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The RAM disk is a sparse anonymous mapping: larger than RAM starts, pages come on write and go on discard. */
class MemoryBackendTest {
    final Arena arena = Arena.ofAuto();
    final BlockRequest.Scratch scratch = new BlockRequest.Scratch(8, 4);
    int lastStatus = -1;
    final BlockRequest req = new BlockRequest(0, scratch, r -> lastStatus = r.status());

    /** How many of the {@code pages} 4 KiB pages from {@code address} on are in RAM (/proc/self/pagemap, bit 63). */
    static int residentPages(long address, int pages) throws IOException {
        try (FileChannel pagemap = FileChannel.open(Path.of("/proc/self/pagemap"), StandardOpenOption.READ)) {
            ByteBuffer entries = ByteBuffer.allocate(8 * pages).order(ByteOrder.nativeOrder());
            long at = (address / 4096) * 8;
            while (entries.hasRemaining()) {
                if (pagemap.read(entries, at + entries.position()) < 0) {
                    throw new IOException("short read of /proc/self/pagemap");
                }
            }
            int present = 0;
            for (int i = 0; i < pages; i++) {
                present += (int) (entries.getLong(8 * i) >>> 63);
            }
            return present;
        }
    }

    static long memTotalBytes() throws IOException {
        for (String l : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (l.startsWith("MemTotal:")) {
                return Long.parseLong(l.replaceAll("[^0-9]", "")) << 10;
            }
        }
        throw new AssertionError("no MemTotal");
    }

    void write(BackendQueue q, long offset, MemorySegment buf) {
        req.reset(BlockRequest.WRITE, offset);
        req.addBuffer(buf, 0, (int) buf.byteSize());
        q.submit(req);
        assertEquals(BlockRequest.STATUS_OK, lastStatus);
    }

    long readLong(BackendQueue q, long offset) {
        MemorySegment buf = arena.allocate(512, 4096);
        req.reset(BlockRequest.READ, offset);
        req.addBuffer(buf, 0, 512);
        q.submit(req);
        assertEquals(BlockRequest.STATUS_OK, lastStatus);
        return buf.get(ValueLayout.JAVA_LONG, 0);
    }

    @Test
    void aDiskTwiceTheSizeOfRamStartsAndTakesMemoryOnlyWhereWritten() throws IOException {
        assumeFalse(Files.readString(Path.of("/proc/sys/vm/overcommit_memory")).trim().equals("2"),
                "vm.overcommit_memory=2 refuses MAP_NORESERVE beyond the commit limit");
        long size = (2 * memTotalBytes()) & -4096L;
        try (MemoryBackend b = new MemoryBackend(size, false)) {
            assertEquals(size, b.capacity());
            long address = b.contents().address();
            long lastPage = address + size - 4096;
            assertEquals(0, residentPages(address, 16) + residentPages(lastPage, 1), "nothing resident before a write");
            BackendQueue q = b.openQueue(0);
            MemorySegment buf = arena.allocate(4096, 4096);
            buf.fill((byte) 0x5a);
            write(q, size - 4096, buf);
            write(q, 0, buf);
            assertEquals(0x5a5a5a5a5a5a5a5aL, readLong(q, size - 4096));
            assertEquals(0, readLong(q, size / 2), "never written: zero");
            assertEquals(1, residentPages(address, 1), "first page written");
            assertEquals(0, residentPages(address + 4096, 15), "its neighbours were not");
            assertEquals(1, residentPages(lastPage, 1), "last page written");
        }
    }

    @Test
    void discardAndWriteZeroesReadBackZeroAndGiveWholePagesBack() throws IOException {
        try (MemoryBackend b = new MemoryBackend(1 << 20, false)) {
            BackendQueue q = b.openQueue(0);
            MemorySegment ff = arena.allocate(1 << 20, 4096);
            ff.fill((byte) 0xff);
            write(q, 0, ff);
            long address = b.contents().address();
            assertEquals(256, residentPages(address, 256));

            req.reset(BlockRequest.DISCARD, 0);
            req.addRange(512, 3 * 4096, false);            // a partial page, two whole pages, a partial page
            q.submit(req);
            assertEquals(BlockRequest.STATUS_OK, lastStatus);
            req.reset(BlockRequest.WRITE_ZEROES, 0);
            req.addRange(65536, 65536, false);             // sixteen whole pages
            q.submit(req);
            assertEquals(BlockRequest.STATUS_OK, lastStatus);

            assertEquals(0, residentPages(address + 4096, 2), "the two whole discarded pages were given back");
            assertEquals(0, residentPages(address + 65536, 16), "the sixteen zeroed pages were given back");
            assertEquals(256 - 18, residentPages(address, 256), "nothing else");
            // (reading a dropped page maps the kernel's zero page, so the page checks come first)
            MemorySegment disk = b.contents();
            for (long i = 0; i < (1 << 20); i += 512) {
                boolean zeroed = (i >= 512 && i < 512 + 3 * 4096) || (i >= 65536 && i < 2 * 65536);
                assertEquals(zeroed ? 0 : -1L, disk.get(ValueLayout.JAVA_LONG, i), "sector at " + i);
                assertEquals(zeroed ? 0 : -1L, disk.get(ValueLayout.JAVA_LONG, i + 504), "sector end at " + i);
            }
        }
    }

    @Test
    void aSizeTheKernelRefusesGetsOneActionableLineAndNoMapping() {
        long size = 99999L << 40; // beyond the 128 TiB of user address space (4-level page tables)
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new MemoryBackend(size, false));
        assertEquals("cannot map a RAM disk of 97.7 PiB (" + size + " bytes): mmap failed with ENOMEM;"
                + " pick a smaller --memory SIZE, or export a sparse file with --file (truncate -s SIZE on a disk,"
                + " or on a tmpfs for RAM)", e.getMessage());
    }

    @Test
    void humanSizes() {
        assertEquals("512 bytes", MemoryBackend.humanSize(512));
        assertEquals("30.0 GiB", MemoryBackend.humanSize(30L << 30));
        assertEquals("1.5 MiB", MemoryBackend.humanSize(3L << 19));
    }
}
