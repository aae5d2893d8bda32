package io.github.vduse4j.bindings;

import static io.github.vduse4j.bindings.Failures.expect;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class EventFdTest {
    @Test
    void createWithBadFlagsFailsWithEinval() {
        expect(() -> EventFd.create(0, 0x2), "eventfd", "EINVAL", "initval=0", "flags=0x2");
    }

    @Test
    void signalOfAllOnesFailsWithEinvalAndOnAClosedFdWithEbadf() {
        int fd = EventFd.create(0, EventFd.EFD_CLOEXEC);
        expect(() -> EventFd.signal(fd, -1), "write", "EINVAL", "eventfd=" + fd, "value=-1");
        FileIo.close(fd);
        expect(() -> EventFd.signal(fd), "write", "EBADF", "eventfd=" + fd, "value=1");
        assertEquals(-Errno.EBADF, EventFd.signalRaw(new CallState(), fd, 1));
    }

    @Test
    void consumeOfAnEmptyNonBlockingEventFdFailsWithEagain() {
        int fd = EventFd.create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK);
        try {
            expect(() -> EventFd.consume(fd), "read", "EAGAIN", "eventfd=" + fd);
            assertEquals(-Errno.EAGAIN, EventFd.consumeRaw(new CallState(), fd));
        } finally {
            FileIo.close(fd);
        }
    }

    @Test
    void signalThenPollShowsPollinThenConsumeReturnsTheCount() {
        int fd = EventFd.create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK);
        try {
            Poll poll = new Poll(1);
            int slot = poll.add(fd, Poll.POLLIN);
            assertEquals(0, poll.poll(0));
            EventFd.signal(fd);
            assertEquals(0, EventFd.signalRaw(new CallState(), fd, 2));
            assertEquals(1, poll.poll(1000));
            assertEquals(Poll.POLLIN, poll.revents(slot) & Poll.POLLIN);
            assertEquals(3, EventFd.consume(fd));
            assertEquals(0, poll.poll(0));
        } finally {
            FileIo.close(fd);
        }
    }

    @Test
    void semaphoreModeConsumesOneAtATime() {
        int fd = EventFd.create(2, EventFd.EFD_CLOEXEC | EventFd.EFD_SEMAPHORE | EventFd.EFD_NONBLOCK);
        try {
            CallState st = new CallState();
            assertEquals(1, EventFd.consumeRaw(st, fd));
            assertEquals(1, EventFd.consumeRaw(st, fd));
            assertEquals(-Errno.EAGAIN, EventFd.consumeRaw(st, fd));
        } finally {
            FileIo.close(fd);
        }
    }
}
