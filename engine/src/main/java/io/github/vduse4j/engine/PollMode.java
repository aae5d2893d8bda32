package io.github.vduse4j.engine;

/** What a queue poller does when its ring is empty. */
public enum PollMode {
    /** Spin on the ring forever with driver notifications off: lowest latency, one CPU per poller. */
    BUSY,
    /**
     * Spin for a window that adapts to the driver's pace (as QEMU's AioContext polling does), then re-enable
     * notifications and sleep on the kick. The window grows while requests arrive shortly after the poller
     * started waiting and shrinks while the device is idle.
     */
    ADAPTIVE,
    /** Re-enable notifications and sleep on the kick at once (like vhost and qemu-storage-daemon). */
    EVENT
}
