package io.github.vduse4j.engine;

import io.github.vduse4j.bindings.Affinity;
import io.github.vduse4j.bindings.TimerSlack;
import io.github.vduse4j.ring.Virtqueue;
import java.time.Duration;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * The thread that serves one virtqueue: pops, executes and completes requests run-to-completion, publishes
 * used entries at least once per batch (the handler may publish some sooner: VirtioBlkQueueHandler does every 8),
 * notifies the driver only when event suppression asks for it, once per batch (or, with a {@link NotificationHold},
 * once the driver has stopped submitting for the hold: one interrupt per burst), and sleeps on the kick source when
 * the ring is empty.
 *
 * <p>Idle strategy ({@link PollMode}): notifications stay disabled while there is work and, with ADAPTIVE, for a
 * spin window after the ring went empty (the ring is polled, as QEMU's adaptive AioContext polling does, so a
 * driver that submits again within that window needs neither a kick nor a thread wake-up; {@link SpinWindow} adapts
 * it); BUSY never sleeps. Before sleeping the poller re-enables notifications and re-checks the ring, so a
 * buffer added in between is never missed (virtio 1.2 §2.7.10: the driver reads the flag / avail_event only
 * after publishing its index), then sleeps on the kick source. Backend work in flight (io_uring) keeps the same
 * strategy when the handler offers a {@link QueueHandler#completionFd()}: the poller sleeps on the kick and that
 * fd together, so a slow device costs no CPU; without one it spins until the backend is done. INFLIGHT spins
 * instead while the backend has work in flight and completes it ({@link #INFLIGHT_SPIN_NANOS} without progress ends
 * that), with the backend's completion signals suppressed ({@link QueueHandler#quietCompletions()}); before it then
 * sleeps on the kick and the completion fd it re-arms them and re-checks ({@link QueueHandler#armCompletions()}), the
 * same enable-then-look-again as for the kick, so a completion that came while signals were off is not lost.
 *
 * <p>The control thread pauses the poller (for IOTLB invalidation or state queries), resumes or stops it.
 * A paused poller has drained its in-flight requests. Nothing thrown on the datapath escapes: a failure
 * stops this queue, is recorded, and is reported by {@link #failure()}.
 */
public final class QueuePoller implements Runnable {
    /** Chains popped per batch before the used index is published. */
    public static final int BATCH = 64;
    /**
     * {@link PollMode#INFLIGHT}: how long in-flight work may go without completing anything before the poller stops
     * spinning on it and sleeps on the kick and the completion fd (a stalled or restarting target, a slow disk).
     */
    public static final long INFLIGHT_SPIN_NANOS = 10_000_000;
    /**
     * {@link PollMode#COALESCE}: timer sleeps in a row that may find the ring still empty before the poller sleeps on
     * the kick instead (each empty one costs a wake-up that served nothing).
     */
    public static final int COALESCE_EMPTY_SLEEPS = 2;
    /**
     * {@link PollMode#COALESCE}: the fewest requests (x16, fixed point) that the wake-ups of the poller must find on
     * average for it to go on sleeping on its timer. A wake-up that finds one request served nothing a kick would not
     * have; at a queue depth of 1 every wake-up finds one, and the timer only caps the rate at one request per period
     * (issue 18: an open-loop QD1 reached 40 % and 22 % of the asked rate). Below this, the poller sleeps on the kick,
     * but for one timer sleep in {@link #COALESCE_PROBE_EVERY}, which finds out whether the queue has got deeper. (What
     * a kick finds says nothing here: the kick comes with the first request, and a quick wake-up finds that one.)
     */
    static final int COALESCE_MIN_PER_WAKE_X16 = 24;
    /** {@link PollMode#COALESCE}: while too few requests come per wake-up, every this many sleeps one is on the timer. */
    static final int COALESCE_PROBE_EVERY = 16;
    /** {@link PollMode#COALESCE}: the poller thread's timer slack, so that a sleep of a few µs lasts about that. */
    static final long COALESCE_TIMER_SLACK_NANOS = 1_000;

    private static final int RUN = 0;
    private static final int PAUSE = 1;
    private static final int STOP = 2;

    private final int index;
    private final Virtqueue queue;
    private final QueueHandler handler;
    private final KickSource kick;
    private final DriverNotifier notifier;
    private final PollerSettings settings;
    private final Thread thread;
    /** The adaptive spin window of idle periods (poller thread only). */
    private final SpinWindow window;
    /** Interrupt moderation: notifications held back while the driver goes on submitting (poller thread only). */
    private final NotificationHold hold;
    /** The used and avail indexes (and wrap counters) at the last pass that {@link #hold} saw (poller thread only). */
    private int heldUsedIndex;
    private boolean heldUsedWrap;
    private int heldAvailIndex;
    private boolean heldAvailWrap;

    private volatile int command = RUN;
    private volatile boolean paused;
    private volatile boolean exited;
    private volatile Throwable failure;

    /** A poller with {@link PollerSettings#DEFAULT}. */
    public QueuePoller(int index, Virtqueue queue, QueueHandler handler, KickSource kick, DriverNotifier notifier) {
        this(index, queue, handler, kick, notifier, PollerSettings.DEFAULT);
    }

    public QueuePoller(int index, Virtqueue queue, QueueHandler handler, KickSource kick, DriverNotifier notifier,
            PollerSettings settings) {
        this.index = index;
        this.queue = queue;
        this.handler = handler;
        this.kick = kick;
        this.notifier = notifier;
        this.settings = settings;
        // COALESCE: no spin worth the name (at most SpinWindow.MIN_NANOS); the window's mean idle period decides
        // between the timer and the kick
        this.window = new SpinWindow(settings.mode() == PollMode.ADAPTIVE || settings.mode() == PollMode.INFLIGHT
                ? settings.maxSpinNanos() : settings.mode() == PollMode.COALESCE ? SpinWindow.MIN_NANOS : 0,
                settings.spinBreakEvenNanos());
        this.hold = new NotificationHold(settings.mode() == PollMode.EVENT ? 0 : settings.notifyHoldNanos());
        this.thread = Thread.ofPlatform().name("vduse4j-queue-" + index).daemon(true).unstarted(this);
    }

    public int index() {
        return index;
    }

    public Virtqueue queue() {
        return queue;
    }

    public QueueHandler handler() {
        return handler;
    }

    public void start() {
        thread.start();
    }

    @Override
    public void run() {
        try {
            int cpu = settings.cpuFor(index);
            if (cpu >= 0) {
                Affinity.setCurrentThread(cpu); // from the thread itself: platform threads only (FFM-RULES 13)
            }
            if (settings.mode() == PollMode.COALESCE) {
                TimerSlack.setCurrentThreadNanos(COALESCE_TIMER_SLACK_NANOS);
            }
            serve();
        } catch (Throwable t) {
            failure = t;
            try {
                notifyHeld();   // completions already used must not stay unnotified
            } catch (Throwable ignored) {
                // the queue is failing anyway; the failure above is what is reported
            }
            System.err.println("vduse4j: queue " + index + " stopped after an internal error: " + t);
        } finally {
            exited = true;
            synchronized (this) {
                notifyAll();
            }
        }
    }

    private void serve() throws InterruptedException {
        Virtqueue q = queue;
        QueueHandler h = handler;
        PollMode mode = settings.mode();
        boolean busy = mode == PollMode.BUSY;
        boolean spinInflight = mode == PollMode.INFLIGHT;
        boolean coalesce = mode == PollMode.COALESCE;
        long coalesceNanos = settings.coalesceNanos();
        int emptySleeps = 0;    // COALESCE: timer sleeps in this idle period that found nothing
        // COALESCE: requests found by the first pass after a timer sleep that found some (x16, a moving average over
        // about 4 wake-ups); it starts where coalescing pays, and a queue depth of 1 brings it down to 16
        int perWakeX16 = 2 * COALESCE_MIN_PER_WAKE_X16;
        int sleepsSinceProbe = 0;   // COALESCE: times the kick was chosen over the timer since the last timer sleep
        boolean woke = false;   // the last thing done was a timer sleep
        boolean holding = hold.enabled();
        heldUsedIndex = q.lastUsedIndex();
        heldUsedWrap = q.lastUsedWrapCounter();
        heldAvailIndex = q.lastAvailIndex();
        heldAvailWrap = q.lastAvailWrapCounter();
        q.disableNotifications();
        long idleSince = 0;     // when the ring went empty with nothing to wait for (0: not idle)
        boolean slept = false;  // whether this idle period ended in a sleep
        long stalledSince = 0;  // INFLIGHT: when the in-flight work last stopped making progress (0: it is)
        boolean quiet = false;  // the handler's completion signals are suppressed (quietCompletions)
        int servedInBusy = 0;   // requests served since the ring last went empty (SpinWindow.busyEnded)
        while (true) {
            int cmd = command;
            if (cmd != RUN) {
                drain();
                if (cmd == STOP) {
                    return;
                }
                parkWhilePaused();
                continue;
            }
            int served = h.process(q, BATCH);
            if (served > 0) {
                servedInBusy += served;
                if (woke) {
                    perWakeX16 += (served * 16 - perWakeX16) >> 2;
                    woke = false;
                }
                publishHeld();
                if (idleSince != 0) {
                    window.idleEnded(System.nanoTime() - idleSince, slept);
                    idleSince = 0;
                }
                slept = false;
                stalledSince = 0;
                emptySleeps = 0;
                continue;
            }
            long now = 0;   // one clock read per empty pass, shared by the hold and the spin window
            if (holding && hold.pending() && hold.due(now = System.nanoTime())) {
                notifyHeld();   // the driver's burst is over: one notification for all of it
            }
            if (q.isBroken()) {
                notifyHeld();
                parkUntilCommand(); // NEEDS_RESET: wait for the transport to reset or stop this queue
                continue;
            }
            boolean backendBusy = h.inflight() > 0;
            int completionFd = backendBusy ? h.completionFd() : -1;
            if ((busy || spinInflight) && completionFd >= 0 && !quiet) {
                h.quietCompletions();   // we poll its completions ourselves: no signal (and no wake-up) per completion
                quiet = true;
            }
            if (busy || (backendBusy && completionFd < 0)) {
                Thread.onSpinWait(); // busy polling, or backend work outstanding it cannot wake us for: keep reaping
                continue;
            }
            if (now == 0) {
                now = System.nanoTime();
            }
            if (spinInflight && backendBusy) {
                // Work in flight at the backend: spin on its completions and the ring while it makes progress.
                if (stalledSince == 0) {
                    stalledSince = now;
                }
                if (now - stalledSince < INFLIGHT_SPIN_NANOS) {
                    Thread.onSpinWait();
                    continue;
                }
            } else {
                if (idleSince == 0) {
                    idleSince = now;
                    window.busyEnded(servedInBusy);
                    servedInBusy = 0;
                }
                if (!slept && now - idleSince < window.nanos()) {
                    Thread.onSpinWait(); // poll the empty ring a little longer before sleeping
                    continue;
                }
                if (coalesce && emptySleeps < COALESCE_EMPTY_SLEEPS && window.meanIdle() < 2 * coalesceNanos
                        && (perWakeX16 >= COALESCE_MIN_PER_WAKE_X16 || sleepsSinceProbe >= COALESCE_PROBE_EVERY)) {
                    // Requests come about this fast, several per wake-up: sleep one period with notifications still
                    // off (§2.7.10: the driver need not kick), then look again; one wake-up for all that came meanwhile.
                    emptySleeps++;
                    slept = true;
                    woke = true;
                    sleepsSinceProbe = 0;
                    notifyHeld();
                    LockSupport.parkNanos(coalesceNanos);
                    continue;
                }
                if (coalesce && sleepsSinceProbe < COALESCE_PROBE_EVERY) {
                    sleepsSinceProbe++;
                }
            }
            notifyHeld();   // nothing held over a sleep: the driver may be waiting for these completions
            // §2.7.10 / §2.8.21: enable notifications, then re-check for buffers added meanwhile.
            if (q.enableNotifications()) {
                q.disableNotifications();
                continue;
            }
            if (quiet && backendBusy) {
                // §2.7.7.2 on the backend's side: its completion signals back on, then the re-check. A completion that
                // came while they were off signalled nothing: sleeping now would wait for it forever.
                quiet = false;
                if (h.armCompletions()) {
                    q.disableNotifications();
                    continue;
                }
            }
            // (nothing in flight: completion signals may stay off; none can come, and the next spin wants them off)
            if (idleSince != 0) {
                slept = true;
            }
            woke = false;   // what a kick finds is not counted (COALESCE_MIN_PER_WAKE_X16)
            kick.await(completionFd); // a kick, or a completion of the backend's in-flight work
            h.stats().kick();
            q.disableNotifications();
            stalledSince = 0;
        }
    }

    private void publish() {
        queue.publish();
        notifyIfNeeded();
    }

    /** Publishes, then notifies now or holds the notification back ({@link NotificationHold}). */
    private void publishHeld() {
        queue.publish();
        if (!hold.enabled()) {
            notifyIfNeeded();
            return;
        }
        // A hold starts at a pass that popped new requests and made new used entries visible (a pass that only
        // popped, an asynchronous backend's requests still in flight, has nothing to notify), and goes on while the
        // driver goes on submitting: completions alone (an asynchronous backend's, for a driver waiting on them)
        // neither start nor extend one, or a driver at queue depth 4 on a slow disk would wait a hold for every
        // completion, its resubmissions "catching" the holds of later completions.
        int used = queue.lastUsedIndex();
        boolean usedWrap = queue.lastUsedWrapCounter();
        int avail = queue.lastAvailIndex();
        boolean availWrap = queue.lastAvailWrapCounter();
        boolean published = used != heldUsedIndex || usedWrap != heldUsedWrap;
        boolean submitted = avail != heldAvailIndex || availWrap != heldAvailWrap;
        heldUsedIndex = used;
        heldUsedWrap = usedWrap;
        heldAvailIndex = avail;
        heldAvailWrap = availWrap;
        if (hold.pending()) {
            if (submitted) {
                if (!hold.submitted(System.nanoTime())) {
                    sendOwed();   // held long enough (or already due): one notification for the whole burst
                }
            } else if (published && hold.due(System.nanoTime())) {
                notifyHeld();   // completions only, pass after pass: the ring never looked empty, but the hold is over
            }
            return;
        }
        // §2.7.7 / §2.8.10: only a notification the driver asked for is held (and then owed): a driver that
        // suppressed them costs the hold nothing, not even a clock read.
        if (published && queue.needsNotification() && !(submitted && hold.start(System.nanoTime()))) {
            notifyDriver();
        }
    }

    /** Sends a held notification, if one is held. */
    private void notifyHeld() {
        if (hold.pending()) {
            hold.sent();
            sendOwed();
        }
    }

    /** Sends the notification a hold owes (the hold has ended). */
    private void sendOwed() {
        // Advances the ring's suppression check past what the hold covered; its answer does not matter: the
        // notification is owed since the hold's first publish, and the driver reads the used index when woken.
        queue.needsNotification();
        notifyDriver();
    }

    private void notifyDriver() {
        handler.stats().notification();
        notifier.notifyDriver();
    }

    // §2.7.7 / §2.8.10: the suppression check covers everything published since the previous check.
    private void notifyIfNeeded() {
        if (queue.needsNotification()) {
            notifyDriver();
        }
    }

    /**
     * Completes everything in flight, popping nothing new. Calls the handler at least once, so that state it keeps
     * for the next pass (VirtioBlkQueueHandler's carried clock read) ends before the pause.
     */
    private void drain() {
        notifyHeld();
        do {
            if (handler.process(queue, 0) > 0) {
                publish();
            } else if (handler.inflight() > 0) {
                Thread.onSpinWait();
            }
        } while (handler.inflight() > 0);
    }

    private synchronized void parkWhilePaused() throws InterruptedException {
        paused = true;
        notifyAll();
        while (command == PAUSE) {
            wait();
        }
        paused = false;
    }

    private synchronized void parkUntilCommand() throws InterruptedException {
        while (command == RUN && !Thread.currentThread().isInterrupted()) {
            wait(100);
        }
    }

    /** Stops taking requests, drains in-flight ones and waits (control thread). */
    public void pause() {
        if (!thread.isAlive()) {
            return;
        }
        command = PAUSE;
        kick.wake();
        synchronized (this) {
            notifyAll();
            awaitCondition(() -> paused || exited);
        }
    }

    /** Undoes {@link #pause()}. */
    public void resume() {
        synchronized (this) {
            command = RUN;
            notifyAll();
        }
    }

    /** Drains in-flight requests and ends the thread; idempotent. */
    public void stop() {
        synchronized (this) {
            command = STOP;
            notifyAll();
        }
        kick.wake();
        try {
            while (thread.isAlive() && !thread.join(Duration.ofSeconds(1))) {
                kick.wake();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void awaitCondition(BooleanSupplier done) {
        try {
            while (!done.getAsBoolean()) {
                wait(100);
                if (!done.getAsBoolean()) {
                    kick.wake();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The error that stopped this queue, or null. */
    public Throwable failure() {
        return failure;
    }

    public boolean isRunning() {
        return thread.isAlive() && command == RUN;
    }
}
