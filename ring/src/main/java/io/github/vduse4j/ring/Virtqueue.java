package io.github.vduse4j.ring;

/**
 * The device side of one virtqueue ({@link SplitVirtqueue}, {@link PackedVirtqueue}). Single-threaded: one poller
 * thread owns it. Hot-path methods never allocate, never lock and never throw for any ring content.
 *
 * <p>Poll loop contract:
 * <pre>{@code
 * q.disableNotifications();                 // while busy-polling
 * for (;;) {
 *     int r = q.pop(chain);
 *     if (r == POPPED) { ...process, later q.complete(chain.id(), written)... }
 *     else if (r == CHAIN_ERROR) q.complete(chain.id(), 0);        // id is always known for CHAIN_ERROR
 *     else if (r == NEEDS_RESET) { report, stop polling this queue until restore/reset }
 *     else {                                // EMPTY
 *         q.publish(); if (q.needsNotification()) injectInterrupt();
 *         if (q.enableNotifications()) { q.disableNotifications(); continue; }   // raced with the driver
 *         park until kick; q.disableNotifications();
 *     }
 * }
 * }</pre>
 * A poller must call {@link #enableNotifications()} (and see it return false) before it sleeps: that is the only
 * point where the queue tells the driver to kick again.
 */
public interface Virtqueue {
    /** {@link #pop} found nothing new. */
    int EMPTY = 0;
    /** {@link #pop} filled the chain. */
    int POPPED = 1;
    /** The chain is malformed; {@link DescriptorChain#error()} says why, {@link DescriptorChain#id()} is valid and the
     *  chain is in flight: return it with {@link #complete}(id, 0). */
    int CHAIN_ERROR = -1;
    /** The ring itself is inconsistent; {@link DescriptorChain#error()} says why. The queue stays broken (every pop
     *  returns NEEDS_RESET) until {@link #restore}. */
    int NEEDS_RESET = -2;

    /** Takes the next available chain into {@code chain}: {@link #POPPED}, {@link #EMPTY}, {@link #CHAIN_ERROR} or
     *  {@link #NEEDS_RESET}. */
    int pop(DescriptorChain chain);

    /** Stages a used element for chain {@code id} with {@code writtenLength} bytes written (an unsigned 32-bit value).
     *  Invisible to the driver until {@link #publish()}. Throws IllegalArgumentException only for an id that this
     *  queue did not hand out (a device bug, never a driver's doing; split checks the range, packed the in-flight
     *  table). */
    void complete(int id, int writtenLength);

    /** Makes every staged used element visible to the driver (one release store per batch). */
    void publish();

    /** After {@link #publish()}: whether the driver wants a used-buffer notification for what was published since
     *  the last call (EVENT_IDX / NO_INTERRUPT / packed driver event suppression). Contains the full fence. */
    boolean needsNotification();

    /** Tells the driver not to kick (busy polling). */
    void disableNotifications();

    /** Tells the driver to kick on its next addition, then (after a full fence) returns true if buffers arrived
     *  meanwhile, in which case the caller must poll again instead of sleeping. */
    boolean enableNotifications();

    /** True once a pop returned {@link #NEEDS_RESET}, until {@link #restore}. */
    boolean isBroken();

    /** The {@link ChainError} that broke the queue (or made {@link #restore} refuse its values); NONE if not broken. */
    int brokenReason();

    /** Queue size (number of descriptors). */
    int size();

    /** Split: the u16 index of the next avail entry to pop; packed: the next descriptor index to read (0..size-1). */
    int lastAvailIndex();

    /** Packed: the device's view of the driver wrap counter at {@link #lastAvailIndex()}; split: always true. */
    boolean lastAvailWrapCounter();

    /** Split: the u16 used index (including staged, unpublished elements); packed: next used descriptor index. */
    int lastUsedIndex();

    /** Packed: the device ring wrap counter at {@link #lastUsedIndex()}; split: always true. */
    boolean lastUsedWrapCounter();

    /** Resets the device-side state (GET/SET_VRING_BASE, GET_VQ_STATE); clears broken state and in-flight tracking.
     *  Inconsistent values (from a hostile frontend) leave the queue broken instead of throwing. */
    void restore(int lastAvailIndex, boolean availWrap, int lastUsedIndex, boolean usedWrap);

    /** Chains popped (including CHAIN_ERROR ones) and not yet completed. */
    int inflight();
}
