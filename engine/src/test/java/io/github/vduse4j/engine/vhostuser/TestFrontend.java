package io.github.vduse4j.engine.vhostuser;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;

import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.MemoryMap;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.bindings.UnixSocket;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.function.Consumer;

/** A message-level vhost-user frontend for protocol tests: sends anything, reads replies with a timeout. */
final class TestFrontend implements AutoCloseable {
    final int socket;
    final VhostUserMessage msg = new VhostUserMessage();
    private final Poll poll = new Poll(1);

    TestFrontend(Path path) {
        socket = UnixSocket.connect(path.toString());
        poll.add(socket, Poll.POLLIN);
    }

    void send(int request, int flags, int size, Consumer<VhostUserMessage> fill, int... fds) {
        msg.begin(request, flags, size);
        fill.accept(msg);
        msg.write(socket, fds);
    }

    /** Sends with NEED_REPLY and returns the ack status (0 = success). */
    long ack(int request, int size, Consumer<VhostUserMessage> fill, int... fds) {
        send(request, FLAG_NEED_REPLY, size, fill, fds);
        VhostUserMessage r = reply(request);
        if (r.size() != U64_SIZE) {
            throw new AssertionError("ack of " + requestName(request) + " has " + r.size() + " bytes");
        }
        return r.u64(0);
    }

    long getU64(int request) {
        send(request, 0, 0, m -> { });
        return reply(request).u64(0);
    }

    VhostUserMessage reply(int request) {
        if (poll.poll(5000) <= 0) {
            throw new AssertionError("no reply to " + requestName(request));
        }
        VhostUserMessage.ReadResult r = msg.read(socket);
        if (r != VhostUserMessage.ReadResult.OK) {
            throw new AssertionError("connection " + r + " instead of a reply to " + requestName(request));
        }
        if (msg.request() != request || (msg.flags() & FLAG_REPLY) == 0) {
            throw new AssertionError("expected reply to " + requestName(request) + ", got " + msg);
        }
        return msg;
    }

    /** The next message within {@code timeoutMs} (in {@link #msg}), or null if none arrived. */
    VhostUserMessage.ReadResult pollRead(int timeoutMs) {
        if (poll.poll(timeoutMs) <= 0) {
            return null;
        }
        return msg.read(socket);
    }

    /** True if the back-end closed the connection within 5 s. */
    boolean closedByPeer() {
        if (poll.poll(5000) <= 0) {
            return false;
        }
        return msg.read(socket) == VhostUserMessage.ReadResult.CLOSED;
    }

    /** Negotiates protocol features (all offered) and SET_OWNER. */
    TestFrontend handshake() {
        long pf = getU64(GET_PROTOCOL_FEATURES);
        send(SET_PROTOCOL_FEATURES, 0, U64_SIZE, m -> m.putU64(0, pf));
        send(SET_OWNER, 0, 0, m -> { });
        return this;
    }

    @Override
    public void close() {
        try {
            FileIo.close(socket);
        } catch (RuntimeException ignored) {
            // already closed
        }
    }

    /** A memfd of {@code size} bytes mapped here. */
    record Memfd(int fd, MemorySegment segment) implements AutoCloseable {
        static Memfd create(long size) {
            int fd = FileIo.memfdCreate("test", FileIo.MFD_CLOEXEC);
            FileIo.ftruncate(fd, size);
            return new Memfd(fd, MemoryMap.map(size, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE, MemoryMap.MAP_SHARED, fd, 0));
        }

        long uaddr() {
            return segment.address();
        }

        @Override
        public void close() {
            MemoryMap.unmap(segment);
            FileIo.close(fd);
        }
    }
}
