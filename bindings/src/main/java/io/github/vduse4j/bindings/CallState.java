package io.github.vduse4j.bindings;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Per-thread native scratch for downcalls: the segment errno is captured into, and 8 bytes for
 * eventfd values. Not thread-safe: one thread uses one instance. Hot-path code creates one per
 * poller thread and passes it to the {@code ...Raw} methods; the throwing API uses
 * {@link #current()}.
 */
public final class CallState {
    private static final ThreadLocal<CallState> CURRENT = ThreadLocal.withInitial(CallState::new);

    final MemorySegment capture;
    final MemorySegment scratch;

    /** Allocates the state in an automatic arena (freed by the GC with this object). */
    public CallState() {
        Arena arena = Arena.ofAuto();
        capture = arena.allocate(Libc.CAPTURE_LAYOUT);
        scratch = arena.allocate(ValueLayout.JAVA_LONG);
    }

    /** The calling thread's own state (a thread-local, created on first use). */
    public static CallState current() {
        return CURRENT.get();
    }

    /** errno as captured by the last call made with this state; meaningful only right after a failure. */
    public int errno() {
        return (int) Libc.ERRNO.get(capture, 0L);
    }
}
