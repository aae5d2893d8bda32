package io.github.vduse4j.bindings;

import static io.github.vduse4j.bindings.Failures.expect;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class MemoryMapTest {
    static final int RW = MemoryMap.PROT_READ | MemoryMap.PROT_WRITE;

    /** Whether any mapping of this process covers {@code address} (the kernel may merge a new one with a neighbour). */
    static boolean mapped(long address) throws IOException {
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().anyMatch(l -> {
            String[] range = l.substring(0, l.indexOf(' ')).split("-");
            long start = Long.parseUnsignedLong(range[0], 16);
            long end = Long.parseUnsignedLong(range[1], 16);
            return Long.compareUnsigned(address, start) >= 0 && Long.compareUnsigned(address, end) < 0;
        });
    }

    @Test
    void zeroLengthFailsWithEinval() {
        expect(() -> MemoryMap.map(0, RW, MemoryMap.MAP_PRIVATE | MemoryMap.MAP_ANONYMOUS, -1, 0), "mmap", "EINVAL",
                "length=0", "prot=0x3", "flags=0x22", "fd=-1", "offset=0");
    }

    @Test
    void sharedMappingOfABadFdFailsWithEbadf() {
        expect(() -> MemoryMap.map(4096, RW, MemoryMap.MAP_SHARED, -1, 0, Arena.global()), "mmap", "EBADF",
                "length=4096", "fd=-1");
    }

    @Test
    @SuppressWarnings("restricted")
    void unmapOfAnUnalignedAddressFailsWithEinval() {
        MemorySegment bogus = MemorySegment.ofAddress(0x1001).reinterpret(4096);
        expect(() -> MemoryMap.unmap(bogus), "munmap", "EINVAL", "address=0x1001", "length=4096");
    }

    @Test
    void memfdMappingSharesWritesWithTheFdAndUnmapsWithItsArena() throws IOException {
        int fd = FileIo.memfdCreate("guest-memory", FileIo.MFD_CLOEXEC);
        long address;
        try (Arena arena = Arena.ofConfined(); Arena buffers = Arena.ofConfined()) {
            FileIo.ftruncate(fd, 2 * 4096);
            MemorySegment memory = MemoryMap.map(2 * 4096, RW, MemoryMap.MAP_SHARED, fd, 0, arena);
            address = memory.address();
            assertEquals(2 * 4096, memory.byteSize());
            assertTrue(mapped(address));

            memory.set(JAVA_LONG, 4096, 0x1122334455667788L);
            MemorySegment buf = buffers.allocate(JAVA_LONG);
            assertEquals(8, FileIo.pread(fd, buf, 0, 8, 4096));
            assertEquals(0x1122334455667788L, buf.get(JAVA_LONG, 0));

            buf.set(JAVA_LONG, 0, 42);
            FileIo.pwrite(fd, buf, 0, 8, 16);
            assertEquals(42, memory.get(JAVA_LONG, 16));
        } finally {
            FileIo.close(fd);
        }
        assertFalse(mapped(address), "closing the arena unmaps");
    }

    @Test
    void anonymousMappingWithoutArenaIsUnmappedByTheCaller() throws IOException {
        MemorySegment memory = MemoryMap.map(4096, RW, MemoryMap.MAP_PRIVATE | MemoryMap.MAP_ANONYMOUS, -1, 0);
        memory.set(JAVA_LONG, 0, 7);
        assertEquals(7, memory.get(JAVA_LONG, 0));
        assertTrue(mapped(memory.address()));
        MemoryMap.unmap(memory);
        assertFalse(mapped(memory.address()));
    }

    @Test
    void dontneedDropsPagesOfAPrivateAnonymousMappingAndTheyReadBackZero() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = MemoryMap.map(3 * 4096, RW,
                    MemoryMap.MAP_PRIVATE | MemoryMap.MAP_ANONYMOUS | MemoryMap.MAP_NORESERVE, -1, 0, arena);
            m.set(JAVA_LONG, 0, 1);
            m.set(JAVA_LONG, 4096, 2);
            m.set(JAVA_LONG, 2 * 4096, 3);
            CallState st = CallState.current();
            assertEquals(0, MemoryMap.adviseRaw(st, m, 4096, 4096, MemoryMap.MADV_DONTNEED));
            assertEquals(1, m.get(JAVA_LONG, 0));
            assertEquals(0, m.get(JAVA_LONG, 4096), "dropped page reads back zero");
            assertEquals(3, m.get(JAVA_LONG, 2 * 4096));
            assertEquals(-Errno.EINVAL, MemoryMap.adviseRaw(st, m, 100, 4096, MemoryMap.MADV_DONTNEED), "unaligned start");
        }
    }

    @Test
    void aMappingLargerThanTheAddressSpaceFailsWithEnomem() {
        expect(() -> MemoryMap.map(1L << 62, RW, MemoryMap.MAP_PRIVATE | MemoryMap.MAP_ANONYMOUS | MemoryMap.MAP_NORESERVE,
                -1, 0, Arena.global()), "mmap", "ENOMEM", "length=" + (1L << 62));
    }
}
