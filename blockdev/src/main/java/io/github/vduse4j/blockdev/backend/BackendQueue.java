package io.github.vduse4j.blockdev.backend;

/**
 * One queue's submission context: used only by that queue's poller thread, which also reaps completions
 * (run-to-completion). Implementations must not allocate, throw or block indefinitely on this path.
 */
public interface BackendQueue extends AutoCloseable {

    /**
     * Starts {@code request}. The backend finishes it with {@link BlockRequest#complete(int)}, either before
     * returning (synchronous backends) or later from {@link #poll()} on the same thread.
     *
     * @param request a validated request whose buffers are the driver's own memory (valid during this call only)
     */
    void submit(BlockRequest request);

    /**
     * Reaps finished asynchronous work, completing those requests.
     *
     * @return how many requests completed
     */
    default int poll() {
        return 0;
    }

    /**
     * Requests in flight.
     *
     * @return requests submitted but not yet completed
     */
    default int inflight() {
        return 0;
    }

    /**
     * An fd that becomes readable when asynchronous work completes (an eventfd the kernel signals), so the poller
     * can sleep on it together with the kick instead of spinning while requests are in flight; -1 if there is
     * none (synchronous backends complete everything inside {@link #submit}).
     *
     * @return the completion fd, or -1
     */
    default int completionFd() {
        return -1;
    }

    @Override
    default void close() {}
}
