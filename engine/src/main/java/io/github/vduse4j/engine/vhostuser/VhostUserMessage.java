package io.github.vduse4j.engine.vhostuser;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;

import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.UnixSocket;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One vhost-user message and its framing on a stream socket (spec "Message Specification"): a 12-byte header
 * (request, flags, size), {@code size} bytes of payload, and file descriptors in the {@code SCM_RIGHTS} data of
 * the first segment. One instance is reused for every message of a channel (control path only).
 *
 * <p>Received fds belong to the message until {@link #takeFd} hands one out; {@link #closeUntakenFds()} closes the
 * rest, so a frontend sending surplus fds cannot make the back-end leak them.
 */
public final class VhostUserMessage {
    /** {@link #read} outcomes. */
    public enum ReadResult { OK, CLOSED, MALFORMED }

    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;

    /** An empty message, reused for every message of one channel. */
    public VhostUserMessage() {}

    private final MemorySegment buffer = Arena.ofAuto().allocate(HEADER_SIZE + MAX_PAYLOAD, 8);
    private final MemorySegment payload = buffer.asSlice(HEADER_SIZE, MAX_PAYLOAD);
    private int request;
    private int flags;
    private int size;
    private int[] fds = new int[0];
    private boolean[] taken = new boolean[0];
    private String problem = "";

    public int request() { return request; }
    public int flags() { return flags; }
    /** Payload bytes. */
    public int size() { return size; }
    public int fdCount() { return fds.length; }
    public boolean needsReply() { return (flags & FLAG_NEED_REPLY) != 0; }
    /** Why the last {@link #read} returned {@link ReadResult#MALFORMED}. */
    public String problem() { return problem; }

    public int u32(int offset) { return payload.get(U32, offset); }
    public long u64(int offset) { return payload.get(U64, offset); }
    public byte u8(int offset) { return payload.get(ValueLayout.JAVA_BYTE, offset); }
    public short u16(int offset) { return payload.get(ValueLayout.JAVA_SHORT_UNALIGNED, offset); }
    /** The payload area (MAX_PAYLOAD bytes); valid bytes are {@code [0, size)}. */
    public MemorySegment payload() { return payload; }

    /** The i-th received fd, still owned by the message (closed by {@link #closeUntakenFds()}; mappings survive). */
    public int fd(int i) {
        return fds[i];
    }

    /** The i-th received fd, now owned by the caller. */
    public int takeFd(int i) {
        taken[i] = true;
        return fds[i];
    }

    /** Closes every received fd nobody took. */
    public void closeUntakenFds() {
        for (int i = 0; i < fds.length; i++) {
            if (!taken[i]) {
                taken[i] = true;
                closeQuietly(fds[i]);
            }
        }
    }

    /**
     * Reads one message. Blocks. {@link ReadResult#CLOSED} on EOF (or a reset connection),
     * {@link ReadResult#MALFORMED} when the stream cannot be trusted any more (bad version, oversized payload,
     * too many fds): the caller disconnects.
     */
    public ReadResult read(int socket) {
        closeUntakenFds();
        fds = new int[0];
        taken = new boolean[0];
        request = flags = size = 0;
        UnixSocket.Received r;
        try {
            r = UnixSocket.recvmsg(socket, buffer.asSlice(0, HEADER_SIZE), MAX_FDS);
        } catch (RuntimeException e) {
            return ReadResult.CLOSED; // ECONNRESET and the like: the peer is gone
        }
        if (r.bytes() == 0) {
            return ReadResult.CLOSED;
        }
        fds = r.fds();
        taken = new boolean[fds.length];
        if (r.truncated()) {
            problem = "more than " + MAX_FDS + " file descriptors in one message";
            return ReadResult.MALFORMED;
        }
        if (r.bytes() < HEADER_SIZE && !readFully(socket, r.bytes(), HEADER_SIZE - r.bytes())) {
            return ReadResult.CLOSED;
        }
        request = buffer.get(U32, 0);
        flags = buffer.get(U32, 4);
        size = buffer.get(U32, 8);
        // Spec "Header": lower 2 bits are the version, currently 0x01.
        if ((flags & VERSION_MASK) != VERSION) {
            problem = "header version " + (flags & VERSION_MASK) + " (expected 1)";
            return ReadResult.MALFORMED;
        }
        // QEMU's VhostUserPayload bounds every payload; a bigger size cannot be framed safely.
        if (size < 0 || size > MAX_PAYLOAD) {
            problem = "payload size " + Integer.toUnsignedString(size) + " > " + MAX_PAYLOAD;
            return ReadResult.MALFORMED;
        }
        if (size > 0 && !readFully(socket, HEADER_SIZE, size)) {
            return ReadResult.CLOSED;
        }
        return ReadResult.OK;
    }

    private boolean readFully(int socket, long offset, long length) {
        long done = 0;
        try {
            while (done < length) {
                long n = FileIo.read(socket, buffer, offset + done, length - done);
                if (n <= 0) {
                    return false;
                }
                done += n;
            }
            return true;
        } catch (RuntimeException e) {
            return false;
        }
    }

    // ---- writing (replies and our own requests) ----

    /** Starts a message: header with version 1 and {@code extraFlags}, zeroed payload of {@code payloadSize}. */
    public VhostUserMessage begin(int request, int extraFlags, int payloadSize) {
        closeUntakenFds();
        fds = new int[0];
        taken = new boolean[0];
        this.request = request;
        this.flags = VERSION | extraFlags;
        this.size = payloadSize;
        payload.asSlice(0, payloadSize).fill((byte) 0);
        return this;
    }

    /** Turns the received message into its reply with {@code payloadSize} bytes (the payload is kept). */
    public VhostUserMessage reply(int payloadSize) {
        closeUntakenFds();
        this.flags = VERSION | FLAG_REPLY;
        this.size = payloadSize;
        return this;
    }

    public VhostUserMessage putU32(int offset, int v) { payload.set(U32, offset, v); return this; }
    public VhostUserMessage putU64(int offset, long v) { payload.set(U64, offset, v); return this; }
    public VhostUserMessage putU16(int offset, short v) { payload.set(ValueLayout.JAVA_SHORT_UNALIGNED, offset, v); return this; }
    public VhostUserMessage putU8(int offset, byte v) { payload.set(ValueLayout.JAVA_BYTE, offset, v); return this; }

    /** Sends the message with {@code sendFds} attached; throws on a socket error. */
    public void write(int socket, int... sendFds) {
        buffer.set(U32, 0, request);
        buffer.set(U32, 4, flags);
        buffer.set(U32, 8, size);
        long total = HEADER_SIZE + (long) size;
        long sent = UnixSocket.sendmsg(socket, buffer.asSlice(0, total), sendFds);
        while (sent < total) { // a stream socket may take part of it; the rest goes without fds
            long n = FileIo.write(socket, buffer, sent, total - sent);
            if (n <= 0) {
                throw new IllegalStateException("short write on vhost-user socket");
            }
            sent += n;
        }
    }

    static void closeQuietly(int fd) {
        if (fd >= 0) {
            try {
                FileIo.close(fd);
            } catch (RuntimeException ignored) {
                // already closed or invalid: nothing to release
            }
        }
    }

    @Override
    public String toString() {
        return requestName(request) + " flags=0x" + Integer.toHexString(flags) + " size=" + size + " fds=" + fds.length;
    }
}
