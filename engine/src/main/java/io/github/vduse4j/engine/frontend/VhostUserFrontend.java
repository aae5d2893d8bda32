package io.github.vduse4j.engine.frontend;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;

import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.bindings.UnixSocket;
import io.github.vduse4j.engine.vhostuser.VhostUserMessage;
import io.github.vduse4j.ring.driver.DriverRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Consumer;

/**
 * A vhost-user frontend (the role QEMU plays; spec QEMU {@code docs/interop/vhost-user.rst}): connects to a
 * back-end's socket, negotiates features and protocol features, shares a {@link MemoryTable} (several regions, each
 * with its fd) with SET_MEM_TABLE and sets up vrings: the vhost-user {@link VhostTransport}. Works with vduse4j's own
 * back-end and with libvhost-user ones (qemu-storage-daemon). Control path only: one thread at a time.
 *
 * <p>When REPLY_ACK is negotiated every request that has no reply of its own asks for an acknowledgement, so
 * a refusal surfaces as a {@link VhostUserException} at the request that caused it.
 */
public final class VhostUserFrontend implements VhostTransport {
    /** A request the back-end refused or could not answer. */
    public static final class VhostUserException extends RuntimeException {
        public VhostUserException(String message) {
            super(message);
        }
    }

    /** Reply timeout: a back-end that does not answer within it is considered dead. */
    static final int REPLY_TIMEOUT_MILLIS = 10_000;

    private final int socket;
    private final VhostUserMessage msg = new VhostUserMessage();
    private final Poll poll = new Poll(1);
    private long backendFeatures;
    private long protocolFeatures;
    private long features;
    private boolean replyAck;
    private boolean closed;

    private VhostUserFrontend(int socket) {
        this.socket = socket;
        poll.add(socket, Poll.POLLIN);
    }

    /** Connects to the back-end listening on {@code path}. */
    public static VhostUserFrontend connect(Path path) {
        return connect(path, Duration.ZERO);
    }

    /**
     * Connects to the back-end listening on {@code path}, trying again every 50 ms for up to {@code patience} while
     * nobody listens there yet (ENOENT, ECONNREFUSED: a target being restarted).
     */
    public static VhostUserFrontend connect(Path path, Duration patience) {
        long deadline = System.nanoTime() + patience.toNanos();
        while (true) {
            try {
                return new VhostUserFrontend(UnixSocket.connect(path.toString()));
            } catch (ErrnoException e) {
                boolean absent = e.errno() == Errno.ECONNREFUSED || e.errno() == Errno.ENOENT;
                if (!absent || System.nanoTime() - deadline >= 0) {
                    throw new IllegalStateException("cannot connect to " + path + ": " + Errno.name(e.errno()) + " ("
                            + Errno.description(e.errno()) + ")" + (e.errno() == Errno.ECONNREFUSED
                            ? ": no back-end listens there (a stale socket file?)" : ""), e);
                }
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while connecting to " + path, e);
            }
        }
    }

    /**
     * {@link #connect(Path, Duration)}, then GET_FEATURES, protocol features ({@code wantedProtocol} of those offered)
     * and SET_OWNER: a transport ready for {@link VhostFrontend}.
     */
    public static VhostUserFrontend open(Path path, long wantedProtocol, Duration patience) {
        VhostUserFrontend fe = connect(path, patience);
        try {
            fe.negotiateProtocol(wantedProtocol);
            fe.setOwner();
            return fe;
        } catch (RuntimeException e) {
            fe.close();
            throw e;
        }
    }

    public int socket() { return socket; }
    public long backendFeatures() { return backendFeatures; }
    public long protocolFeatures() { return protocolFeatures; }

