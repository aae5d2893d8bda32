package io.github.vduse4j.engine;

/** What a queue poller does when its ring is empty. */
public enum PollMode {
    /**
     * Spin on the ring forever with driver notifications off (and the backend's completion signals off, where the
     * handler can suppress them): lowest latency, one CPU per poller.
     */
    BUSY,
    /**
     * Spin for a window that adapts to the driver's pace (as QEMU's AioContext polling does), then re-enable
     * notifications and sleep on the kick (and the backend's completion fd while it has work in flight). The window
     * grows while requests arrive shortly after the poller started waiting and shrinks while the device is idle.
     */
    ADAPTIVE,
    /**
     * While the backend has work in flight, spin on the ring and the backend's completions with both notified sides
     * quiet (driver notifications off, the backend's completion signals suppressed: the vhost-user bridge sets
     * VRING_AVAIL_F_NO_INTERRUPT / used_event on its target's ring), until the backend went
     * {@link QueuePoller#INFLIGHT_SPIN_NANOS} without completing anything; with nothing in flight, the ADAPTIVE window,
     * then sleep on the kick. For a backend that is itself a queue (the bridge's target): no wake-up per completion.
     */
    INFLIGHT,
    /** Re-enable notifications and sleep on the kick at once (like vhost and qemu-storage-daemon). */
    EVENT,
    /**
     * CPU first (issue 18): while requests come faster than {@link PollerSettings#coalesceNanos} apart on average,
     * sleep that long on a timer with driver notifications still off (the driver does not kick, the poller wakes once
     * for every request that came meanwhile, as NIC interrupt moderation does), at most
     * {@link QueuePoller#COALESCE_EMPTY_SLEEPS} times without finding work; slower than that, after those, and while
     * wake-ups find fewer than 1.5 requests on average (a queue depth of 1: the timer would only cap the rate at one
     * request per period), sleep on the kick as EVENT does. Each request waits up to the period longer; a wake-up
     * serves several.
     */
    COALESCE
}
