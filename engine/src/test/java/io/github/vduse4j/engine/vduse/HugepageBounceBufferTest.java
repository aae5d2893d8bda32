package io.github.vduse4j.engine.vduse;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.MemoryMap;
import io.github.vduse4j.engine.TransportException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The layout of the bridge's shared memory: one sealed memfd, the bounce part mapped (what REG_UMEM registers) and
 * a tail of whole hugepages after it. The host has no hugepages reserved, so the layout and the seals are checked on
 * a tmpfs memfd made the same way ({@code create(0, ...)}); the hugetlb one runs in the guest e2e
 * (scripts/e2e/bridge-guest).
 */
class HugepageBounceBufferTest {
    private static final long MIB = 1L << 20;

    @Test
    void oneSealedFileHoldsTheBouncePartAndTheTail() throws Exception {
        long bounce = 4 * MIB, tail = 2 * MIB;
        try (HugepageBounceBuffer b = HugepageBounceBuffer.create(0, bounce, tail)) {
            assertEquals(bounce, b.size());
            assertEquals(bounce, b.segment().byteSize(), "the mapping REG_UMEM registers is the bounce part only");
            assertEquals(bounce, b.tailOffset());
            assertEquals(tail, b.tailSize());
            assertEquals(bounce + tail, Files.size(Path.of("/proc/self/fd/" + b.fd())));
            assertEquals(HugepageBounceBuffer.SEALS, b.seals());
            assertEquals(HugepageBounceBuffer.SEALS, FileIo.seals(b.fd()));
            assertEquals("seal,shrink,grow", HugepageBounceBuffer.sealNames(b.seals()));
            // sealed: neither a shrink nor a growth nor another seal
            assertThrows(ErrnoException.class, () -> FileIo.ftruncate(b.fd(), bounce));
            assertThrows(ErrnoException.class, () -> FileIo.ftruncate(b.fd(), bounce + tail + 2 * MIB));
            assertThrows(ErrnoException.class, () -> FileIo.fallocate(b.fd(), 0, bounce + tail, 2 * MIB));
            assertThrows(ErrnoException.class, () -> FileIo.addSeals(b.fd(), FileIo.F_SEAL_WRITE));
            // the tail, mapped by its user from tailOffset(), and a target's mapping of the whole file see the same
            // pages; the bounce mapping ends where the tail begins
            MemorySegment tailMap = MemoryMap.map(tail, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE,
                    MemoryMap.MAP_SHARED, b.fd(), b.tailOffset());
            MemorySegment whole = MemoryMap.map(bounce + tail, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE,
                    MemoryMap.MAP_SHARED, b.fd(), 0);
            try {
                b.segment().set(ValueLayout.JAVA_LONG, bounce - 8, 0x1122334455667788L);
                tailMap.set(ValueLayout.JAVA_LONG, 0, 0x0102030405060708L);
                assertEquals(0x1122334455667788L, whole.get(ValueLayout.JAVA_LONG, bounce - 8));
                assertEquals(0x0102030405060708L, whole.get(ValueLayout.JAVA_LONG, bounce));
                whole.set(ValueLayout.JAVA_LONG, bounce + tail - 8, 42);
                assertEquals(42, tailMap.get(ValueLayout.JAVA_LONG, tail - 8));
            } finally {
                MemoryMap.unmap(whole);
                MemoryMap.unmap(tailMap);
            }
        }
    }

    @Test
    void noTailIsJustTheBounceBuffer() throws Exception {
        try (HugepageBounceBuffer b = HugepageBounceBuffer.create(0, 2 * MIB, 0)) {
            assertEquals(0, b.tailSize());
            assertEquals(2 * MIB, Files.size(Path.of("/proc/self/fd/" + b.fd())));
        }
    }

    @Test
    void allocateCountsTheTailInTheHugepagesItNeeds() {
        long free = HugepageBounceBuffer.freeHugepages();
        // one page more than is free, made of the bounce part and a 1-byte tail (rounded up to a whole hugepage)
        TransportException e = assertThrows(TransportException.class,
                () -> HugepageBounceBuffer.allocate(Math.max(1, free) * HugepageBounceBuffer.HUGEPAGE, 1));
        assertTrue(e.getMessage().contains("needs " + (Math.max(1, free) + 1) + " free 2 MiB hugepages"),
                e.getMessage());
        assertThrows(TransportException.class, () -> HugepageBounceBuffer.allocate(3 * MIB, 0));
    }
}
