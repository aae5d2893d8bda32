package io.github.vduse4j.bindings;

import static io.github.vduse4j.bindings.Failures.expect;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class IoctlTest {
    static final Ioctl.Request FAKE = Ioctl.request("VDUSE_FAKE", Ioctl.io(0x81, 0x7f));
    static final Ioctl.Request FIONREAD = Ioctl.request("FIONREAD", Ioctl.FIONREAD);
    static final Ioctl.Request FIOCLEX = Ioctl.request("FIOCLEX", Ioctl.FIOCLEX);

    /** The open-file flags of {@code fd} from /proc/self/fdinfo (octal there). */
    static int fdFlags(int fd) throws IOException {
        return Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd)).stream()
                .filter(l -> l.startsWith("flags:")).map(l -> Integer.parseInt(l.substring(6).trim(), 8))
                .findFirst().orElseThrow();
    }

    @Test
    void unknownRequestOnARegularFileFailsWithEnotty() {
        int fd = FileIo.memfdCreate("ioctl", FileIo.MFD_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            expect(() -> Ioctl.ioctl(fd, FAKE, 7), "ioctl", "ENOTTY", "fd=" + fd, "request=VDUSE_FAKE 0x817f", "arg=7");
            expect(() -> Ioctl.ioctl(fd, FAKE, arena.allocate(8)), "ioctl", "ENOTTY", "request=VDUSE_FAKE 0x817f");
            assertEquals(-Errno.ENOTTY, Ioctl.ioctlRaw(new CallState(), fd, FAKE.code(), 0L));
        } finally {
            FileIo.close(fd);
        }
    }

    @Test
    void pointerFormOnAClosedFdFailsWithEbadf() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(JAVA_INT);
            expect(() -> Ioctl.ioctl(-1, FIONREAD, count), "ioctl", "EBADF", "fd=-1", "request=FIONREAD 0x541b");
        }
    }

    @Test
    void pointerFormReadsFionread() {
        int fd = FileIo.memfdCreate("fionread", FileIo.MFD_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            FileIo.pwrite(fd, arena.allocate(5), 0, 5, 0);
            MemorySegment count = arena.allocate(JAVA_INT);
            assertEquals(0, Ioctl.ioctl(fd, FIONREAD, count));
            assertEquals(5, count.get(JAVA_INT, 0));
            count.set(JAVA_INT, 0, 0);
            assertEquals(0, Ioctl.ioctlRaw(new CallState(), fd, Ioctl.FIONREAD, count));
            assertEquals(5, count.get(JAVA_INT, 0));
        } finally {
            FileIo.close(fd);
        }
    }

    @Test
    void integerFormSetsCloseOnExec() throws IOException {
        int fd = FileIo.memfdCreate("fioclex", 0);
        try {
            assertEquals(0, fdFlags(fd) & FileIo.O_CLOEXEC);
            assertEquals(0, Ioctl.ioctl(fd, FIOCLEX));
            assertEquals(FileIo.O_CLOEXEC, fdFlags(fd) & FileIo.O_CLOEXEC);
        } finally {
            FileIo.close(fd);
        }
    }

    @Test
    void encodesRequestsLikeTheKernelMacros() {
        assertEquals(0x817fL, Ioctl.io(0x81, 0x7f));
        assertEquals(0x80088100L, Ioctl.ior(0x81, 0x00, 8));
        assertEquals(0x40888102L, Ioctl.iow(0x81, 0x02, 0x88));
        assertEquals(0x41508102L, Ioctl.iow(0x81, 0x02, 0x150)); // VDUSE_CREATE_DEV
        assertEquals(0xc0388110L, Ioctl.iowr(0x81, 0x10, 0x38));
        assertThrows(IllegalArgumentException.class, () -> Ioctl.iow(0x81, 0x100, 8));
        assertThrows(IllegalArgumentException.class, () -> Ioctl.iow(0x81, 1, 1 << 14));
        assertEquals("FIONREAD 0x541b", FIONREAD.toString());
    }
}
