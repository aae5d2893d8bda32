package io.github.vduse4j.engine;

/**
 * Interrupt moderation for a queue poller: once a pass has published used entries the driver wants to be notified
 * of, hold that notification back while the driver goes on submitting, so that one interrupt covers the completions
 * of a whole burst instead of one pass each. The hold adapts to the driver's pace. Poller thread only; no allocation.
 *
 * <p>Why (issue 18, item 4): in the 2-vCPU TCG guest a closed-loop fio at QD32 submits its requests one by one, and a
 * polling back-end catches each as it comes, so it notified every 2-3 requests; every notification costs the guest an
 * interrupt injection (a kworker), the virtio-blk interrupt and the block layer's completion, on the same two vCPUs
 * that run fio. {@code --poll event} sleeps between passes and so found ~7 requests per notification, and beat the
 * default's IOPS there (docs/benchmarks.md "Interrupt moderation").
 *
 * <p>The rule: the poller asks the ring first (virtio 1.2 §2.7.7, §2.8.10); only a notification the driver wants is
 * held, so a driver that suppressed them (a polling frontend such as {@code vduse4j bench}) costs the hold nothing.
 * The held notification is owed: it is sent, whatever the ring says then, once no new request has come for the hold
 * (the driver's burst is over), after {@link #MAX_HOLDS} holds in all (a driver that never pauses still gets its
 * completions), and before the poller sleeps or pauses (so an adaptive poller's spin window bounds it; a busy one,
 * or one spinning on in-flight work, only the 4 x cap). A hold starts at a pass that popped new requests and made new
 * used entries visible, and goes on only while the driver submits: completions alone (an asynchronous backend's, for
 * a driver that waits on them) neither start a hold nor extend one.
 *
 * <p>The hold's length adapts: {@link #GAP_FACTOR} times the mean gap between the submissions that joined holds (a
 * moving average, weight 1/2^{@link #MEAN_SHIFT}), between {@link #MIN_NANOS} and the configured maximum, starting
 * at the maximum. Where the driver's requests come a few µs apart (real hardware), the burst's end is seen a few µs
 * after its last request, and its completions wait about that; where they come tens of µs apart (the TCG guest), the
 * hold grows to the maximum. (Only gaps shorter than the hold can join it: for exponential gaps, 3 x the truncated
 * mean settles at about twice the true mean; a smaller factor would shrink the hold to nothing.)
 *
 * <p>A hold that caught nothing (no submission joined it: a driver at queue depth 1, or one that waits for its
 * completions before it submits again, cannot submit before it hears of them) only delayed those completions. The
 * poller counts them, less the holds that caught something (never below 0: a hold that catches takes one off, it does
 * not clear the count, so holding also stops where fewer than about half of the holds catch anything); at
 * {@link #WASTED_LIMIT} it notifies at once, but for one wanted notification in {@link #PROBE_EVERY} that is still
 * held, for the whole maximum, as a probe; a probe that catches a submission brings holding back, and the gaps it
 * measured set the length again. So at QD1 the cost is one hold per {@link #PROBE_EVERY} requests.
 *
 * <p>Deferring is allowed by the ring's rules: the device may notify later than it could, and the driver, woken,
 * reads the used index as it is then, which covers everything published during the hold (virtio 1.2 §2.7.7,
 * §2.7.14; §2.8.22 for the packed ring).
 */
final class NotificationHold {
    /**
     * Holds that caught nothing, less those that caught something (never below 0), at which the poller stops holding
     * but for its probes.
     */
    static final int WASTED_LIMIT = 4;
    /** While holds keep catching nothing, one wanted notification in this many (a power of 2) is held as a probe. */
    static final int PROBE_EVERY = 256;
    /** A hold lasts at most this many times its length from its first publish. */
    static final int MAX_HOLDS = 4;
    /** The hold's length, in mean gaps between the submissions that joined holds. */
    static final int GAP_FACTOR = 3;
    /** The shortest adapted hold (a clock read and a pass cost about a tenth of it). */
    static final long MIN_NANOS = 1_000;
    /** The mean gap's moving-average weight: 1/2^MEAN_SHIFT per joining submission. */
    static final int MEAN_SHIFT = 3;

    private final long maxNanos;
    /** Moving average of the gaps between the submissions that joined a hold (ns). */
    private long meanGapNanos;
    private boolean pending;
    /** The current hold's length (ns). */
    private long length;
    private long firstPublish;
    /** The hold's first publish, or the last submission that joined it. */
    private long lastPublish;
    /** A submission joined the current hold. */
    private boolean caught;
    /** Holds that caught nothing less holds that caught something, from 0 to WASTED_LIMIT. */
    private int wasted;
    /** Wanted notifications not held since holding stopped (wraps; its low bits pick the probes). */
    private int unheld;

    /** A hold adapting up to {@code maxNanos} of waiting for the next request (0: never hold, notify after every pass). */
    NotificationHold(long maxNanos) {
        if (maxNanos < 0) {
            throw new IllegalArgumentException("notification hold must not be negative");
        }
        this.maxNanos = maxNanos;
        this.meanGapNanos = maxNanos / GAP_FACTOR + 1;
    }

    /** True if this hold ever holds (the poller's fast path). */
    boolean enabled() {
        return maxNanos > 0;
    }

    /** The length the next hold will have (probes aside): the adapted hold (tests, stats). */
    long holdNanos() {
        return Math.max(Math.min(MIN_NANOS, maxNanos), Math.min(maxNanos, GAP_FACTOR * meanGapNanos));
    }

    /**
     * With nothing held, a pass popped requests and published used entries at {@code now}, and the ring says the
     * driver wants a notification for them: true to hold it (owed; the poller then calls {@link #due} while the ring
     * is empty), false to send it now.
     */
    boolean start(long now) {
        if (maxNanos == 0) {
            return false;
        }
        boolean probe = false;
        if (wasted >= WASTED_LIMIT) {
            if ((++unheld & (PROBE_EVERY - 1)) != 0) {
                return false;   // holding kept catching nothing: notify at once, but for the probes
            }
            probe = true;
        }
        pending = true;
        caught = false;
        length = probe ? maxNanos : holdNanos();
        firstPublish = now;
        lastPublish = now;
        return true;
    }

    /**
     * While a notification is held, a pass popped more of the driver's requests at {@code now} (it goes on
     * submitting): true to go on holding, false when the owed notification is to be sent now (it covers what this pass
     * published too; the hold has ended).
     */
    boolean submitted(long now) {
        long gap = now - lastPublish;
        if (gap >= length) {
            sent();   // no request came for the whole hold (the poller looked late): due, and nothing joined
            return false;
        }
        caught = true;
        meanGapNanos += (Math.max(0, gap) - meanGapNanos) >> MEAN_SHIFT;
        lastPublish = now;
        if (now - firstPublish < MAX_HOLDS * length) {
            return true;
        }
        sent();   // held long enough: this notification covers the burst so far
        return false;
    }

    /** True while a notification is held back. */
    boolean pending() {
        return pending;
    }

    /** The ring is empty at {@code now}: true when the held notification is due (then send it and call {@link #sent}). */
    boolean due(long now) {
        return pending && (now - lastPublish >= length || now - firstPublish >= MAX_HOLDS * length);
    }

    /** The held notification was sent (it was due, or the poller is about to sleep or pause). */
    void sent() {
        if (!pending) {
            return;
        }
        pending = false;
        if (caught) {
            // one off, not back to 0: a driver whose holds catch in 1 of 4 (each wasted one delays its completions
            // for nothing) still stops holding; one whose holds catch in most goes on
            if (wasted > 0) {
                wasted--;
            }
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
