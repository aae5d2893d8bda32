package io.github.vduse4j.bindings;

import static io.github.vduse4j.bindings.Failures.expect;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

class PollTest {
    @Test
    @SuppressWarnings("restricted")
    void aBadPollfdAddressFailsWithEfault() {
        MemorySegment unmapped = MemorySegment.ofAddress(8).reinterpret(Poll.POLLFD.byteSize());
        expect(() -> Poll.poll(unmapped, 1, 0), "poll", "EFAULT", "nfds=1", "timeout=0");
    }

    @Test
    void reportsOnlyTheReadyFd() {
        int a = EventFd.create(0, EventFd.EFD_CLOEXEC);
        int b = EventFd.create(0, EventFd.EFD_CLOEXEC);
        try {
            Poll poll = new Poll(2);
            int slotA = poll.add(a, Poll.POLLIN);
            int slotB = poll.add(b, Poll.POLLIN);
            assertEquals(2, poll.size());
            assertEquals(b, poll.fd(slotB));
            long start = System.nanoTime();
            assertEquals(0, poll.poll(20));
            assertTrue(System.nanoTime() - start >= 15_000_000L, "waited for the timeout");
            EventFd.signal(b);
            assertEquals(1, poll.pollRaw(new CallState(), -1));
            assertEquals(0, poll.revents(slotA));
            assertEquals(Poll.POLLIN, poll.revents(slotB));
            assertThrows(IllegalStateException.class, () -> poll.add(a, Poll.POLLIN));
        } finally {
            FileIo.close(a);
            FileIo.close(b);
        }
    }

    @Test
    void aClosedFdShowsPollnval() {
        int fd = EventFd.create(0, EventFd.EFD_CLOEXEC);
        FileIo.close(fd);
        Poll poll = new Poll(1);
        poll.add(fd, Poll.POLLIN);
        assertEquals(1, poll.poll(0));
        assertEquals(Poll.POLLNVAL, poll.revents(0));
        poll.clear();
        assertEquals(0, poll.size());
        assertThrows(IndexOutOfBoundsException.class, () -> poll.revents(0));
    }
}
