package io.github.vduse4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** A poller thread serving a real ring written by the test kit's Linux-like driver, woken by a real eventfd. */
class QueuePollerTest {

    /** Completes every chain with its writable length; can be told to throw. */
    static final class EchoHandler implements QueueHandler {
        final DescriptorChain chain = new DescriptorChain(512);
        final QueueStats stats = new QueueStats();
        volatile boolean explode;

        @Override
        public int process(Virtqueue queue, int budget) {
            int n = 0;
            while (n < budget && queue.pop(chain) == Virtqueue.POPPED) {
                if (explode) {
                    throw new IllegalStateException("boom");
                }
                queue.complete(chain.id(), (int) chain.writableLength());
                stats.popped();
                stats.completed(-1, -1, 0, 0);
                n++;
            }
            return n;
        }

        @Override
        public int inflight() {
            return 0;
        }

        @Override
        public QueueStats stats() {
            return stats;
        }

        @Override
        public void close() {}
    }

    /** Holds every chain it pops (backend work in flight) until released, then completes them all. */
    static class DeferredHandler implements QueueHandler {
        final DescriptorChain chain = new DescriptorChain(512);
        final QueueStats stats = new QueueStats();
        final int[] held = new int[128];
        final int completionFd;
        volatile int heldCount;
        volatile boolean release;
        /** A release completes what is held at the time and is then used up (a backend finishing one batch). */
        boolean releaseOnce;
        volatile long calls;

        DeferredHandler(int completionFd) {
            this.completionFd = completionFd;
        }

        @Override
        public int process(Virtqueue queue, int budget) {
            calls++;
            int n = 0;
            while (n < budget && queue.pop(chain) == Virtqueue.POPPED) {
                held[heldCount++] = chain.id();
                n++;
            }
            if (release && heldCount > 0) {
                for (int i = 0; i < heldCount; i++) {
                    queue.complete(held[i], 64);
                }
                n += heldCount;
                heldCount = 0;
                if (releaseOnce) {
                    release = false;
                }
            }
            return n;
        }

        @Override
        public int inflight() {
            return heldCount;
        }

        @Override
        public int completionFd() {
            return completionFd;
        }

        @Override
        public QueueStats stats() {
            return stats;
        }

        @Override
        public void close() {}
    }

    /**
     * A backend that is itself a queue (as the bridge's vhost-user target is): holds every chain it pops until the
     * test lets the backend finish, and signals its completion fd for that only while its signals are on (used-buffer
     * notifications of a vhost ring); {@link #quietCompletions()} turns them off, {@link #armCompletions()} on again
     * with the re-check. Volatile fields: the backend's "done, then read signalsOn" and the poller's "signalsOn, then
     * read done" cannot both miss (the Dekker pair of §2.7.7.2).
     */
    static final class QueueBackendHandler extends DeferredHandler {
        volatile boolean signalsOn = true;
        volatile int quiets;
        volatile int arms;
        volatile int signals;
        /** The backend finishes exactly while the poller switches from spinning to sleeping (inside the re-arm). */
        volatile boolean finishDuringArm;

        QueueBackendHandler(int completionFd) {
            super(completionFd);
            releaseOnce = true;
        }

        /** The backend completes everything held: a used element, and a signal only if signals are on. */
        void backendFinishes() {
            release = true;
            if (signalsOn) {
                signals++;
                EventFd.signal(completionFd);
            }
        }

        @Override
        public void quietCompletions() {
            quiets++;
            signalsOn = false;
        }

        @Override
        public boolean armCompletions() {
            arms++;
            if (finishDuringArm) {
                finishDuringArm = false;
                backendFinishes();   // signals are still off: this completion signals nothing
            }
            signalsOn = true;
            return release;
        }
    }

    VirtqueueDriver driver;
    EventFdKick kick;
    QueuePoller poller;
    final AtomicInteger interrupts = new AtomicInteger();
    final EchoHandler handler = new EchoHandler();

    void start(boolean packed, boolean eventIdx) {
        start(packed, eventIdx, handler);
    }

    void start(boolean packed, boolean eventIdx, QueueHandler h) {
        start(packed, eventIdx, h, PollerSettings.DEFAULT);
    }

