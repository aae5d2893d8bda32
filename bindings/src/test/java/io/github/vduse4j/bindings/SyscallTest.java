package io.github.vduse4j.bindings;

import static io.github.vduse4j.bindings.Failures.expect;
import static io.github.vduse4j.bindings.Failures.expectOneOf;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.junit.jupiter.api.Test;

class SyscallTest {
    static final long IO_URING_PARAMS_SIZE = 120;
    static final int IORING_REGISTER_PROBE = 8;

    @Test
    void ioUringEnterOnABadFdFailsWithEbadf() {
        expect(() -> Syscall.ioUringEnter(-1, 1, 0, 0), "io_uring_enter", "EBADF", "fd=-1", "toSubmit=1", "flags=0x0");
        assertEquals(-Errno.EBADF, Syscall.ioUringEnterRaw(new CallState(), -1, 0, 0, 0));
    }

    @Test
    void ioUringRegisterOnABadFdFailsWithEbadf() {
        int notOpen = 999_999; // not -1: since 6.x, fd -1 means "blind" registration and fails with EINVAL
        expect(() -> Syscall.ioUringRegister(notOpen, IORING_REGISTER_PROBE, MemorySegment.NULL, 0), "io_uring_register",
                "EBADF", "fd=999999", "opcode=8", "nrArgs=0");
    }

    @Test
    void ioUringSetupWithZeroEntriesFails() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = arena.allocate(IO_URING_PARAMS_SIZE, 8);
            // EPERM/ENOSYS where io_uring is disabled; EINVAL (zero entries) everywhere else
            expectOneOf(() -> Syscall.ioUringSetup(0, params), "io_uring_setup", List.of("EINVAL", "EPERM", "ENOSYS"),
                    "entries=0");
        }
    }

    @Test
    void anUnknownSyscallReturnsMinusEnosys() {
        assertEquals(-Errno.ENOSYS, Syscall.raw(new CallState(), 99_999, 0, 0, 0, 0, 0, 0));
    }

    @Test
    void ioUringSetupEnterAndRegisterWork() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = arena.allocate(IO_URING_PARAMS_SIZE, 8);
            int fd;
            try {
                fd = Syscall.ioUringSetup(4, params);
            } catch (ErrnoException e) {
                assumeTrue(e.errno() != Errno.ENOSYS && e.errno() != Errno.EPERM,
                        "io_uring is disabled (kernel.io_uring_disabled or seccomp): " + e.getMessage());
                throw e;
            }
            try {
                assertTrue(fd >= 0);
                assertEquals(0, Syscall.ioUringEnter(fd, 0, 0, 0));
                MemorySegment probe = arena.allocate(16 + 256 * 8, 8);
                assertEquals(0, Syscall.ioUringRegister(fd, IORING_REGISTER_PROBE, probe, 256));
                assertTrue(probe.get(JAVA_BYTE, 0) > 0, "the probe reports a last opcode");
            } finally {
                FileIo.close(fd);
            }
        }
    }
}
