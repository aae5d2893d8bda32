package io.github.vduse4j.blockdev.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The file backend against real files: data through pread/pwrite, FLUSH, DISCARD, WRITE_ZEROES, errors. */
class FileBackendTest {
    @TempDir
    Path dir;

    final Arena arena = Arena.ofAuto();
    final BlockRequest.Scratch scratch = new BlockRequest.Scratch(8, 4);
    int lastStatus = -1;
    final BlockRequest req = new BlockRequest(0, scratch, r -> lastStatus = r.status());

    Path file(int size) throws IOException {
        Path f = dir.resolve("disk.img");
        Files.write(f, new byte[size]);
        return f;
    }

    @Test
    void scatteredWriteAndReadHitTheRightFileOffsets() throws IOException {
        Path f = file(1 << 20);
        try (FileBackend b = new FileBackend(f, false)) {
            assertEquals(1 << 20, b.capacity());
            BackendQueue q = b.openQueue(0);
            MemorySegment guest = arena.allocate(3 * 4096, 4096);
            byte[] data = new byte[3 * 4096];
            new Random(3).nextBytes(data);
            MemorySegment.copy(data, 0, guest, ValueLayout.JAVA_BYTE, 0, data.length);
            // three buffers, out of order in guest memory
            req.reset(BlockRequest.WRITE, 8192);
            req.addBuffer(guest, 4096, 4096);
            req.addBuffer(guest, 0, 4096);
            req.addBuffer(guest, 8192, 4096);
            q.submit(req);
            assertEquals(BlockRequest.STATUS_OK, lastStatus);
            byte[] onDisk = Arrays.copyOfRange(Files.readAllBytes(f), 8192, 8192 + 3 * 4096);
            assertArrayEquals(Arrays.copyOfRange(data, 4096, 8192), Arrays.copyOfRange(onDisk, 0, 4096));
            assertArrayEquals(Arrays.copyOfRange(data, 0, 4096), Arrays.copyOfRange(onDisk, 4096, 8192));

            MemorySegment back = arena.allocate(8192, 4096);
            req.reset(BlockRequest.READ, 8192 + 4096);
            req.addBuffer(back, 0, 8192);
            q.submit(req);
            assertEquals(BlockRequest.STATUS_OK, lastStatus);
            assertArrayEquals(Arrays.copyOfRange(onDisk, 4096, 3 * 4096), back.toArray(ValueLayout.JAVA_BYTE));

            req.reset(BlockRequest.FLUSH, 0);
            q.submit(req);
            assertEquals(BlockRequest.STATUS_OK, lastStatus);
        }
    }

    @Test
    void discardAndWriteZeroesZeroTheFile() throws IOException {
        Path f = dir.resolve("ff.img");
        byte[] ff = new byte[1 << 20];
        Arrays.fill(ff, (byte) 0xff);
        Files.write(f, ff);
        try (FileBackend b = new FileBackend(f, false)) {
            BackendQueue q = b.openQueue(0);
            req.reset(BlockRequest.DISCARD, 0);
            req.addRange(0, 65536, false);
            q.submit(req);
            assertEquals(BlockRequest.STATUS_OK, lastStatus);
            req.reset(BlockRequest.WRITE_ZEROES, 0);
            req.addRange(131072, 4096, false);
            req.addRange(200704, 8192, true);
            q.submit(req);
            assertEquals(BlockRequest.STATUS_OK, lastStatus);
            byte[] disk = Files.readAllBytes(f);
            assertEquals(1 << 20, disk.length, "size kept (FALLOC_FL_KEEP_SIZE)");
            for (int i = 0; i < disk.length; i += 512) {
                boolean zero = i < 65536 || (i >= 131072 && i < 135168) || (i >= 200704 && i < 208896);
                assertEquals(zero ? 0 : (byte) 0xff, disk[i], "offset " + i);
            }
        }
    }

    @Test
    void readPastTheEndOfAShrunkFileFails() throws IOException {
        Path f = file(65536);
        try (FileBackend b = new FileBackend(f, false)) {
            Files.write(f, new byte[4096]); // shrinks under the export
            MemorySegment buf = arena.allocate(4096, 4096);
            req.reset(BlockRequest.READ, 32768);
            req.addBuffer(buf, 0, 4096);
            b.openQueue(0).submit(req);
            assertEquals(BlockRequest.STATUS_IOERR, lastStatus);
            assertEquals(4096, b.refreshCapacity());
        }
    }

    @Test
    void readOnlyOpensWithoutWriteAccess() throws IOException {
        Path f = file(4096);
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("r--r--r--"));
        try (FileBackend b = new FileBackend(f, true)) {
            assertTrue(b.isReadOnly());
            assertTrue(b.describe().contains("read-only"));
        }
    }

    @Test
    void missingFileAndDirectoryAreOneLineErrors() {
        var missing = assertThrows(IllegalArgumentException.class, () -> new FileBackend(dir.resolve("nope"), false));
        assertTrue(missing.getMessage().contains("does not exist"), missing.getMessage());
        var directory = assertThrows(IllegalArgumentException.class, () -> new FileBackend(dir, false));
        assertTrue(directory.getMessage().contains("is a directory"), directory.getMessage());
        assertFalse(missing.getMessage().contains("\n"));
    }

    /**
     * What a 9p file (netfs) or an O_DIRECT file over a VDUSE bounce mapping meets on Linux 6.12: the kernel refuses
     * to pin the driver's buffers (EFAULT; here secret memory and O_DIRECT). The queue switches to staged copies and
     * the data still lands at the right offsets, in several chunks, and reads back.
     */
    @Test
    void buffersTheKernelCannotPinGoThroughTheStagingBuffer() throws IOException {
        int big = 2 * StagingBuffer.CHUNK + 4096; // three staged system calls
        Path f = file(4 << 20);
        MemorySegment guest = UnpinnableMemory.map(arena, big + 8192);
        UnpinnableMemory.assumeTheKernelRefusesToPin(f, guest);
        byte[] data = new byte[big + 4096];
        new Random(11).nextBytes(data);
        MemorySegment.copy(data, 0, guest, ValueLayout.JAVA_BYTE, 0, data.length);
        try (FileBackend b = new FileBackend(f, false, true)) {
            FileBackend.Queue q = (FileBackend.Queue) b.openQueue(0);
            assertNull(q.staging);
            assertFalse(b.staging());
            req.reset(BlockRequest.WRITE, 1 << 20);
            req.addBuffer(guest, big, 4096); // out of order, as in the scattered test
            req.addBuffer(guest, 0, big);
            q.submit(req);
            assertEquals(BlockRequest.STATUS_OK, lastStatus);
            assertTrue(b.staging() && q.staging != null, "the queue switched to staged copies");
            byte[] onDisk = Arrays.copyOfRange(Files.readAllBytes(f), 1 << 20, (1 << 20) + big + 4096);
            assertArrayEquals(Arrays.copyOfRange(data, big, big + 4096), Arrays.copyOfRange(onDisk, 0, 4096));
            assertArrayEquals(Arrays.copyOfRange(data, 0, big), Arrays.copyOfRange(onDisk, 4096, 4096 + big));

            MemorySegment back = UnpinnableMemory.map(arena, big + 4096);
            req.reset(BlockRequest.READ, 1 << 20);
            req.addBuffer(back, 0, big + 4096);
            q.submit(req);
            assertEquals(BlockRequest.STATUS_OK, lastStatus);
            assertArrayEquals(onDisk, back.toArray(ValueLayout.JAVA_BYTE));
            assertEquals(2L * (big + 4096), q.staging.stagedBytes);
        }
    }
}