    void start(boolean packed, boolean eventIdx, QueueHandler h, PollerSettings settings) {
        driver = DriverConfig.of(128).eventIdx(eventIdx).dataRegions(1, 1 << 20).build(packed);
        kick = new EventFdKick();
        poller = new QueuePoller(0, driver.newDeviceQueue(), h, kick, interrupts::incrementAndGet, settings);
        poller.start();
    }

    @AfterEach
    void tearDown() {
        if (poller != null) {
            poller.stop();
        }
        if (kick != null) {
            kick.close();
        }
        if (driver != null) {
            driver.close();
        }
    }

    /** Adds {@code n} one-buffer chains and kicks if the device asks for it, like virtqueue_kick(). */
    void addAndKick(int n) {
        for (int i = 0; i < n; i++) {
            long buf = driver.memory().allocate(64, 8);
            driver.chain().writable(buf, 64).add(i);
        }
        if (driver.kickPrepare()) {
            EventFd.signal(kick.fd());
        }
    }

    /** Reaps until {@code n} used buffers arrived or 10 s passed; returns the count. */
    int reap(int n) throws InterruptedException {
        UsedBuffer u = new UsedBuffer();
        int got = 0;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (got < n && System.nanoTime() < deadline) {
            if (driver.reap(u)) {
                assertEquals(64, u.len);
                got++;
            } else {
                Thread.sleep(1);
            }
        }
        return got;
    }

    /** Counts {@link #process} calls of the echo handler: each is one look at the ring. */
    static final class CountingHandler implements QueueHandler {
        final EchoHandler echo = new EchoHandler();
        final java.util.concurrent.atomic.AtomicLong calls = new java.util.concurrent.atomic.AtomicLong();

        @Override
        public int process(Virtqueue queue, int budget) {
            calls.incrementAndGet();
            return echo.process(queue, budget);
        }

        @Override public int inflight() { return 0; }
        @Override public QueueStats stats() { return echo.stats(); }
        @Override public void close() {}
    }

    /** Adds {@code n} requests {@code gapNanos} apart (busy-waiting), reaping as it goes; returns the number reaped. */
    int paced(int n, long gapNanos) throws InterruptedException {
        UsedBuffer u = new UsedBuffer();
        int got = 0;
        for (int i = 0; i < n; i++) {
            long due = System.nanoTime() + gapNanos;
            addAndKick(1);
            while (System.nanoTime() < due) {
                if (driver.reap(u)) {
                    got++;
                }
            }
            while (i + 1 - got >= 64) {   // keep the ring from filling up
                if (driver.reap(u)) {
                    got++;
                }
            }
        }
        return got + reap(n - got);
    }

    /**
     * COALESCE at a fast pace (a request every 5 us, periods of 20 us): the poller keeps driver notifications off and
     * finds the requests on its timer, so the driver hardly ever kicks (a kick per request is what an EVENT poller
     * that sleeps between requests costs), and every request is served.
     */
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void aCoalescingPollerServesFastRequestsWithoutKicks(boolean packed) throws InterruptedException {
        CountingHandler h = new CountingHandler();
        start(packed, true, h, new PollerSettings(PollMode.COALESCE, 0, 0, 20_000, new int[0]));
        int n = 4000;
        assertEquals(n, paced(n, 5_000));
        assertTrue(driver.kicks() < n / 4, driver.kicks() + " kicks for " + n + " requests");
        assertTrue(poller.isRunning());
    }

    /**
     * COALESCE at a slow pace (a request every 2 ms, far more than twice the period): after at most
     * {@link QueuePoller#COALESCE_EMPTY_SLEEPS} timer sleeps it sleeps on the kick, so the ring is looked at a few
     * times per request, not spun on, and every request is served.
     */
    @Test
    void aCoalescingPollerSleepsOnTheKickWhenRequestsComeSlowly() throws InterruptedException {
        CountingHandler h = new CountingHandler();
        start(false, true, h, new PollerSettings(PollMode.COALESCE, 0, 0, 20_000, new int[0]));
        int n = 200;
        assertEquals(n, paced(n, 2_000_000));
        assertTrue(h.calls.get() < n * (QueuePoller.COALESCE_EMPTY_SLEEPS + 3L) + 500,
                h.calls.get() + " looks at the ring for " + n + " requests");
        assertTrue(driver.kicks() > n / 2, "it slept on the kick: " + driver.kicks() + " kicks");
    }

