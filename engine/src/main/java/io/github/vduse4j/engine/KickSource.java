package io.github.vduse4j.engine;

/** How a poller learns that the driver added buffers ("kick", virtio 1.2 §2.7.13 / §2.8.23). */
public interface KickSource {

    /** Blocks until the driver kicks or {@link #wake()} is called; consumes pending kicks. */
    void await();

    /** Wakes a thread blocked in {@link #await()} (control thread: pause, stop). */
    void wake();
}
