package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.bindings.UnixSocket;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.control.LifecycleEvent;
import io.github.vduse4j.engine.PollerSettings;
import io.github.vduse4j.engine.TransportException;
import io.github.vduse4j.engine.VirtioDevice;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.List;

/**
 * A vhost-user back-end serving a {@link VirtioDevice} on a Unix socket (QEMU {@code docs/interop/vhost-user.rst}):
 * it listens, serves one frontend at a time on its control thread, and when that frontend disconnects it stops
 * the queues, releases everything the connection brought (memory, fds, IOTLB) and waits for the next one, so a
 * frontend can reconnect. Queues run on {@link io.github.vduse4j.engine.QueuePoller}s, one per vring.
 *
 * <pre>{@code
 * try (VhostUserServer s = VhostUserServer.start(Path.of("/tmp/vblk.sock"), device)) {
 *     ... // qemu -chardev socket,id=c,path=/tmp/vblk.sock -device vhost-user-blk-pci,chardev=c
 * }
 * }</pre>
 */
public final class VhostUserServer implements AutoCloseable {
    private final Path path;
    private final VirtioDevice device;
    private final int listenFd;
    private final int wakeFd;
    private final Thread thread;
    private final boolean quiet;
    private PollerSettings pollerSettings = PollerSettings.DEFAULT;
    private volatile boolean closing;
    private volatile VhostUserSession session;
    private volatile List<QueueStats> lastStats = List.of();
    private volatile long lastFeatures;
    private volatile int connections;
    private volatile long refused;
    private boolean closed;

    private VhostUserServer(Path path, VirtioDevice device, int listenFd, int wakeFd, boolean quiet) {
        this.path = path;
        this.device = device;
        this.listenFd = listenFd;
        this.wakeFd = wakeFd;
        this.quiet = quiet;
        this.thread = Thread.ofPlatform().name("vduse4j-vhost-user").daemon(true).unstarted(this::serve);
    }

    /** Listens on {@code socket} (a stale socket file there is replaced) and starts serving. */
    public static VhostUserServer start(Path socket, VirtioDevice device) {
        return start(socket, device, false);
    }

    /** As {@link #start(Path, VirtioDevice)}, with the queue pollers' idle strategy and CPUs. */
    public static VhostUserServer start(Path socket, VirtioDevice device, PollerSettings pollers) {
        return start(socket, device, false, pollers);
    }

    /** How this server's queue pollers wait and where they run. */
    PollerSettings pollerSettings() {
        return pollerSettings;
    }

    /** As {@link #start(Path, VirtioDevice)}; {@code quiet} keeps refused messages out of stderr (tests). */
    public static VhostUserServer start(Path socket, VirtioDevice device, boolean quiet) {
        return start(socket, device, quiet, PollerSettings.DEFAULT);
    }

    private static VhostUserServer start(Path socket, VirtioDevice device, boolean quiet, PollerSettings pollers) {
        removeStaleSocket(socket);
        int fd;
        try {
            fd = UnixSocket.listen(socket.toString(), 1);
        } catch (RuntimeException e) {
            throw new TransportException("cannot listen on " + socket + ": " + e.getMessage(), e);
        }
        int wake = EventFd.create(0, EventFd.EFD_CLOEXEC);
        VhostUserServer s = new VhostUserServer(socket, device, fd, wake, quiet);
        s.pollerSettings = pollers; // before the thread starts: sessions read it
        s.thread.start();
        return s;
    }

    /**
     * Removes a socket file left by a back-end that is gone. A socket someone still listens on is not touched
     * (replacing it would take its frontends' next connections away from a running back-end), nor is anything
     * that is not a socket.
     */
    private static void removeStaleSocket(Path socket) {
        try {
            BasicFileAttributes a = Files.readAttributes(socket, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!a.isOther()) {
                throw new TransportException(socket + " exists and is not a socket: pick another --socket path");
            }
            if (listening(socket)) {
                throw new TransportException(socket + " is in use by a running back-end: stop it or pick another"
                        + " --socket path");
            }
            Files.delete(socket);
        } catch (java.nio.file.NoSuchFileException e) {
            // nothing to remove
        } catch (IOException e) {
            throw new TransportException("cannot replace " + socket + ": " + e.getMessage(), e);
        }
    }