    /** GET_FEATURES, then protocol features when offered: keeps the subset of {@code wantedProtocol}. */
    public long negotiateProtocol(long wantedProtocol) {
        backendFeatures = getU64(GET_FEATURES);
        if ((backendFeatures & bit(F_PROTOCOL_FEATURES)) != 0) {
            long offered = getU64(GET_PROTOCOL_FEATURES);
            protocolFeatures = offered & wantedProtocol;
            send(SET_PROTOCOL_FEATURES, 0, U64_SIZE, m -> m.putU64(0, protocolFeatures));
            replyAck = (protocolFeatures & bit(PF_REPLY_ACK)) != 0;
        }
        return backendFeatures;
    }

    public void setOwner() { request(SET_OWNER, 0, m -> { }); }

    /** GET_QUEUE_NUM (needs MQ). */
    public int queueNum() { return (int) getU64(GET_QUEUE_NUM); }

    /** GET_CONFIG of {@code size} bytes from offset 0 (needs CONFIG). */
    public byte[] config(int size) {
        return config(0, size);
    }

    /** GET_CONFIG of {@code size} bytes from {@code offset} (needs CONFIG). */
    @Override
    public byte[] config(int offset, int size) {
        msg.begin(GET_CONFIG, 0, CONFIG_HEADER_SIZE + size).putU32(CONFIG_OFFSET, offset).putU32(CONFIG_SIZE_FIELD, size);
        msg.write(socket);
        readReply(GET_CONFIG);
        if (msg.size() != CONFIG_HEADER_SIZE + size) {
            throw new VhostUserException("GET_CONFIG answered with " + msg.size() + " bytes");
        }
        byte[] out = new byte[size];
        MemorySegment.copy(msg.payload(), ValueLayout.JAVA_BYTE, CONFIG_HEADER_SIZE, out, 0, size);
        return out;
    }

    /**
     * SET_CONFIG (needs CONFIG): the driver wrote {@code data} at {@code offset} of the config space (flags
     * VHOST_SET_CONFIG_TYPE_FRONTEND, as QEMU's vhost-user-blk sends for a write of {@code writeback}). With REPLY_ACK
     * a refusal throws {@link VhostUserException}.
     */
    @Override
    public void setConfig(int offset, byte[] data) {
        request(SET_CONFIG, CONFIG_HEADER_SIZE + data.length, m -> {
            m.putU32(CONFIG_OFFSET, offset).putU32(CONFIG_SIZE_FIELD, data.length).putU32(CONFIG_FLAGS, CONFIG_TYPE_FRONTEND);
            for (int i = 0; i < data.length; i++) {
                m.putU8(CONFIG_HEADER_SIZE + i, data[i]);
            }
        });
    }

    /** SET_FEATURES with {@code features} (must be offered). */
    @Override
    public void setFeatures(long features) {
        request(SET_FEATURES, U64_SIZE, m -> m.putU64(0, features));
        this.features = features;
    }

    /** What the last {@link #setFeatures} sent. */
    public long features() { return features; }

    /** SET_MEM_TABLE with one region: all of {@code mem}. */
    public void setMemTable(MemoryRegion mem) {
        setMemoryTable(MemoryTable.of(mem));
    }

    /**
     * SET_MEM_TABLE with every region of {@code table}, region i's fd as the i-th ancillary fd (spec: "Set memory
     * table": VhostUserMemory, one fd per region): guest physical address, size, this process's user address of the
     * mapping and its offset in the fd.
     */
    @Override
    public void setMemoryTable(MemoryTable table) {
        List<MemoryRegion> regions = table.regions();
        int[] fds = new int[regions.size()];
        for (int i = 0; i < fds.length; i++) {
            fds[i] = regions.get(i).fd();
        }
        request(SET_MEM_TABLE, MEMORY_HEADER_SIZE + REGION_SIZE * regions.size(), m -> {
            m.putU32(0, regions.size());
            for (int i = 0; i < regions.size(); i++) {
                MemoryRegion r = regions.get(i);
                int at = MEMORY_HEADER_SIZE + REGION_SIZE * i;
                m.putU64(at + REGION_GPA, r.gpa()).putU64(at + REGION_SIZE_FIELD, r.size())
                        .putU64(at + REGION_UADDR, r.uaddr()).putU64(at + REGION_MMAP_OFFSET, r.fdOffset());
            }
        }, fds);
    }

