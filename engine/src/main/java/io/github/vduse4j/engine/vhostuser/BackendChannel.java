package io.github.vduse4j.engine.vhostuser;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;

import io.github.vduse4j.bindings.Poll;

/**
 * The back-end to front-end channel of SET_BACKEND_REQ_FD (spec "Back-end communication"): IOTLB misses and
 * config-change notices. Used by queue pollers (misses) and the control thread (config changes), one message at
 * a time; with REPLY_ACK the sender waits, bounded, for the frontend's answer on the same socket.
 */
final class BackendChannel implements AutoCloseable {
    static final int FAILED = -1, SENT = 0, ANSWERED = 1, REFUSED = 2;

    private final int fd;
    private final boolean replyAck;
    private final VhostUserMessage message = new VhostUserMessage();
    private final Poll poll = new Poll(1);
    private boolean closed;

    BackendChannel(int fd, boolean replyAck) {
        this.fd = fd;
        this.replyAck = replyAck;
        poll.add(fd, Poll.POLLIN);
    }

    /**
     * Spec "IOMMU support": asks the frontend for the IOTLB entry covering {@code iova} with {@code perm}
     * (VHOST_ACCESS_RO/WO). With REPLY_ACK the frontend answers after it has sent the UPDATE (or found the IOVA
     * invalid); this waits for that answer up to {@code timeoutMillis}.
     *
     * @return {@link #ANSWERED} (the frontend replied), {@link #SENT} (no reply expected) or {@link #FAILED}
     */
    synchronized int iotlbMiss(long iova, int perm, int timeoutMillis) {
        if (closed) {
            return FAILED;
        }
        try {
            message.begin(BACKEND_IOTLB_MSG, replyAck ? FLAG_NEED_REPLY : 0, IOTLB_SIZE)
                    .putU64(IOTLB_IOVA, iova)
                    .putU8(IOTLB_PERM, (byte) perm)
                    .putU8(IOTLB_TYPE, (byte) IOTLB_MISS)
                    .write(fd);
            if (!replyAck) {
                return SENT;
            }
            return awaitReply(BACKEND_IOTLB_MSG, timeoutMillis) != FAILED ? ANSWERED : FAILED;
        } catch (RuntimeException e) {
            return FAILED;
        }
    }

    /** Spec BACKEND_CONFIG_CHANGE_MSG: the config space changed; the frontend re-reads it with GET_CONFIG. */
    synchronized boolean configChanged(int timeoutMillis) {
        if (closed) {
            return false;
        }
        try {
            message.begin(BACKEND_CONFIG_CHANGE_MSG, replyAck ? FLAG_NEED_REPLY : 0, 0).write(fd);
            return !replyAck || awaitReply(BACKEND_CONFIG_CHANGE_MSG, timeoutMillis) == ANSWERED;
        } catch (RuntimeException e) {
            return false;
        }
    }

    /** Waits for the reply: {@link #ANSWERED} for a zero status, {@link #REFUSED} for non-zero, or FAILED. */
    private int awaitReply(int request, int timeoutMillis) {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        while (true) {
            long left = (deadline - System.nanoTime()) / 1_000_000L;
            if (left <= 0 || poll.poll((int) left) <= 0) {
                return FAILED;
            }
            if (message.read(fd) != VhostUserMessage.ReadResult.OK) {
                return FAILED;
            }
            message.closeUntakenFds();
            if (message.request() == request && (message.flags() & FLAG_REPLY) != 0) {
                return message.size() < U64_SIZE || message.u64(0) == 0 ? ANSWERED : REFUSED;
            }
            // anything else on this channel is not ours to answer: skip it
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            VhostUserMessage.closeQuietly(fd);
        }
    }
}
