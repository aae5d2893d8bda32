package io.github.vduse4j.blockdev.backend;

/**
 * One queue's submission context: called only by that queue's poller thread. Implementations must not allocate,
 * throw or block indefinitely on this path.
 *
 * <p>Three ways to complete, freely mixed: synchronously inside {@link #submit}; later from {@link #poll} on the
 * poller (run-to-completion, e.g. io_uring or librbd's completion queue, with {@link #completionFd()} so the poller
 * can sleep); or later from any other thread, by calling {@link BlockRequest#complete(int)} there. The last needs no
 * fd and no {@code poll()}: the request is handed to the poller (no allocation, no lock), which wakes on an eventfd
 * of its own, or on this queue's {@link #completionFd()} when there is one (the handoff then signals that fd). What
 * a completing thread may touch is said in {@link BlockRequest}.
 *
 * <pre>{@code
 * public void submit(BlockRequest r) {                 // poller thread
 *     MemorySegment buf = r.buffer(0);                 // capture now: buffer lists are valid only during submit
 *     long off = r.bufferOffset(0), pos = r.offset();
 *     int len = r.bufferLength(0);
 *     executor.execute(() -> r.complete(readInto(buf, off, len, pos) ? BlockRequest.STATUS_OK
 *                                                                    : BlockRequest.STATUS_IOERR));
 * }
 * }</pre>
 */
public interface BackendQueue extends AutoCloseable {

    /**
     * Starts {@code request}. The backend finishes it with {@link BlockRequest#complete(int)} exactly once: before
     * returning (synchronous backends), later from {@link #poll()} on the same thread, or from a thread of its own.
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
     * Requests in flight (informational; the poller counts in-flight slots itself).
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