    @Override
    public long deviceFeatures() { return backendFeatures; }

    @Override
    public int maxQueues() { return (protocolFeatures & bit(PF_MQ)) != 0 ? queueNum() : 1; }

    @Override
    public boolean hasConfig() { return (protocolFeatures & bit(PF_CONFIG)) != 0; }

    @Override
    public int stopVring(int index) { return getVringBase(index); }

    /**
     * Sets up and starts vring {@code index} over {@code ring} (spec order as QEMU's vhost_virtqueue_start):
     * NUM, BASE, ADDR, KICK, CALL, then ENABLE when protocol features are on. {@code base} is the SET_VRING_BASE
     * value ({@link DriverRing#vringBase()} for a fresh ring). The ring layout must match the negotiated
     * VIRTIO_F_RING_PACKED. The addresses sent are this process's user addresses of the ring's areas (spec: "the
     * ring addresses are in the frontend's address space"); descriptors carry guest physical addresses.
     */
    @Override
    public void startVring(int index, DriverRing ring, int base, int kickFd, int callFd) {
        if (ring.packed() != ((features & bit(F_RING_PACKED)) != 0)) {
            throw new IllegalStateException("vring " + index + " is " + (ring.packed() ? "packed" : "split")
                    + " but VIRTIO_F_RING_PACKED was " + (ring.packed() ? "not " : "") + "negotiated");
        }
        setVringNum(index, ring.size());
        setVringBase(index, base);
        // SET_VRING_ADDR: descriptor, used and available user addresses. Packed (virtio 1.2 §2.8): the descriptor
        // ring, the device event suppression structure (Device Area) in the used field and the driver one (Driver
        // Area) in the avail field, as QEMU's vhost_virtqueue_start sends them.
        setVringAddr(index, ring.descArea().address(), ring.deviceArea().address(), ring.driverArea().address());
        setVringFd(SET_VRING_KICK, index, kickFd);
        setVringFd(SET_VRING_CALL, index, callFd);
        if ((backendFeatures & bit(F_PROTOCOL_FEATURES)) != 0) {
            setVringEnable(index, true);
        }
    }

    public void setVringNum(int index, int num) {
        request(SET_VRING_NUM, STATE_SIZE, m -> m.putU32(0, index).putU32(4, num));
    }

    public void setVringBase(int index, int base) {
        request(SET_VRING_BASE, STATE_SIZE, m -> m.putU32(0, index).putU32(4, base));
    }

    public void setVringAddr(int index, long desc, long used, long avail) {
        request(SET_VRING_ADDR, ADDR_SIZE, m -> m.putU32(ADDR_INDEX, index).putU64(ADDR_DESC, desc)
                .putU64(ADDR_USED, used).putU64(ADDR_AVAIL, avail));
    }

    /** SET_VRING_KICK/CALL/ERR with {@code fd}, or the NOFD flag if {@code fd < 0}. */
    public void setVringFd(int request, int index, int fd) {
        if (fd >= 0) {
            request(request, U64_SIZE, m -> m.putU64(0, index), fd);
        } else {
            request(request, U64_SIZE, m -> m.putU64(0, index | VRING_NOFD_MASK));
        }
    }

    public void setVringEnable(int index, boolean enable) {
        request(SET_VRING_ENABLE, STATE_SIZE, m -> m.putU32(0, index).putU32(4, enable ? 1 : 0));
    }

    /** GET_VRING_BASE: stops the ring and returns where it stopped. */
    public int getVringBase(int index) {
        msg.begin(GET_VRING_BASE, 0, STATE_SIZE).putU32(0, index);
        msg.write(socket);
        readReply(GET_VRING_BASE);
        return msg.u32(4);
    }

