package io.github.vduse4j.blockdev.backend;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.MemoryMap;
import io.github.vduse4j.bindings.Syscall;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * Memory the process reads and writes but the kernel cannot pin, as a VDUSE bounce mapping on Linux 6.12 (VM_IO):
 * a {@code memfd_secret} mapping (GUP refuses secretmem VMAs with EFAULT, as it refuses VM_IO ones). Tests are
 * skipped, with the reason, where the kernel has no memfd_secret or the file system gives no O_DIRECT.
 */
final class UnpinnableMemory {
    private UnpinnableMemory() {}

    /** {@code size} bytes of secret memory, unmapped with {@code arena}. */
    static MemorySegment map(Arena arena, long size) {
        int fd;
        try {
            fd = Syscall.memfdSecret(FileIo.O_CLOEXEC);
        } catch (ErrnoException e) {
            assumeTrue(false, "no memfd_secret here: " + e.getMessage());
            throw e;
        }
        try {
            FileIo.ftruncate(fd, size);
            return MemoryMap.map(size, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE, MemoryMap.MAP_SHARED, fd, 0, arena);
        } finally {
            FileIo.close(fd);
        }
    }

    /** Skips unless an O_DIRECT write of {@code mem} to {@code file} really fails with EFAULT (the kernel pins). */
    static void assumeTheKernelRefusesToPin(Path file, MemorySegment mem) {
        int fd;
        try {
            fd = FileIo.open(file.toString(), FileIo.O_RDWR | FileIo.O_CLOEXEC | FileIo.O_DIRECT);
        } catch (ErrnoException e) {
            assumeTrue(false, "no O_DIRECT on " + file + ": " + e.getMessage());
            return;
        }
        try {
            long r = FileIo.pwriteRaw(new CallState(), fd, mem, 0, 4096, 0);
            assumeTrue(r == -Errno.EFAULT, "an O_DIRECT write from secret memory gave " + r + ", not -EFAULT");
        } finally {
            FileIo.close(fd);
        }
    }
}
