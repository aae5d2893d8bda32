package io.github.vduse4j.engine;

import io.github.vduse4j.ring.Virtqueue;

/**
 * Serves one virtqueue: pops chains, executes them, stages completions. Runs only on its queue's poller
 * thread; must not allocate, throw or block on this path.
 */
public interface QueueHandler extends AutoCloseable {

    /**
     * Takes new chains from {@code queue} (at most {@code budget}), reaps finished asynchronous work and
     * stages used elements with {@link Virtqueue#complete}. The caller publishes and notifies once after.
     *
     * @return the number of chains popped plus completions staged (0 = nothing to do)
     */
    int process(Virtqueue queue, int budget);

    /** Requests popped but not yet completed; the poller drains these to 0 before it pauses or stops. */
    int inflight();

    /**
     * An fd that becomes readable when in-flight asynchronous work completes (e.g. an eventfd registered with
     * io_uring), or -1. With one, a poller whose ring is empty sleeps on it together with the kick instead of
     * spinning until the backend finishes.
     */
    default int completionFd() {
        return -1;
    }

    /**
     * The poller is about to spin on in-flight work ({@link PollMode#INFLIGHT}, {@link PollMode#BUSY}): the backend
     * need not signal {@link #completionFd()} for completions until {@link #armCompletions()} (e.g. used-buffer
     * notifications off on a vhost ring, virtio 1.2 §2.7.7). Default: nothing to suppress.
     */
    default void quietCompletions() {}

    /**
     * Undoes {@link #quietCompletions()} before the poller sleeps on {@link #completionFd()}: the backend signals it
     * again for the next completion, and this re-checks for completions that came while signals were off (§2.7.7.2:
     * re-enable, then look again). True if one is already waiting: the poller must process instead of sleeping, or
     * that completion would wait for a signal that never comes. Default: false (nothing was suppressed).
     */
    default boolean armCompletions() {
        return false;
    }

    /** Counters for stats: requests completed, bytes read, bytes written, errors. */
    QueueStats stats();

    @Override
    void close();
}