    /** GET_INFLIGHT_FD: returns {mmap size, fd}; the caller owns the fd. */
    public long[] getInflightFd(int numQueues, int queueSize) {
        msg.begin(GET_INFLIGHT_FD, 0, INFLIGHT_SIZE).putU16(16, (short) numQueues).putU16(18, (short) queueSize);
        msg.write(socket);
        readReply(GET_INFLIGHT_FD);
        if (msg.fdCount() != 1) {
            throw new VhostUserException("GET_INFLIGHT_FD answered with " + msg.fdCount() + " fds");
        }
        return new long[] {msg.u64(0), msg.takeFd(0)};
    }

    public void setInflightFd(int fd, long mmapSize, int numQueues, int queueSize) {
        request(SET_INFLIGHT_FD, INFLIGHT_SIZE, m -> m.putU64(0, mmapSize).putU64(8, 0)
                .putU16(16, (short) numQueues).putU16(18, (short) queueSize), fd);
    }

    // ---- generic requests ----

    private long getU64(int request) {
        msg.begin(request, 0, 0);
        msg.write(socket);
        readReply(request);
        if (msg.size() != U64_SIZE) {
            throw new VhostUserException(requestName(request) + " answered with " + msg.size() + " bytes");
        }
        return msg.u64(0);
    }

    /** Sends a request without a reply of its own; with REPLY_ACK waits for the acknowledgement. */
    public void request(int request, int payloadSize, Consumer<VhostUserMessage> fill, int... fds) {
        send(request, replyAck ? FLAG_NEED_REPLY : 0, payloadSize, fill, fds);
        if (replyAck) {
            readReply(request);
            long status = msg.size() >= U64_SIZE ? msg.u64(0) : -1;
            if (status != 0) {
                throw new VhostUserException(requestName(request) + " refused by the back-end (status " + status + ")");
            }
        }
    }

    /** Sends one message as is (tests use it for malformed input). */
    public void send(int request, int flags, int payloadSize, Consumer<VhostUserMessage> fill, int... fds) {
        msg.begin(request, flags, payloadSize);
        fill.accept(msg);
        msg.write(socket, fds);
    }

    /** Reads the next message, which must be the reply to {@code request}; the message holds it afterwards. */
    public VhostUserMessage readReply(int request) {
        if (poll.poll(REPLY_TIMEOUT_MILLIS) <= 0) {
            throw new VhostUserException("no reply to " + requestName(request) + " within " + REPLY_TIMEOUT_MILLIS + " ms");
        }
        VhostUserMessage.ReadResult r = msg.read(socket);
        if (r != VhostUserMessage.ReadResult.OK) {
            throw new VhostUserException("back-end closed the connection instead of answering " + requestName(request)
                    + (r == VhostUserMessage.ReadResult.MALFORMED ? ": " + msg.problem() : ""));
        }
        if (msg.request() != request || (msg.flags() & FLAG_REPLY) == 0) {
            throw new VhostUserException("expected the reply to " + requestName(request) + ", got " + msg);
        }
        return msg;
    }

    /** True if the back-end closed the connection (EOF) within {@code timeoutMillis}. */
    public boolean awaitClosed(int timeoutMillis) {
        if (poll.poll(timeoutMillis) <= 0) {
            return false;
        }
        return msg.read(socket) == VhostUserMessage.ReadResult.CLOSED;
    }

    @Override
    public void close() {
        if (closed) {
            return;   // never close the fd number twice: it may belong to something else by now
        }
        closed = true;
        msg.closeUntakenFds();
        try {
            io.github.vduse4j.bindings.FileIo.close(socket);
        } catch (RuntimeException ignored) {
            // already closed
        }
    }

    /** True once {@link #close()} ran. */
    public boolean closed() {
        return closed;
    }

    private static long bit(int n) {
        return 1L << n;
    }
}
