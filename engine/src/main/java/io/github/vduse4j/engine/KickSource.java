package io.github.vduse4j.engine;

/** How a poller learns that the driver added buffers ("kick", virtio 1.2 §2.7.13 / §2.8.23). */
public interface KickSource {

    /** Blocks until the driver kicks or {@link #wake()} is called; consumes pending kicks. */
    void await();

    /**
     * Like {@link #await()}, but also returns when {@code completionFd} (an eventfd, see
     * {@link QueueHandler#completionFd()}) becomes readable, consuming its count; {@code completionFd} &lt; 0 is
     * {@link #await()}. Sources that cannot wait on an fd wake up periodically instead, which is also correct.
     */
    default void await(int completionFd) {
        await();
    }

    /** Wakes a thread blocked in {@link #await()} (control thread: pause, stop). */
    void wake();
}
