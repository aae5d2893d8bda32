package io.github.vduse4j.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.function.Executable;

/** Asserts that a call fails with an {@link ErrnoException} whose message names the call, its arguments and the errno. */
final class Failures {
    private Failures() {}

    /** {@code action} must fail as {@code call} with {@code errno} and a message containing every fragment. */
    static ErrnoException expect(Executable action, String call, String errno, String... fragments) {
        return expectOneOf(action, call, List.of(errno), fragments);
    }

    /** As {@link #expect}, accepting any of {@code errnos} (kernels differ for some calls). */
    static ErrnoException expectOneOf(Executable action, String call, List<String> errnos, String... fragments) {
        ErrnoException e = assertThrows(ErrnoException.class, action);
        String message = e.getMessage();
        assertEquals(call, e.call(), message);
        assertTrue(errnos.contains(e.errnoName()), () -> "expected one of " + errnos + ": " + message);
        assertEquals(e.errnoName(), Errno.name(e.errno()), message);
        assertTrue(message.startsWith(call + "("), message);
        assertTrue(message.contains(") failed: " + e.errnoName() + " (" + Errno.description(e.errno()) + ")"), message);
        Arrays.stream(fragments).forEach(f -> assertTrue(message.contains(f), () -> "no '" + f + "' in: " + message));
        return e;
    }
}