    /** Whether a process accepts connections on the socket file {@code socket} (ECONNREFUSED: a stale file). */
    private static boolean listening(Path socket) {
        // non-blocking: a listener whose backlog is full answers EAGAIN instead of making us wait
        int fd = UnixSocket.socket(UnixSocket.SOCK_STREAM | UnixSocket.SOCK_CLOEXEC | UnixSocket.SOCK_NONBLOCK);
        try {
            UnixSocket.connect(fd, socket.toString());
            return true;
        } catch (ErrnoException e) {
            if (e.errno() == Errno.ECONNREFUSED || e.errno() == Errno.ENOENT) {
                return false;
            }
            if (e.errno() == Errno.EAGAIN) {
                return true;
            }
            throw new TransportException("cannot tell whether " + socket + " is in use: " + e.getMessage(), e);
        } finally {
            VhostUserMessage.closeQuietly(fd);
        }
    }

    public Path socketPath() {
        return path;
    }

    public VirtioDevice device() {
        return device;
    }

    /** Frontends accepted so far. */
    public int connections() {
        return connections;
    }

    /** True while a frontend is connected. */
    public boolean isConnected() {
        return session != null;
    }

    /** Messages refused (error replies or disconnects for malformed input) since start. */
    public long refusedMessages() {
        VhostUserSession s = session;
        return refused + (s == null ? 0 : s.refused());
    }

    /** Virtio features the current (or last) frontend accepted. */
    public long negotiatedFeatures() {
        VhostUserSession s = session;
        return s == null ? lastFeatures : s.negotiatedFeatures();
    }

    /** Per-queue counters of the current (or last) connection. */
    public List<QueueStats> stats() {
        VhostUserSession s = session;
        try {
            return s == null ? lastStats : s.stats();
        } catch (RuntimeException e) { // racing a reconnect: monitoring only
            return lastStats;
        }
    }

    /** The config space changed (e.g. resize): tells the frontend over the backend channel if it can be told. */
    public boolean configChanged() {
        VhostUserSession s = session;
        return s != null && s.configChanged();
    }

    boolean isClosing() {
        return closing;
    }

    void log(String message) {
        if (!quiet) {
            System.err.println("vduse4j: vhost-user " + path.getFileName() + ": " + message);
        }
    }

    private void serve() {
        Poll poll = new Poll(2);
        poll.add(listenFd, Poll.POLLIN);
        poll.add(wakeFd, Poll.POLLIN);
        while (!closing) {
            int conn;
            try {
                poll.poll(-1);
                if (closing || poll.revents(1) != 0) {
                    return;
                }
                if (poll.revents(0) == 0) {
                    continue;
                }
                conn = UnixSocket.accept(listenFd);
            } catch (RuntimeException e) {
                if (!closing) {
                    log("accept failed: " + e.getMessage());
                }
                return;
            }
            connections++;
            LifecycleEvent.report(socketPath().toString(), "connect", "connection " + connections);
            VhostUserSession s = new VhostUserSession(this, device, conn, wakeFd, null);
            session = s;
            try {
                s.run();
            } catch (Throwable t) { // never let the control thread die: the next frontend must find us
                log("connection ended by an internal error: " + t);
            } finally {
                LifecycleEvent.report(socketPath().toString(), "disconnect", "connection " + connections);
                lastStats = s.stats();
                lastFeatures = s.negotiatedFeatures();
                refused += s.refused();
                session = null;
                try {
                    s.close();
                } catch (Throwable t) {
                    log("releasing the connection failed: " + t);
                }
                VhostUserMessage.closeQuietly(conn);
                if (!closing) {
                    log("frontend disconnected (" + s.summary() + "); waiting for the next one");
                }
            }
        }
    }

    /** Stops serving: ends the connection (queues drain and stop), closes the socket and removes its file. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        closing = true;
        EventFd.signal(wakeFd);
        try {
            if (!thread.join(Duration.ofSeconds(30))) {
                log("control thread did not stop within 30 s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        VhostUserMessage.closeQuietly(listenFd);
        VhostUserMessage.closeQuietly(wakeFd);
        try {
            Files.deleteIfExists(path);
        } catch (IOException e) {
            log("cannot remove " + path + ": " + e.getMessage());
        }
    }

    @Override
    public String toString() {
        return "VhostUserServer[" + path + ", connections=" + connections + "]";
    }
}
