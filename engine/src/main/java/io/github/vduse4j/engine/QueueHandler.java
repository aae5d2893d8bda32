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

    /** Counters for stats: requests completed, bytes read, bytes written, errors. */
    QueueStats stats();

    @Override
    void close();
}
