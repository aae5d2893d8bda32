package io.github.vduse4j.engine;

/**
 * Interrupt moderation for a queue poller: after a pass publishes used entries, hold their notification back while
 * the driver goes on submitting, so that one interrupt covers the completions of a whole burst instead of one pass
 * each. Poller thread only; no allocation.
 *
 * <p>Why (issue 18, item 4): in the 2-vCPU TCG guest a closed-loop fio at QD32 submits its requests one by one, and a
 * polling back-end catches each as it comes, so it notified every 2-3 requests; every notification costs the guest an
 * interrupt injection (a kworker), the virtio-blk interrupt and the block layer's completion, on the same two vCPUs
 * that run fio. {@code --poll event} sleeps between passes and so found ~7 requests per notification, and beat the
 * default's IOPS there (docs/benchmarks.md "Interrupt moderation").
 *
 * <p>The rule: a held notification is sent once the ring has stayed empty for {@code holdNanos} after the last
 * publish (the driver's burst is over), after 4 x {@code holdNanos} in all (a driver that never pauses still gets
 * its completions), and before the poller sleeps or pauses (so the spin window bounds it). The poller reports only
 * passes that made new used entries visible: a pass that only popped (an asynchronous backend) is no publish.
 *
 * <p>A hold that caught nothing (no publish joined it: a driver at queue depth 1 cannot submit before it hears of its
 * completion) only delayed that completion; after {@link #WASTED_LIMIT} of them in a row the poller notifies at once,
 * but for one publish in {@link #PROBE_EVERY} that still holds as a probe, and a probe that catches a publish brings
 * holding back. So at QD1 the cost is one hold per {@link #PROBE_EVERY} requests.
 *
 * <p>Deferring is allowed by the ring's rules: the device may notify later than it could, and the suppression check
 * made when the notification is finally sent covers every used entry published since the previous check (virtio 1.2
 * §2.7.7, vring_need_event over the whole range; §2.8.10 for the packed ring's event offset).
 */
final class NotificationHold {
    /** Holds in a row that caught nothing before the poller stops holding but for its probes. */
    static final int WASTED_LIMIT = 4;
    /** While holds keep catching nothing, one publish in this many (a power of 2) is held as a probe. */
    static final int PROBE_EVERY = 256;
    /** A hold lasts at most this many times {@code holdNanos} from its first publish. */
    static final int MAX_HOLDS = 4;

    private final long holdNanos;
    private boolean pending;
    private long firstPublish;
    private long lastPublish;
    /** A publish joined the current hold after its first. */
    private boolean caught;
    /** Holds in a row that caught nothing (at most WASTED_LIMIT). */
    private int wasted;
    /** Publishes not held since holding stopped (wraps; its low bits pick the probes). */
    private int unheld;

    /** A hold of {@code holdNanos} of empty ring (0: never hold, notify after every pass). */
    NotificationHold(long holdNanos) {
        if (holdNanos < 0) {
            throw new IllegalArgumentException("notification hold must not be negative");
        }
        this.holdNanos = holdNanos;
    }

    /** True if this hold ever holds (tests the poller's fast path). */
    boolean enabled() {
        return holdNanos > 0;
    }

    /**
     * A pass published used entries at {@code now}: true to hold their notification back (the poller then calls
     * {@link #due} while the ring is empty), false to check and send it now.
     */
    boolean published(long now) {
        if (holdNanos == 0) {
            return false;
        }
        if (pending) {
            caught = true;
            lastPublish = now;
            if (now - firstPublish < MAX_HOLDS * holdNanos) {
                return true;
            }
            sent();   // held long enough: this notification covers the burst so far
            return false;
        }
        if (wasted >= WASTED_LIMIT && (++unheld & (PROBE_EVERY - 1)) != 0) {
            return false;   // holding kept catching nothing: notify at once, but for the probes
        }
        pending = true;
        caught = false;
        firstPublish = now;
        lastPublish = now;
        return true;
    }

    /** True while a notification is held back. */
    boolean pending() {
        return pending;
    }

    /** The ring is empty at {@code now}: true when the held notification is due (then send it and call {@link #sent}). */
    boolean due(long now) {
        return pending && (now - lastPublish >= holdNanos || now - firstPublish >= MAX_HOLDS * holdNanos);
    }

    /** The held notification was sent (it was due, or the poller is about to sleep or pause). */
    void sent() {
        if (!pending) {
            return;
        }
        pending = false;
        if (caught) {
            wasted = 0;
            unheld = 0;
        } else if (wasted < WASTED_LIMIT) {
            wasted++;
        }
    }

    /** True while holding has stopped but for its probes (tests, stats). */
    boolean probingOnly() {
        return wasted >= WASTED_LIMIT;
    }
}
