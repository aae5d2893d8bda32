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

    /** Counters for stats: requests completed, bytes read, bytes written, errors. */
    QueueStats stats();

    @Override
    void close();
}
