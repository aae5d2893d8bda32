package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.FunctionDescriptor;
import java.lang.invoke.MethodHandle;
import org.junit.jupiter.api.Test;

/** {@link Libc#downcallRepeatedForErrno}: the capturing handle's shape, its result, and errno only from the repeat. */
class LibcTest {
    private static final MethodHandle DUP =
            Libc.downcallRepeatedForErrno("dup", FunctionDescriptor.of(JAVA_INT, JAVA_INT));

    @Test
    void aRepeatedHandleHasTheCapturingShapeAndReturnsTheCallsResult() throws Throwable {
        assertEquals(Libc.downcall("dup", FunctionDescriptor.of(JAVA_INT, JAVA_INT)).type(), DUP.type());
        CallState st = new CallState();
        int memfd = FileIo.memfdCreate("libc-test", FileIo.MFD_CLOEXEC);
        try {
            Libc.ERRNO.set(st.capture, 0L, 12345);
            int copy = (int) DUP.invokeExact(st.capture, memfd);
            assertTrue(copy >= 0 && copy != memfd, "dup returned " + copy);
            assertEquals(12345, st.errno(), "a call that succeeds goes through the handle without capture");
            FileIo.close(copy);
        } finally {
            FileIo.close(memfd);
        }
    }

    @Test
    void aFailedCallIsRepeatedForItsErrno() throws Throwable {
        CallState st = new CallState();
        assertEquals(-1, (int) DUP.invokeExact(st.capture, -1));
        assertEquals(Errno.EBADF, st.errno(), "errno from the capturing repeat");
    }

    @Test
    void onlyIntAndLongResultsCanBeRepeated() {
        assertThrows(IllegalArgumentException.class,
                () -> Libc.downcallRepeatedForErrno("free", FunctionDescriptor.ofVoid(ADDRESS)));
        assertThrows(IllegalArgumentException.class,
                () -> Libc.downcallRepeatedForErrno("getenv", FunctionDescriptor.of(ADDRESS, ADDRESS)));
    }
}
