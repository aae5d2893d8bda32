package io.github.vduse4j.blockdev.bridge;

import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.engine.frontend.VhostFrontend;
import io.github.vduse4j.engine.frontend.VhostUserFrontend;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Watches the bridge's connection to its vhost-user target and rides out a target restart (qemu-storage-daemon or
 * SPDK killed and started again): when the socket hangs up it pauses every relay (each returns from its poller's
 * {@code process} and leaves the target ring alone), reconnects ({@link VhostFrontend#reconnect()}: the connector's
 * patience decides how long a restart may take), resubmits every outstanding request and lets the relays go on.
 * The device side never notices, apart from the time it took. One thread.
 */
public final class TargetWatch implements AutoCloseable {
    private final VhostFrontend target;
    private final Supplier<List<RelayQueueHandler>> relays;
    private final Consumer<String> log;
    private final int wakeFd = EventFd.create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK);
    private final Thread thread;
    private volatile boolean closing;
    private volatile int reconnects;
    private volatile String failure;

    /**
     * Starts watching {@code target} (a vhost-user transport); {@code relays} gives the relays currently serving
     * (they change when the driver resets the device).
     */
    public TargetWatch(VhostFrontend target, Supplier<List<RelayQueueHandler>> relays, Consumer<String> log) {
        this.target = target;
        this.relays = relays;
        this.log = log;
        this.thread = Thread.ofPlatform().name("vduse4j-target-watch").daemon(true).start(this::run);
    }

    /** Reconnections done. */
    public int reconnects() {
        return reconnects;
    }

    /** Why the last reconnection failed, or null. */
    public String failure() {
        return failure;
    }

    private void run() {
        Poll poll = new Poll(2);
        while (!closing) {
            VhostUserFrontend transport = (VhostUserFrontend) target.transport();
            if (!transport.closed()) {   // closed: the last reconnection failed, try again at once
                poll.clear();
                poll.add(transport.socket(), Poll.POLLRDHUP);
                poll.add(wakeFd, Poll.POLLIN);
                poll.poll(-1);
                if (closing) {
                    return;
                }
                if ((poll.revents(0) & (Poll.POLLRDHUP | Poll.POLLHUP | Poll.POLLERR | Poll.POLLNVAL)) == 0) {
                    sleepQuietly();   // readable without a hang-up: nothing is expected; do not spin on it
                    continue;
                }
            }
            log.accept("the vhost-user target hung up; reconnecting");
            List<RelayQueueHandler> serving = relays.get();
            serving.forEach(RelayQueueHandler::pause);
            try {
                int resubmitted = 0;
                synchronized (target) {   // the bridge may be starting the target's vrings (kernel bounce)
                    target.reconnect();
                    for (RelayQueueHandler r : serving) {
                        resubmitted += r.resubmitAll();
                    }
                }
                reconnects++;
                failure = null;
                log.accept("reconnected to the vhost-user target; " + resubmitted + " requests resubmitted");
            } catch (RuntimeException e) {
                failure = e.getMessage();
                log.accept("cannot reconnect to the vhost-user target: " + e.getMessage() + "; trying again");
                sleepQuietly();
            } finally {
                serving.forEach(RelayQueueHandler::resume);
            }
        }
    }

    private static void sleepQuietly() {
        try {
            Thread.sleep(200);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        closing = true;
        EventFd.signal(wakeFd);
        try {
            thread.join(60_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        FileIo.close(wakeFd);
    }
}
