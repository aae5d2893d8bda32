package io.github.vduse4j.bindings;

import static io.github.vduse4j.bindings.Failures.expect;
import static io.github.vduse4j.bindings.Failures.expectOneOf;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileIoTest {
    @TempDir
    Path dir;

    static long size(int fd) throws IOException {
        return Files.size(Path.of("/proc/self/fd/" + fd));
    }

    @Test
    void openMissingPathFailsWithEnoent() {
        String path = dir.resolve("missing").toString();
        expect(() -> FileIo.open(path, FileIo.O_RDONLY | FileIo.O_CLOEXEC), "open", "ENOENT", "path=\"" + path + "\"");
    }

    @Test
    void openWriteReadClose() {
        String path = dir.resolve("f").toString();
        try (Arena arena = Arena.ofConfined()) {
            int w = FileIo.open(path, FileIo.O_RDWR | FileIo.O_CREAT | FileIo.O_CLOEXEC, 0644);
            assertEquals(5, FileIo.write(w, arena.allocateFrom("hello", StandardCharsets.US_ASCII), 0, 5));
            int r = FileIo.open(path, FileIo.O_RDONLY | FileIo.O_CLOEXEC);
            MemorySegment buf = arena.allocate(16);
            assertEquals(3, FileIo.read(r, buf, 10, 3));
            assertEquals("hel", new String(buf.asSlice(10, 3).toArray(JAVA_BYTE), StandardCharsets.US_ASCII));
            assertEquals(2, FileIo.read(r, buf, 0, 16));
            assertEquals(0, FileIo.read(r, buf, 0, 16)); // end of file
            FileIo.close(r);
            FileIo.close(w);
        }
    }

    @Test
    void fileIdNamesTheInodeNotTheFd() throws IOException {
        Path path = dir.resolve("id");
        Files.writeString(path, "x");
        int a = FileIo.open(path.toString(), FileIo.O_RDONLY | FileIo.O_CLOEXEC);
        int b = FileIo.open(path.toString(), FileIo.O_RDWR | FileIo.O_CLOEXEC);
        int m1 = FileIo.memfdCreate("id1", FileIo.MFD_CLOEXEC);
        int m2 = FileIo.memfdCreate("id2", FileIo.MFD_CLOEXEC);
        try {
            FileIo.FileId id = FileIo.fileId(a);
            assertEquals(id, FileIo.fileId(b), "two opens of one file");
            assertEquals(Files.getAttribute(path, "unix:ino"), id.inode());
            assertEquals(((Number) Files.getAttribute(path, "unix:dev")).longValue(), id.device());
            assertNotEquals(FileIo.fileId(m1), FileIo.fileId(m2), "two memfds are two inodes");
            assertNotEquals(id, FileIo.fileId(m1));
        } finally {
            for (int fd : new int[] {a, b, m1, m2}) {
                FileIo.close(fd);
            }
        }
        expect(() -> FileIo.fileId(a), "fstat", "EBADF", "fd=" + a);
    }

    @Test
    void closeOfBadFdFailsWithEbadf() {
        expect(() -> FileIo.close(-1), "close", "EBADF", "fd=-1");
    }

    @Test
    void readOnClosedFdFailsWithEbadf() {
        int fd = FileIo.memfdCreate("closed", FileIo.MFD_CLOEXEC);
        FileIo.close(fd);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(64);
            expect(() -> FileIo.read(fd, buf, 0, 64), "read", "EBADF", "fd=" + fd, "length=64");
            assertEquals(-Errno.EBADF, FileIo.readRaw(new CallState(), fd, buf, 0, 64));
        }
    }

    @Test
    void writeOnReadOnlyFdFailsWithEbadf() throws IOException {
        Path file = Files.writeString(dir.resolve("ro"), "x");
        int fd = FileIo.open(file.toString(), FileIo.O_RDONLY | FileIo.O_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(8);
            expect(() -> FileIo.write(fd, buf, 0, 8), "write", "EBADF", "fd=" + fd, "length=8");
        } finally {
            FileIo.close(fd);
        }
    }

    @Test
    void preadAndPwriteOnEventFdFailWithEspipe() {
        int fd = EventFd.create(0, EventFd.EFD_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(8);
            expect(() -> FileIo.pread(fd, buf, 0, 8, 4096), "pread", "ESPIPE", "fd=" + fd, "length=8", "position=4096");
            expect(() -> FileIo.pwrite(fd, buf, 0, 8, 0), "pwrite", "ESPIPE", "fd=" + fd, "length=8", "position=0");
        } finally {
            FileIo.close(fd);
        }
    }

    @Test
    void pwritePreadRoundTripThroughSegments() {
        int fd = FileIo.memfdCreate("roundtrip", FileIo.MFD_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(8192);
            for (int i = 0; i < 8192; i++) {
                src.set(JAVA_BYTE, i, (byte) (i * 31));
            }
            assertEquals(4096, FileIo.pwrite(fd, src, 100, 4096, 8192));
            MemorySegment dst = arena.allocate(8192);
            CallState st = new CallState();
            assertEquals(4096, FileIo.preadRaw(st, fd, dst, 50, 4096, 8192));
            assertArrayEquals(src.asSlice(100, 4096).toArray(JAVA_BYTE), dst.asSlice(50, 4096).toArray(JAVA_BYTE));
            assertEquals(0, FileIo.pread(fd, dst, 0, 10, 1 << 20)); // beyond end of file
        } finally {
            FileIo.close(fd);
        }
    }

    /**
     * preadRaw / pwriteRaw go through a handle without errno capture and repeat a failed call through the capturing
     * one (Libc.downcallRepeatedForErrno): the errno of a failure still comes back, through the raw and the throwing
     * API.
     */
    @Test
    void positionedIoFailuresStillReturnTheirErrno() {
        int efd = EventFd.create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(4096);
            CallState st = new CallState();
            assertEquals(-Errno.EBADF, FileIo.preadRaw(st, -1, buf, 0, 4096, 0));
            assertEquals(-Errno.EBADF, FileIo.pwriteRaw(st, -1, buf, 0, 4096, 0));
            assertEquals(-Errno.ESPIPE, FileIo.preadRaw(st, efd, buf, 0, 8, 0), "an eventfd has no position");
            assertEquals(-Errno.ESPIPE, FileIo.pwriteRaw(st, efd, buf, 0, 8, 0));
            ErrnoException e = assertThrows(ErrnoException.class, () -> FileIo.pread(efd, buf, 0, 8, 0));
            assertEquals(Errno.ESPIPE, e.errno());
        } finally {
            FileIo.close(efd);
        }
    }

    @Test
    void buffersAreCheckedBeforeTheCall() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(16);
            assertThrows(IndexOutOfBoundsException.class, () -> FileIo.pread(0, buf, 8, 16, 0));
            assertThrows(IllegalArgumentException.class, () -> FileIo.read(0, MemorySegment.ofArray(new byte[8]), 0, 8));
        }
        MemorySegment closed;
        try (Arena arena = Arena.ofConfined()) {
            closed = arena.allocate(16);
        }
        assertThrows(IllegalStateException.class, () -> FileIo.read(0, closed, 0, 16));
    }

    @Test
    void ftruncateSetsTheSizeAndRejectsNegativeLength() throws IOException {
        int fd = FileIo.memfdCreate("trunc", FileIo.MFD_CLOEXEC);
        try {
            FileIo.ftruncate(fd, 12345);
            assertEquals(12345, size(fd));
            expect(() -> FileIo.ftruncate(fd, -1), "ftruncate", "EINVAL", "fd=" + fd, "length=-1");
        } finally {
            FileIo.close(fd);
        }
    }

    @Test
    void fallocateExtendsAndRejectsABadMode() throws IOException {
        int fd = FileIo.memfdCreate("falloc", FileIo.MFD_CLOEXEC);
        try {
            FileIo.fallocate(fd, 0, 0, 1 << 20);
            assertEquals(1 << 20, size(fd));
            FileIo.fallocate(fd, FileIo.FALLOC_FL_PUNCH_HOLE | FileIo.FALLOC_FL_KEEP_SIZE, 0, 4096);
            expectOneOf(() -> FileIo.fallocate(fd, 0x4000, 0, 4096), "fallocate", List.of("EOPNOTSUPP", "EINVAL"),
                    "fd=" + fd, "mode=0x4000", "offset=0", "length=4096");
        } finally {
            FileIo.close(fd);
        }
    }

    @Test
    void sealsStopResizingAndFurtherSealing() throws IOException {
        int fd = FileIo.memfdCreate("sealed", FileIo.MFD_CLOEXEC | FileIo.MFD_ALLOW_SEALING);
        int unsealable = FileIo.memfdCreate("unsealable", FileIo.MFD_CLOEXEC);
        try {
            FileIo.ftruncate(fd, 8192);
            assertEquals(0, FileIo.seals(fd));
            FileIo.addSeals(fd, FileIo.F_SEAL_SHRINK | FileIo.F_SEAL_GROW | FileIo.F_SEAL_SEAL);
            assertEquals(FileIo.F_SEAL_SHRINK | FileIo.F_SEAL_GROW | FileIo.F_SEAL_SEAL, FileIo.seals(fd));
            expect(() -> FileIo.ftruncate(fd, 4096), "ftruncate", "EPERM", "fd=" + fd);
            expect(() -> FileIo.ftruncate(fd, 16384), "ftruncate", "EPERM", "fd=" + fd);
            expect(() -> FileIo.addSeals(fd, FileIo.F_SEAL_WRITE), "fcntl(F_ADD_SEALS)", "EPERM", "fd=" + fd);
            assertEquals(8192, size(fd));
            // without MFD_ALLOW_SEALING the file comes sealed with F_SEAL_SEAL
            assertEquals(FileIo.F_SEAL_SEAL, FileIo.seals(unsealable));
            expect(() -> FileIo.addSeals(unsealable, FileIo.F_SEAL_GROW), "fcntl(F_ADD_SEALS)", "EPERM");
            expect(() -> FileIo.seals(-1), "fcntl(F_GET_SEALS)", "EBADF", "fd=-1");
        } finally {
            FileIo.close(unsealable);
            FileIo.close(fd);
        }
    }

    @Test
    void fdatasyncSyncsAFileAndFailsOnAnEventFd() {
        int file = FileIo.open(dir.resolve("sync").toString(), FileIo.O_RDWR | FileIo.O_CREAT | FileIo.O_CLOEXEC, 0600);
        int efd = EventFd.create(0, EventFd.EFD_CLOEXEC);
        try {
            FileIo.fdatasync(file);
            expect(() -> FileIo.fdatasync(efd), "fdatasync", "EINVAL", "fd=" + efd);
            expect(() -> FileIo.fdatasync(-1), "fdatasync", "EBADF", "fd=-1");
        } finally {
            FileIo.close(efd);
            FileIo.close(file);
        }
    }

    @Test
    void memfdCreateRejectsALongNameAndBadFlags() {
        String name = "n".repeat(300);
        expect(() -> FileIo.memfdCreate(name, FileIo.MFD_CLOEXEC), "memfd_create", "EINVAL", "name=\"" + name + "\"");
        expect(() -> FileIo.memfdCreate("bad", 0x1000), "memfd_create", "EINVAL", "name=\"bad\"", "flags=0x1000");
    }
}
