package io.github.vduse4j.blockdev.uring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.uapi.Uapi;
import org.junit.jupiter.api.Test;

/** The hand-driven ring on the real kernel: sizes, wrap-around of both rings, errors as CQEs and as exceptions. */
class IoUringRingTest {
    static void assumeIoUring() {
        String why = IoUringRing.probe();
        assumeTrue(why == null, () -> "io_uring unavailable on this host: " + why);
    }

    @Test
    void nopsComeBackWithTheirUserDataAcrossManyWrapArounds() {
        assumeIoUring();
        CallState st = new CallState();
        try (IoUringRing ring = IoUringRing.openForPolling(4, 8)) {
            assertEquals(4, ring.sqEntries());
            assertEquals(8, ring.cqEntries());
            assertTrue((ring.features() & Uapi.IORING_FEAT_NODROP()) != 0);
            long next = 0, expected = 0;
            for (int round = 0; round < 100; round++) {
                int n = 0;
                while (ring.hasSqSpace()) {
                    ring.prepare(Uapi.IORING_OP_NOP(), 0, -1, 0, 0, 0, 0, 1000 + next++);
                    n++;
                }
                assertEquals(4, n, "a full SQ after each submit");
                assertEquals(4, ring.unsubmitted());
                assertEquals(4, ring.submit(st, 4, Uapi.IORING_ENTER_GETEVENTS()));
                assertEquals(0, ring.unsubmitted());
                assertEquals(4, ring.ready());
                for (int i = 0; i < 4; i++) {
                    assertEquals(1000 + expected++, ring.userData(i));
                    assertEquals(0, ring.result(i));
                }
                ring.advance(4);
                assertEquals(0, ring.ready());
            }
        }
    }

    @Test
    void aBadFileIsAnErrorCqeAndABadRegistrationAnException() {
        assumeIoUring();
        CallState st = new CallState();
        try (IoUringRing ring = IoUringRing.open(2, 0, 0)) {
            ring.prepare(Uapi.IORING_OP_FSYNC(), 0, 12345, 0, 0, 0, 0, 77);
            assertEquals(1, ring.submit(st, 1, Uapi.IORING_ENTER_GETEVENTS()));
            assertEquals(1, ring.ready());
            assertEquals(77, ring.userData(0));
            assertEquals(-Errno.EBADF, ring.result(0));
            ring.advance(1);
            var e = assertThrows(ErrnoException.class, () -> ring.registerFile(-7));
            assertEquals(Errno.EBADF, e.errno());
            assertTrue(e.getMessage().startsWith("io_uring_register("), e.getMessage());
            assertFalse(ring.needsEnter());
        }
    }

    @Test
    void setupFailuresNameTheCallAndTheErrno() {
        var e = assertThrows(ErrnoException.class, () -> IoUringRing.open(0, 0, 0));
        assertTrue(e.getMessage().startsWith("io_uring_setup(entries=0) failed: "), e.getMessage());
        String probe = IoUringRing.probe();
        if (probe != null) { // e.g. kernel.io_uring_disabled=2: the reason names the errno
            assertTrue(probe.contains("EPERM") || probe.contains("ENOSYS") || probe.contains("ENOMEM"), probe);
        } else {
            assertNull(probe);
        }
    }
}
