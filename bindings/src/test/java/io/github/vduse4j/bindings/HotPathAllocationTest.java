package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import org.junit.jupiter.api.Test;

/** The {@code ...Raw} methods allocate nothing, on success or failure, once compiled. */
class HotPathAllocationTest {
    static final int ROUNDS = 20_000;

    @Test
    void rawCallsDoNotAllocate() {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        assumeTrue(threads.isThreadAllocatedMemorySupported() && threads.isThreadAllocatedMemoryEnabled());
        // The JDK slices the errno capture segment on every capturing call (SharedUtils.checkCaptureSegment) and
        // relies on C2's escape analysis to remove it: interpreted and C1 code allocate ~40 B per such call (the
        // hot-path calls a failure leaves without effect skip the capture until they fail:
        // Libc.downcallRepeatedForErrno; HotPathAllocationUnderC1Test). So measure windows until one runs entirely in
        // C2 code (background compilation may lag on small machines).
        long best = fewestBytesAllocated(HotPathAllocationTest::rounds, ROUNDS * expectedPerRound());
        assertTrue(best < ROUNDS / 10, best + " bytes allocated in " + ROUNDS + " rounds at best");
    }

    /** {@code ROUNDS} calls of each kind on a memfd, an eventfd polled for POLLIN and scratch memory; their sum. */
    interface Rounds {
        long run(CallState st, int memfd, int efd, MemorySegment buf, MemorySegment count, Poll poll);
    }

    /**
     * The fewest bytes this thread allocated in one of up to 20 windows of {@code rounds} (the later windows run
     * compiled code); a window whose sum is not {@code expectedSum} (a call failed) is an {@link AssertionError}.
     */
    static long fewestBytesAllocated(Rounds rounds, long expectedSum) {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        int memfd = FileIo.memfdCreate("hot", FileIo.MFD_CLOEXEC);
        int efd = EventFd.create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK);
        try (Arena arena = Arena.ofConfined()) {
            CallState st = new CallState();
            MemorySegment buf = arena.allocate(4096, 4096);
            MemorySegment count = arena.allocate(JAVA_INT);
            Poll poll = new Poll(1);
            poll.add(efd, Poll.POLLIN);
            FileIo.ftruncate(memfd, 1 << 20);
            long best = Long.MAX_VALUE;
            long tid = Thread.currentThread().threadId();
            for (int window = 0; window < 20 && best > 0; window++) {
                long before = threads.getThreadAllocatedBytes(tid);
                long sum = rounds.run(st, memfd, efd, buf, count, poll);
                best = Math.min(best, threads.getThreadAllocatedBytes(tid) - before);
                if (sum != expectedSum) {
                    throw new AssertionError("a call returned what it should not: sum " + sum
                            + ", expected " + expectedSum);
                }
            }
            return best;
        } finally {
            FileIo.close(efd);
            FileIo.close(memfd);
        }
    }

    static long expectedPerRound() {
        return 512 + 512 + 1 + 0 + 3 - Errno.ENOTTY - Errno.EBADF - Errno.EBADF - Errno.EAGAIN + 0 + 0 - Errno.ENOTTY;
    }

    static long rounds(CallState st, int memfd, int efd, MemorySegment buf, MemorySegment count, Poll poll) {
        long sum = 0;
        for (int i = 0; i < ROUNDS; i++) {
            sum += FileIo.pwriteRaw(st, memfd, buf, 512, 512, (i & 255) * 4096L);
            sum += FileIo.preadRaw(st, memfd, buf, 1024, 512, (i & 255) * 4096L);
            sum += poll.pollRaw(st, 0) == 0 ? 0 : 100;            // nothing signalled yet: 0
            sum += EventFd.signalRaw(st, efd, 3);                  // 0
            sum += poll.pollRaw(st, 0);                            // 1
            sum += EventFd.consumeRaw(st, efd);                    // 3
            sum += Ioctl.ioctlRaw(st, memfd, Ioctl.FIONREAD, count); // 0
            sum += Ioctl.ioctlRaw(st, memfd, Ioctl.io(0x81, 0x7f), 0L); // -ENOTTY
            sum += FileIo.readRaw(st, -1, buf, 0, 8);              // -EBADF
            sum += Syscall.ioUringEnterRaw(st, -1, 0, 0, 0);       // -EBADF
            sum += EventFd.consumeRaw(st, efd);                    // -EAGAIN
            sum += FileIo.fdatasyncRaw(st, memfd);                 // 0
            sum += Ioctl.ioctlRepeatableRaw(st, memfd, Ioctl.FIONREAD, count);          // 0
            sum += Ioctl.ioctlRepeatableRaw(st, memfd, Ioctl.io(0x81, 0x7f), count);    // -ENOTTY (repeated, captured)
        }
        return sum;
    }
}