    /**
     * COALESCE at a queue depth of 1 (the driver adds the next request 10 us after the last came back: faster than
     * twice the period, but each wake-up can only find one): after a few timer wake-ups that found one request each,
     * the poller sleeps on the kick, so the driver kicks for all requests but the probes (without the
     * {@link QueuePoller#COALESCE_MIN_PER_WAKE_X16} gate it sleeps on its timer with notifications off whenever the
     * request is late, and each such request waits for the timer); then a deep queue brings the timer back.
     */
    @Test
    void aCoalescingPollerAtQueueDepthOneSleepsOnTheKickAndADeepQueueBringsTheTimerBack() throws InterruptedException {
        CountingHandler h = new CountingHandler();
        start(false, true, h, new PollerSettings(PollMode.COALESCE, 0, 0, 20_000, new int[0]));
        UsedBuffer u = new UsedBuffer();
        int n = 2000;
        for (int i = 0; i < n; i++) {
            addAndKick(1);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!driver.reap(u)) {
                assertTrue(System.nanoTime() < deadline, "request " + i + " never came back");
                Thread.onSpinWait();
            }
            long due = System.nanoTime() + 10_000;
            while (System.nanoTime() < due) {
                Thread.onSpinWait();
            }
        }
        long kicksAtDepthOne = driver.kicks();
        // all but the probes (1 sleep in COALESCE_PROBE_EVERY); without the gate 49-79 % of the requests kicked here
        assertTrue(kicksAtDepthOne > n * 9 / 10, "it slept on the kick: " + kicksAtDepthOne + " kicks for " + n);
        int m = 4000;
        assertEquals(m, paced(m, 5_000));
        assertTrue(driver.kicks() - kicksAtDepthOne < m / 4,
                (driver.kicks() - kicksAtDepthOne) + " kicks for " + m + " requests 5 us apart");
        assertTrue(poller.isRunning());
    }

    @ParameterizedTest(name = "packed={0} eventIdx={1}")
    @ValueSource(strings = {"false,false", "false,true", "true,false", "true,true"})
    void servesBurstsAfterSleepingOnTheKick(String mode) throws InterruptedException {
        String[] m = mode.split(",");
        start(Boolean.parseBoolean(m[0]), Boolean.parseBoolean(m[1]));
        for (int round = 0; round < 50; round++) {
            addAndKick(1 + round % 7);
            assertEquals(1 + round % 7, reap(1 + round % 7), "round " + round);
        }
        assertTrue(driver.kicks() > 0, "the poller slept and asked for kicks");
        assertTrue(interrupts.get() > 0, "and sent used-buffer notifications");
        assertTrue(poller.isRunning());
    }

    /**
     * Backend work in flight with a completion fd: once the ring is empty the poller sleeps on kick + completion
     * fd (a handful of process() calls in 300 ms, where spinning makes hundreds of thousands), and the
     * completion's signal wakes it to publish.
     */
    @ParameterizedTest(name = "completion fd: {0}")
    @ValueSource(booleans = {true, false})
    void inFlightBackendWorkSleepsOnTheCompletionFdInsteadOfSpinning(boolean withFd) throws InterruptedException {
        int completionFd = EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC);
        try {
            DeferredHandler h = new DeferredHandler(withFd ? completionFd : -1);
            start(false, true, h);
            addAndKick(2);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (h.heldCount < 2 && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertEquals(2, h.heldCount, "both requests are in flight at the backend");
            Thread.sleep(50); // past the adaptive spin window
            long before = h.calls;
            Thread.sleep(300);
            long calls = h.calls - before;
            if (withFd) {
                assertTrue(calls < 50, "sleeps while the backend works, made " + calls + " process() calls");
            } else {
                assertTrue(calls > 1000, "without a completion fd it keeps reaping, made only " + calls);
            }
            h.release = true;
            EventFd.signal(completionFd);
            assertEquals(2, reap(2), "the completion woke the poller and was published");
            addAndKick(3); // still serving new requests afterwards
            assertEquals(3, reap(3));
        } finally {
            poller.stop();
            poller = null;
            FileIo.close(completionFd);
        }
    }

    /**
     * INFLIGHT: the poller spins on the backend's completions with its signals off, and when it gives up spinning
     * (INFLIGHT_SPIN_NANOS without progress) re-arms them. The backend finishes exactly then, while signals are still
     * off, so no signal ever comes: only the re-check after re-arming finds the completion. A poller that slept anyway
     * would hang here (reap gives up after 10 s). Then the ordinary case: the poller sleeps armed, the backend finishes
     * and signals, the signal wakes it.
     */
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void aCompletionWhileThePollerSwitchesFromSpinningToSleepingIsNotLost(boolean packed) throws InterruptedException {
        int completionFd = EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC);
        try {
            QueueBackendHandler h = new QueueBackendHandler(completionFd);
            h.finishDuringArm = true;
            start(packed, true, h, new PollerSettings(PollMode.INFLIGHT, 512_000, null));
            addAndKick(2);
            assertEquals(2, reap(2), "completed although its completion signalled nothing");
            assertEquals(0, h.signals, "the backend finished with its signals off");
            assertTrue(h.quiets >= 1, "the poller turned the backend's signals off while spinning on its work");
            assertTrue(h.arms >= 1, "and re-armed them before it would have slept");

            int armsBefore = h.arms;
            addAndKick(3);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while ((h.heldCount < 3 || h.arms == armsBefore || !h.signalsOn) && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertTrue(h.signalsOn && h.heldCount == 3, "the poller re-armed the signals to sleep on the completion fd");
            h.backendFinishes();
            assertEquals(1, h.signals);
            assertEquals(3, reap(3), "the signal woke the sleeping poller");
            h.finishDuringArm = true;   // and once more from an idle poller (it slept on the kick alone)
            addAndKick(1);
            assertEquals(1, reap(1));
            assertTrue(poller.isRunning());
        } finally {
            poller.stop();
            poller = null;
            FileIo.close(completionFd);
        }
    }

    /** BUSY: the backend's signals go off as soon as work is in flight and are never re-armed (nothing sleeps). */
    @Test
    void busyPollingSilencesTheBackendsCompletionSignals() throws InterruptedException {
        int completionFd = EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC);
        try {
            QueueBackendHandler h = new QueueBackendHandler(completionFd);
            start(false, true, h, new PollerSettings(PollMode.BUSY, 0, null));
            addAndKick(2);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while ((h.heldCount < 2 || h.quiets == 0) && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertEquals(1, h.quiets);
            h.backendFinishes();
            assertEquals(2, reap(2));
            assertEquals(0, h.signals, "polled, not signalled");
            assertEquals(0, h.arms, "a busy poller never re-arms");
        } finally {
            poller.stop();
            poller = null;
            FileIo.close(completionFd);
        }
    }

    /** Waits until at least {@code n} driver notifications were sent, or {@code seconds} passed. */
    void awaitInterrupts(int n, long seconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (interrupts.get() < n && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
    }

    /** Settings with a notification hold ({@link NotificationHold}) of {@code holdNanos}. */
    static PollerSettings holding(PollMode mode, long maxSpinNanos, long holdNanos) {
        return new PollerSettings(mode, maxSpinNanos, 0, PollerSettings.COALESCE_NANOS, new int[0], holdNanos);
    }

    /**
     * Interrupt moderation: two requests 1 ms apart, with a hold of 1 s, get one interrupt between them (every pass
     * would otherwise notify: the driver reaps each entry and asks for the next, by flag or, with EVENT_IDX, by
     * used_event), and both are used at once: the driver can see used entries before their notification. A request
     * after the hold gets a notification of its own: the owed one moved the ring's suppression check past what it
     * covered (§2.7.7.2, §2.8.10), so the next check asks the driver's used_event / off_wrap afresh.
     */
    @ParameterizedTest(name = "packed={0} eventIdx={1}")
    @ValueSource(strings = {"false,false", "false,true", "true,false", "true,true"})
    void aHeldNotificationCoversTheRequestsThatCameWhileItWasHeld(String mode) throws InterruptedException {
        String[] m = mode.split(",");
        start(Boolean.parseBoolean(m[0]), Boolean.parseBoolean(m[1]), handler,
                holding(PollMode.BUSY, 0, 1_000_000_000L));
        addAndKick(1);
        assertEquals(1, reap(1));
        Thread.sleep(1);
        addAndKick(1);
        assertEquals(1, reap(1));
        assertEquals(0, interrupts.get(), "held while the driver went on submitting");
        awaitInterrupts(1, 10);
        Thread.sleep(300);
        assertEquals(1, interrupts.get(), "one interrupt once the ring stayed empty for the hold");
        addAndKick(1);
        assertEquals(1, reap(1));
        awaitInterrupts(2, 10);
        assertEquals(2, interrupts.get(), "the next request's own notification");
    }

    /**
     * A hold started by the driver's burst ends on time even while every pass completes something (the ring never
     * looks empty, so only the completions-only check in the publish sees it due): with a 20 ms hold, 60 completions
     * ~1 ms apart get their first notification after ~20 of them, not after the last.
     */
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void aHoldEndsOnTimeWhileCompletionsAloneKeepThePollerBusy(boolean packed) throws InterruptedException {
        TrickleHandler slow = new TrickleHandler(1, 1_000_000, interrupts::get);   // one per pass, 1 ms per pass
        slow.released = Integer.MAX_VALUE;
        start(packed, false, slow, holding(PollMode.BUSY, 0, 20_000_000));
        addAndKick(60);
        assertEquals(60, reap(60));
        int at = slow.completedAtFirstNotification;
        assertTrue(at > 0 && at < 50, "first notification after " + at + " of 60 completions");
    }

    /** Completes each chain one pass after the pass that popped it (an asynchronous backend). */
    static final class NextPassHandler implements QueueHandler {
        final DescriptorChain chain = new DescriptorChain(512);
        final QueueStats stats = new QueueStats();
        final int[] held = new int[128];
        int heldCount;

        @Override
        public int process(Virtqueue queue, int budget) {
            int n = heldCount;
            for (int i = 0; i < heldCount; i++) {
                queue.complete(held[i], 64);
            }
            heldCount = 0;
            while (n < budget && queue.pop(chain) == Virtqueue.POPPED) {
                held[heldCount++] = chain.id();
                n++;
            }
            return n;
        }

        @Override public int inflight() { return heldCount; }
        @Override public QueueStats stats() { return stats; }
        @Override public void close() {}
    }

    /**
     * Queue depth 1 on an asynchronous backend: the pass that pops publishes nothing and must not start a hold that
     * the completion pass then "joins". After {@link NotificationHold#WASTED_LIMIT} holds that caught nothing, the
     * completions are notified at once (a 300 ms hold would otherwise delay every one of them).
     */
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void atQueueDepthOneOnAnAsynchronousBackendHoldingStops(boolean packed) throws InterruptedException {
        start(packed, false, new NextPassHandler(), holding(PollMode.BUSY, 0, 300_000_000));
        for (int i = 0; i < NotificationHold.WASTED_LIMIT + 4; i++) {
            long t0 = System.nanoTime();
            addAndKick(1);
            assertEquals(1, reap(1));
            awaitInterrupts(i + 1, 5);
            long waitedMillis = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(i + 1, interrupts.get(), "request " + i + " notified");
            if (i >= NotificationHold.WASTED_LIMIT) {
                assertTrue(waitedMillis < 250, "request " + i + " still held: " + waitedMillis + " ms");
            }
        }
    }

    /**
     * Completes the chains it popped in order, as far as the test has released them and at most {@code perPass} per
     * pass; a pass that pops nothing first takes {@code passNanos} (a slow asynchronous backend). Records how many
     * it had completed when {@code notified} first said a notification was sent.
     */
    static final class TrickleHandler implements QueueHandler {
        final DescriptorChain chain = new DescriptorChain(512);
        final QueueStats stats = new QueueStats();
        final int[] popped = new int[128];
        final int perPass;
        final long passNanos;
        final java.util.function.IntSupplier notified;
        int poppedCount;
        volatile int completedCount;
        volatile int released;
        /** How many chains were completed when the first notification had been sent (-1: none yet). */
        volatile int completedAtFirstNotification = -1;

        TrickleHandler() {
            this(Integer.MAX_VALUE, 0, () -> 0);
        }

        TrickleHandler(int perPass, long passNanos, java.util.function.IntSupplier notified) {
            this.perPass = perPass;
            this.passNanos = passNanos;
            this.notified = notified;
        }

        @Override
        public int process(Virtqueue queue, int budget) {
            if (completedAtFirstNotification < 0 && notified.getAsInt() > 0) {
                completedAtFirstNotification = completedCount;
            }
            int n = 0;
            while (n < budget && queue.pop(chain) == Virtqueue.POPPED) {
                popped[poppedCount++] = chain.id();
                n++;
            }
            if (n == 0 && passNanos > 0 && completedCount < Math.min(released, poppedCount)) {
                java.util.concurrent.locks.LockSupport.parkNanos(passNanos);
            }
            for (int k = 0; k < perPass && completedCount < released && completedCount < poppedCount; k++) {
                queue.complete(popped[completedCount], 64);
                completedCount++;
                n++;
            }
            return n;
        }

        @Override public int inflight() { return poppedCount - completedCount; }
        @Override public QueueStats stats() { return stats; }
        @Override public void close() {}
    }

    /**
     * A hold starts and goes on only while the driver submits: completions trickling in from an asynchronous backend,
     * for a driver that waits on them, are notified at once under a 10 s hold (a hold started by a completion would
     * keep them, and one "extended" by each would keep them longer).
     */
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void completionsAloneNeitherStartNorExtendAHold(boolean packed) throws InterruptedException {
        TrickleHandler trickle = new TrickleHandler();
        start(packed, false, trickle, holding(PollMode.BUSY, 0, 10_000_000_000L));
        addAndKick(3);
        Thread.sleep(50);   // all three popped, none completed
        try {
            for (int i = 1; i <= 3; i++) {
                trickle.released = i;
                assertEquals(1, reap(1));
                awaitInterrupts(i, 5);
                assertEquals(i, interrupts.get(), "completion " + i + " notified at once, not held");
            }
        } finally {
            trickle.released = Integer.MAX_VALUE;   // whatever failed, the poller's stop can drain
        }
    }

    /** A pause sends a held notification before it drains. */
    @Test
    void aPauseSendsAHeldNotification() throws InterruptedException {
        start(false, false, handler, holding(PollMode.BUSY, 0, 10_000_000_000L));
        addAndKick(1);
        assertEquals(1, reap(1));
        assertEquals(0, interrupts.get(), "held");
        poller.pause();
        assertEquals(1, interrupts.get(), "sent by the pause");
        poller.resume();
    }

    /**
     * Only a notification the driver wants is held: completions published while it had them off start no hold, so
     * after it turns them back on (and reaps again, as Linux's virtqueue_enable_cb asks) nothing is sent for them; the
     * next completion is notified. (A hold started regardless would have sent one for the old completions once due.)
     */
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void completionsTheDriverWantedNoNotificationForStartNoHold(boolean packed) throws InterruptedException {
        start(packed, false, handler, holding(PollMode.BUSY, 0, 100_000_000));
        driver.disableCallbacks();
        addAndKick(2);
        assertEquals(2, reap(2));
        Thread.sleep(20);
        assertTrue(driver.enableCallbacks(), "nothing left to reap");
        Thread.sleep(300);
        assertEquals(0, interrupts.get(), "no notification for completions published with notifications off");
        addAndKick(1);
        assertEquals(1, reap(1));
        awaitInterrupts(1, 5);
        assertEquals(1, interrupts.get(), "the next completion is notified");
    }

    /** Nothing stays held over a sleep: an adaptive poller that does not spin notifies before it sleeps on the kick. */
    @ParameterizedTest(name = "packed={0}")
    @ValueSource(booleans = {false, true})
    void aHeldNotificationIsSentBeforeThePollerSleeps(boolean packed) throws InterruptedException {
        start(packed, false, handler, holding(PollMode.ADAPTIVE, 0, 10_000_000_000L));
        addAndKick(1);
        assertEquals(1, reap(1));
        awaitInterrupts(1, 5);
        assertEquals(1, interrupts.get(), "notified before sleeping, not after the 10 s hold");
    }

    @Test
    void pauseHoldsNewRequestsUntilResume() throws InterruptedException {
        start(false, true);
        addAndKick(3);
        assertEquals(3, reap(3));
        poller.pause();
        addAndKick(4);
        Thread.sleep(200);
        assertEquals(0, reap0(), "nothing is served while paused");
        poller.resume();
        assertEquals(4, reap(4));
    }

    int reap0() {
        UsedBuffer u = new UsedBuffer();
        int got = 0;
        while (driver.reap(u)) {
            got++;
        }
        return got;
    }

    @Test
    void anExceptionStopsOnlyThisQueueAndIsRecorded() throws InterruptedException {
        start(false, false);
        handler.explode = true;
        addAndKick(1);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        // the poller records the failure before its thread ends: wait for both
        while ((poller.failure() == null || poller.isRunning()) && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertNotNull(poller.failure());
        assertFalse(poller.isRunning());
        poller.stop(); // idempotent and does not hang on a dead thread
        poller.pause();
    }
}
