package io.github.vduse4j.engine.vhostuser;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;

import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.VirtioDevice;
import io.github.vduse4j.ring.VirtioRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HexFormat;
import java.util.ArrayList;
import java.util.List;

/**
 * One frontend connection: reads every message, validates it and answers it (control thread). Everything the
 * frontend sends is untrusted: a malformed message is refused with an error reply (REPLY_ACK, or the request's
 * own error form) and logged; a message that breaks the framing ends the connection. Nothing the frontend sends
 * can throw out of {@link #run}.
 */
final class VhostUserSession {
    /** Outcome of one handler. */
    private enum Outcome { OK, REPLIED, FAILED, DISCONNECT }

    /** A refused message: the reason goes to the log, the frontend gets an error reply. */
    private static final class Refused extends RuntimeException {
        Refused(String message) {
            super(message, null, false, false);
        }
    }

    private static final long GRACE_TIMEOUT_NANOS = 5_000_000_000L;

    private final VhostUserServer server;
    private final VirtioDevice device;
    private final int socket;
    private final int wakeFd;
    private final VhostUserMessage msg = new VhostUserMessage();
    private final Vring[] vrings;
    private final VhostUserIotlb iotlb = new VhostUserIotlb();
    private final long offeredFeatures;
    private final long configWriteFeatures;
    private final long offeredProtocolFeatures;
    private long features;
    private long protocolFeatures;
    private boolean featuresSet;
    private VhostUserMemory memory = VhostUserMemory.EMPTY;
    private BackendChannel backend;
    private InflightRegion inflight;
    private long messages;
    private long refused;
    private long iotlbUpdates;
    private long iotlbInvalidations;
    private long configWrites;

    VhostUserSession(VhostUserServer server, VirtioDevice device, int socket, int wakeFd, InflightRegion kept) {
        this.server = server;
        this.device = device;
        this.socket = socket;
        this.wakeFd = wakeFd;
        this.vrings = new Vring[device.queueCount()];
        for (int i = 0; i < vrings.length; i++) {
            vrings[i] = new Vring(i, server.pollerSettings());
        }
        // Config writes arrive as SET_CONFIG, so the features that depend on them are offered here (not over VDUSE).
        this.configWriteFeatures = device.configWriteFeatures();
        this.offeredFeatures = device.deviceFeatures() | configWriteFeatures | bit(F_PROTOCOL_FEATURES);
        this.offeredProtocolFeatures = bit(PF_MQ) | bit(PF_REPLY_ACK) | bit(PF_BACKEND_REQ) | bit(PF_CONFIG)
                | bit(PF_INFLIGHT_SHMFD) | bit(PF_RESET_DEVICE) | bit(PF_CONFIGURE_MEM_SLOTS);
        this.inflight = kept;
    }

    long negotiatedFeatures() {
        return features & ~bit(F_PROTOCOL_FEATURES);
    }

    long messages() {
        return messages;
    }

    long refused() {
        return refused;
    }

    /** One line for the log at disconnect. */
    String summary() {
        String s = messages + " messages, " + refused + " refused";
        if (configWrites > 0) {
            s += ", " + configWrites + " config writes";
        }
        if (iotlbUpdates + iotlbInvalidations > 0) {
            s += ", IOTLB: " + iotlbUpdates + " updates, " + iotlbInvalidations + " invalidations, " + iotlb.misses()
                    + " misses";
        }
        return s;
    }

    List<QueueStats> stats() {
        List<QueueStats> out = new ArrayList<>();
        for (Vring v : vrings) {
            out.add(v.stats());
        }
        return out;
    }

    /** Serves messages until the frontend disconnects, breaks the framing, or the server is closed. */
    void run() {
        Poll poll = new Poll(2);
        poll.add(socket, Poll.POLLIN);
        poll.add(wakeFd, Poll.POLLIN);
        while (!server.isClosing()) {
            try {
                poll.poll(-1);
            } catch (RuntimeException e) {
                return;
            }
            if (poll.revents(1) != 0 || server.isClosing()) {
                return;
            }
            VhostUserMessage.ReadResult r = msg.read(socket);
            if (r == VhostUserMessage.ReadResult.CLOSED) {
                return;
            }
            if (r == VhostUserMessage.ReadResult.MALFORMED) {
                log("disconnecting: malformed message: " + msg.problem());
                msg.closeUntakenFds();
                return;
            }
            messages++;
            if (VhostUserIotlb.TRACE && msg.request() != IOTLB_MSG) {
                VhostUserIotlb.trace("MSG %s size=%d %s", requestName(msg.request()), msg.size(),
                        msg.size() >= 8 ? String.format("0x%x", msg.u64(0)) : "");
            }
            Outcome o;
            try {
                o = dispatch();
            } catch (Refused e) {
                refused++;
                log(requestName(msg.request()) + " refused: " + e.getMessage());
                o = Outcome.FAILED;
            } catch (RuntimeException e) { // a bug of ours must not take the server down either
                refused++;
                log(requestName(msg.request()) + " failed: " + e);
                o = Outcome.FAILED;
            }
            msg.closeUntakenFds();
            if (o == Outcome.DISCONNECT) {
                return;
            }
            if (!answer(o)) {
                return;
            }
        }
    }

    /** REPLY_ACK (spec "VHOST_USER_PROTOCOL_F_REPLY_ACK"): 0 on success, non-zero on failure. */
    private boolean answer(Outcome o) {
        if (o == Outcome.REPLIED) {
            return true;
        }
        boolean ack = msg.needsReply() && ((protocolFeatures & bit(PF_REPLY_ACK)) != 0 || msg.request() == IOTLB_MSG);
        if (!ack) {
            return true;
        }
        return send(msg.reply(U64_SIZE).putU64(0, o == Outcome.OK ? 0 : 1));
    }

    private boolean send(VhostUserMessage m, int... fds) {
        try {
            m.write(socket, fds);
            return true;
        } catch (RuntimeException e) {
            log("cannot reply: " + e.getMessage());
            return false;
        }
    }

    private Outcome replyU64(long value) {
        return send(msg.reply(U64_SIZE).putU64(0, value)) ? Outcome.REPLIED : Outcome.DISCONNECT;
    }

    private Outcome dispatch() {
        return switch (msg.request()) {
            case GET_FEATURES -> replyU64(offeredFeatures);
            case SET_FEATURES -> setFeatures();
            case GET_PROTOCOL_FEATURES -> replyU64(offeredProtocolFeatures);
            case SET_PROTOCOL_FEATURES -> setProtocolFeatures();
            case SET_OWNER -> Outcome.OK;
            case RESET_OWNER -> { stopAll(); yield Outcome.OK; } // spec: deprecated; "disable all rings"
            case RESET_DEVICE -> resetDevice();
            case GET_QUEUE_NUM -> replyU64(vrings.length);
            case GET_MAX_MEM_SLOTS -> replyU64(VhostUserMemory.MAX_SLOTS);
            case SET_MEM_TABLE -> setMemTable();
            case ADD_MEM_REG -> addMemReg();
            case REM_MEM_REG -> remMemReg();
            case SET_VRING_NUM -> setVringNum();
            case SET_VRING_ADDR -> setVringAddr();
            case SET_VRING_BASE -> setVringBase();
            case GET_VRING_BASE -> getVringBase();
            case SET_VRING_KICK -> setVringKick();
            case SET_VRING_CALL -> setVringCall();
            case SET_VRING_ERR -> setVringErr();
            case SET_VRING_ENABLE -> setVringEnable();
            case SET_BACKEND_REQ_FD -> setBackendReqFd();
            case IOTLB_MSG -> iotlbMsg();
            case GET_CONFIG -> getConfig();
            case SET_CONFIG -> setConfig();
            case GET_INFLIGHT_FD -> getInflightFd();
            case SET_INFLIGHT_FD -> setInflightFd();
            default -> throw new Refused("not supported");
        };
    }

    // ---- validation helpers ----

    private void needSize(int atLeast) {
        if (msg.size() < atLeast) {
            throw new Refused("payload of " + msg.size() + " bytes, needs " + atLeast);
        }
    }

    private void needProtocol(int pf) {
        if ((protocolFeatures & bit(pf)) == 0) {
            throw new Refused("protocol feature " + pf + " was not negotiated");
        }
    }

    private Vring vring(long index) {
        if (index < 0 || index >= vrings.length) {
            throw new Refused("vring index " + index + " (the device has " + vrings.length + ")");
        }
        return vrings[(int) index];
    }

    private boolean packed() {
        return (features & bit(F_RING_PACKED)) != 0;
    }

    // ---- features ----

    private Outcome setFeatures() {
        needSize(U64_SIZE);
        long f = msg.u64(0);
        // virtio 1.2 §3.1.1: the driver accepts a subset of what the device offers.
        if ((f & ~offeredFeatures) != 0) {
            throw new Refused("features 0x" + Long.toHexString(f & ~offeredFeatures) + " were not offered");
        }
        // A driver's config write reaches the back-end only as SET_CONFIG, which needs the CONFIG protocol feature.
        if ((f & configWriteFeatures) != 0 && (protocolFeatures & bit(PF_CONFIG)) == 0) {
            throw new Refused("features 0x" + Long.toHexString(f & configWriteFeatures)
                    + " make config fields writable, which needs protocol feature CONFIG (SET_CONFIG)");
        }
        if (anyRunning() && (f & ~bit(F_PROTOCOL_FEATURES)) != negotiatedFeatures()) {
            throw new Refused("features cannot change while rings run");
        }
        features = f;
        featuresSet = true;
        if (!anyRunning()) {
            // QEMU sends SET_FEATURES at every device start; Linux vhost starts a fresh device IOTLB there
            // (vhost_init_device_iotlb): entries of an earlier start (e.g. the firmware's, before the guest
            // enabled its IOMMU) must not translate the new rings.
            iotlb.clear();
        }
        return Outcome.OK;
    }

    private Outcome setProtocolFeatures() {
        needSize(U64_SIZE);
        long f = msg.u64(0);
        if ((f & ~offeredProtocolFeatures) != 0) {
            throw new Refused("protocol features 0x" + Long.toHexString(f & ~offeredProtocolFeatures) + " were not offered");
        }
        protocolFeatures = f;
        return Outcome.OK;
    }

    private Outcome resetDevice() {
        needProtocol(PF_RESET_DEVICE);
        for (Vring v : vrings) {
            v.reset();
        }
        iotlb.clear();
        features = 0;
        featuresSet = false;
        return Outcome.OK;
    }

    // ---- memory ----

    private Outcome setMemTable() {
        needSize(MEMORY_HEADER_SIZE);
        int n = msg.u32(0);
        if (n < 1 || n > MAX_TABLE_REGIONS) {
            throw new Refused(Integer.toUnsignedString(n) + " regions (1.." + MAX_TABLE_REGIONS + ")");
        }
        needSize(MEMORY_HEADER_SIZE + n * REGION_SIZE);
        // Spec SET_MEM_TABLE: "The size and ordering of the fds matches the number and ordering of memory regions."
        if (msg.fdCount() != n) {
            throw new Refused(n + " regions but " + msg.fdCount() + " fds");
        }
        List<VhostUserMemory.Region> mapped = new ArrayList<>();
        VhostUserMemory next;
        try {
            for (int i = 0; i < n; i++) {
                int off = MEMORY_HEADER_SIZE + i * REGION_SIZE;
                mapped.add(VhostUserMemory.map(msg.u64(off + REGION_GPA), msg.u64(off + REGION_SIZE_FIELD),
                        msg.u64(off + REGION_UADDR), msg.u64(off + REGION_MMAP_OFFSET), msg.fd(i)));
            }
            next = VhostUserMemory.of(mapped);
        } catch (IllegalArgumentException e) {
            mapped.forEach(VhostUserMemory::unmap);
            throw new Refused(e.getMessage());
        }
        swapMemory(next);
        return Outcome.OK;
    }

    private Outcome addMemReg() {
        needProtocol(PF_CONFIGURE_MEM_SLOTS);
        needSize(SINGLE_REGION_SIZE);
        if (msg.fdCount() != 1) {
            throw new Refused("ADD_MEM_REG needs exactly one fd, got " + msg.fdCount()); // spec ADD_MEM_REG
        }
        if (memory.regions().size() >= VhostUserMemory.MAX_SLOTS) {
            throw new Refused("all " + VhostUserMemory.MAX_SLOTS + " memory slots are in use");
        }
        int off = 8;
        VhostUserMemory.Region r;
        VhostUserMemory next;
        try {
            r = VhostUserMemory.map(msg.u64(off + REGION_GPA), msg.u64(off + REGION_SIZE_FIELD),
                    msg.u64(off + REGION_UADDR), msg.u64(off + REGION_MMAP_OFFSET), msg.fd(0));
        } catch (IllegalArgumentException e) {
            throw new Refused(e.getMessage());
        }
        try {
            next = memory.with(r);
        } catch (IllegalArgumentException e) {
            VhostUserMemory.unmap(r);
            throw new Refused(e.getMessage());
        }
        swapMemory(next);
        return Outcome.OK;
    }

    private Outcome remMemReg() {
        needProtocol(PF_CONFIGURE_MEM_SLOTS);
        needSize(SINGLE_REGION_SIZE);
        // Spec REM_MEM_REG: "If a file descriptor is passed, the back-end MUST close it" (closeUntakenFds does).
        int off = 8;
        VhostUserMemory.Region r = memory.find(msg.u64(off + REGION_GPA), msg.u64(off + REGION_SIZE_FIELD),
                msg.u64(off + REGION_UADDR));
        if (r == null) {
            throw new Refused("no such region");
        }
        swapMemory(memory.without(r));
        return Outcome.OK;
    }

    /**
     * Replaces the memory table. Running rings hold slices of the old mappings: they stop (draining), the table
     * changes, the old regions are unmapped, and the rings restart from where they stopped.
     */
    private void swapMemory(VhostUserMemory next) {
        List<Vring> restart = new ArrayList<>();
        for (Vring v : vrings) {
            if (v.running()) {
                v.stop();
                restart.add(v);
            }
        }
        iotlb.clear(); // entries point into the old mappings
        VhostUserMemory old = memory;
        memory = next;
        old.unmapRemoved(next);
        for (Vring v : restart) {
            start(v);
        }
    }

    // ---- vrings ----

    private Outcome setVringNum() {
        needSize(STATE_SIZE);
        Vring v = vring(Integer.toUnsignedLong(msg.u32(0)));
        int num = msg.u32(4);
        if (v.running()) {
            throw new Refused("queue " + v.index + " is running");
        }
        // virtio 1.2 §2.6: at most 32768 entries; the device's own maximum bounds it further.
        if (num < 1 || num > Math.min(device.maxQueueSize(), VirtioRing.MAX_QUEUE_SIZE)) {
            throw new Refused("queue size " + Integer.toUnsignedString(num) + " (1.." + device.maxQueueSize() + ")");
        }
        v.num = num;
        return Outcome.OK;
    }

    private Outcome setVringAddr() {
        needSize(ADDR_SIZE);
        Vring v = vring(Integer.toUnsignedLong(msg.u32(ADDR_INDEX)));
        // Spec SET_VRING_ADDR: flags bit 0 (VHOST_VRING_F_LOG) asks for used-ring logging, which needs the
        // VHOST_F_LOG_ALL feature; it is not offered (no migration), so no other flag is meaningful either.
        int flags = msg.u32(ADDR_FLAGS);
        if (flags != 0) {
            throw new Refused("vring address flags 0x" + Integer.toHexString(flags) + " (no dirty logging here)");
        }
        boolean wasRunning = v.running();
        v.stop();
        v.descAddr = msg.u64(ADDR_DESC);
        v.usedAddr = msg.u64(ADDR_USED);
        v.availAddr = msg.u64(ADDR_AVAIL);
        v.addrSet = true;
        if (wasRunning) {
            start(v);
        }
        return Outcome.OK;
    }

    private Outcome setVringBase() {
        needSize(STATE_SIZE);
        Vring v = vring(Integer.toUnsignedLong(msg.u32(0)));
        if (v.running()) {
            throw new Refused("queue " + v.index + " is running");
        }
        v.setBase(msg.u32(4), packed());
        return Outcome.OK;
    }

    private Outcome getVringBase() {
        needSize(STATE_SIZE);
        Vring v = vring(Integer.toUnsignedLong(msg.u32(0)));
        // Spec "Ring states": the back-end stops the ring on GET_VRING_BASE; the kick fd is no longer used.
        v.stop();
        v.closeKick();
        int base = v.base(packed());
        return send(msg.reply(STATE_SIZE).putU32(0, v.index).putU32(4, base)) ? Outcome.REPLIED : Outcome.DISCONNECT;
    }

    /** The fd of a SET_VRING_KICK/CALL/ERR message, or -1 for NOFD; sets {@code index} via the return of vringOf. */
    private int vringFd() {
        needSize(U64_SIZE);
        long u = msg.u64(0);
        if ((u & ~(VRING_IDX_MASK | VRING_NOFD_MASK)) != 0) {
            throw new Refused("payload 0x" + Long.toHexString(u) + " has bits beyond the index and NOFD flag");
        }
        boolean nofd = (u & VRING_NOFD_MASK) != 0;
        // Spec SET_VRING_KICK: "Bit 8 is the invalid FD flag. This flag is set when there is no file descriptor".
        if (nofd != (msg.fdCount() == 0) || msg.fdCount() > 1) {
            throw new Refused((nofd ? "NOFD flag with " : "no NOFD flag with ") + msg.fdCount() + " fds");
        }
        vring(u & VRING_IDX_MASK);
        return nofd ? -1 : msg.takeFd(0);
    }

    private Outcome setVringKick() {
        int fd = vringFd();
        Vring v = vrings[(int) (msg.u64(0) & VRING_IDX_MASK)];
        v.stop();
        v.setKick(fd, fd < 0);
        return start(v);
    }

    private Outcome setVringCall() {
        int fd = vringFd();
        vrings[(int) (msg.u64(0) & VRING_IDX_MASK)].setCall(fd);
        return Outcome.OK;
    }

    private Outcome setVringErr() {
        int fd = vringFd();
        vrings[(int) (msg.u64(0) & VRING_IDX_MASK)].setErr(fd);
        return Outcome.OK;
    }

    private Outcome setVringEnable() {
        needSize(STATE_SIZE);
        Vring v = vring(Integer.toUnsignedLong(msg.u32(0)));
        int enable = msg.u32(4);
        if (enable != 0 && enable != 1) {
            throw new Refused("enable value " + enable);
        }
        v.enabled = enable == 1;
        if (!v.enabled) {
            v.stop();
            return Outcome.OK;
        }
        return start(v);
    }

    private Outcome start(Vring v) {
        String why = v.startIfReady(device, features, (features & bit(F_PROTOCOL_FEATURES)) != 0, memory, iotlb,
                inflight);
        if (why != null) {
            throw new Refused(why);
        }
        return Outcome.OK;
    }

    private boolean anyRunning() {
        for (Vring v : vrings) {
            if (v.running()) {
                return true;
            }
        }
        return false;
    }

    private void stopAll() {
        for (Vring v : vrings) {
            v.stop();
        }
    }

    // ---- backend channel and IOTLB ----

    private Outcome setBackendReqFd() {
        needProtocol(PF_BACKEND_REQ);
        if (msg.fdCount() != 1) {
            throw new Refused("needs exactly one fd, got " + msg.fdCount());
        }
        BackendChannel old = backend;
        backend = new BackendChannel(msg.takeFd(0), (protocolFeatures & bit(PF_REPLY_ACK)) != 0);
        iotlb.channel(backend);
        if (old != null) {
            old.close();
        }
        return Outcome.OK;
    }

    private Outcome iotlbMsg() {
        needSize(IOTLB_SIZE);
        // Spec IOTLB_MSG: "should be send only when VIRTIO_F_IOMMU_PLATFORM feature has been successfully negotiated"
        if ((features & bit(F_ACCESS_PLATFORM)) == 0) {
            throw new Refused("VIRTIO_F_IOMMU_PLATFORM was not negotiated");
        }
        long iova = msg.u64(IOTLB_IOVA);
        long size = msg.u64(IOTLB_SIZE_FIELD);
        int type = msg.u8(IOTLB_TYPE) & 0xff;
        switch (type) {
            case IOTLB_UPDATE -> {
                iotlbUpdates++;
                String why = iotlb.update(iova, size, msg.u64(IOTLB_UADDR), msg.u8(IOTLB_PERM) & 0xff, memory);
                if (why != null) {
                    throw new Refused(why);
                }
            }
            case IOTLB_INVALIDATE -> {
                iotlbInvalidations++;
                iotlb.invalidate(iova, size);
                // Reply late, never early: no poller may still use a translation of the range.
                List<QueueQuiescence> running = new ArrayList<>();
                for (Vring v : vrings) {
                    QueueQuiescence q = v.quiescence();
                    if (q != null) {
                        running.add(q);
                    }
                }
                boolean graceOk = QueueQuiescence.awaitGrace(running, GRACE_TIMEOUT_NANOS);
                if (VhostUserIotlb.TRACE) {
                    VhostUserIotlb.trace("G %s queues=%d", graceOk, running.size());
                }
                if (!graceOk) {
                    log("a queue did not reach a quiescent point within 5 s of an IOTLB invalidation; stopping rings");
                    stopAll();
                }
            }
            case IOTLB_BATCH_BEGIN, IOTLB_BATCH_END -> { } // updates apply one by one anyway
            default -> throw new Refused("IOTLB message type " + type);
        }
        return Outcome.OK;
    }

    // ---- config space ----

    private Outcome getConfig() {
        needProtocol(PF_CONFIG);
        needSize(CONFIG_HEADER_SIZE);
        int offset = msg.u32(0);
        int size = msg.u32(4);
        // Spec GET_CONFIG: the reply size MUST match the request; "zero length of payload to indicate an error".
        if (offset < 0 || size < 0 || size > MAX_CONFIG_SIZE || offset > MAX_CONFIG_SIZE - size
                || msg.size() != CONFIG_HEADER_SIZE + size) {
            refused++;
            log("GET_CONFIG refused: offset " + Integer.toUnsignedString(offset) + " size " + Integer.toUnsignedString(size)
                    + " in a payload of " + msg.size());
            return send(msg.reply(0)) ? Outcome.REPLIED : Outcome.DISCONNECT;
        }
        byte[] config = device.configSpace();
        MemorySegment p = msg.payload();
        p.asSlice(CONFIG_HEADER_SIZE, size).fill((byte) 0);
        int n = Math.max(0, Math.min(size, config.length - offset));
        if (n > 0) {
            MemorySegment.copy(MemorySegment.ofArray(config), offset, p, CONFIG_HEADER_SIZE, n);
        }
        return send(msg.reply(CONFIG_HEADER_SIZE + size)) ? Outcome.REPLIED : Outcome.DISCONNECT;
    }

    /**
     * Spec SET_CONFIG: the driver wrote the config space. Everything is checked before the device sees the write
     * (whole or nothing): flags (only FRONTEND; MIGRATION needs live migration, which is not offered, as
     * qemu-storage-daemon and libvhost-user's vhost-user-blk refuse it too), a non-empty size matching the payload,
     * the range inside the device's config space, and a negotiated feature that makes a field writable. The device
     * then decides which fields and values it accepts. A refusal is an error ack (REPLY_ACK); without REPLY_ACK the
     * frontend cannot be told.
     */
    private Outcome setConfig() {
        needProtocol(PF_CONFIG);
        needSize(CONFIG_HEADER_SIZE);
        int offset = msg.u32(CONFIG_OFFSET);
        int size = msg.u32(CONFIG_SIZE_FIELD);
        int flags = msg.u32(CONFIG_FLAGS);
        if (flags != CONFIG_TYPE_FRONTEND) {
            throw new Refused(flags == CONFIG_TYPE_MIGRATION ? "migration-type config write (no live migration here)"
                    : "flags 0x" + Integer.toHexString(flags));
        }
        if (size <= 0 || size > MAX_CONFIG_SIZE || msg.size() != CONFIG_HEADER_SIZE + size) {
            throw new Refused("size " + Integer.toUnsignedString(size) + " in a payload of " + msg.size() + " bytes");
        }
        int configSize = device.configSpace().length;
        if (offset < 0 || offset > configSize - size) {
            throw new Refused("bytes " + Integer.toUnsignedString(offset) + ".." + (Integer.toUnsignedLong(offset) + size)
                    + " lie outside the " + configSize + "-byte config space");
        }
        long negotiated = negotiatedFeatures();
        if (!device.acceptsConfigWrites(negotiated)) {
            throw new Refused("no config field is writable with the negotiated features 0x" + Long.toHexString(negotiated));
        }
        byte[] data = new byte[size];
        MemorySegment.copy(msg.payload(), ValueLayout.JAVA_BYTE, CONFIG_HEADER_SIZE, data, 0, size);
        String why = device.writeConfig(offset, data, negotiated);
        if (why != null) {
            throw new Refused(why);
        }
        configWrites++;
        log("config write at offset " + offset + " applied: " + HexFormat.of().formatHex(data, 0, Math.min(size, 16))
                + (size > 16 ? "..." : ""));
        return Outcome.OK;
    }

    /** Tells the frontend the config space changed (resize); false if it cannot be told. */
    boolean configChanged() {
        BackendChannel b = backend;
        return b != null && (protocolFeatures & bit(PF_CONFIG)) != 0 && b.configChanged(2000);
    }

    // ---- inflight tracking ----

    private Outcome getInflightFd() {
        needProtocol(PF_INFLIGHT_SHMFD);
        needSize(INFLIGHT_SIZE);
        int numQueues = msg.u16(16) & 0xffff;
        int queueSize = msg.u16(18) & 0xffff;
        if (numQueues < 1 || numQueues > vrings.length || queueSize < 1 || queueSize > device.maxQueueSize()) {
            throw new Refused("inflight buffer for " + numQueues + " queues of " + queueSize);
        }
        InflightRegion r = InflightRegion.create(numQueues, queueSize);
        replaceInflight(r);
        msg.reply(INFLIGHT_SIZE).putU64(0, r.mmapSize()).putU64(8, 0)
                .putU16(16, (short) numQueues).putU16(18, (short) queueSize);
        return send(msg, r.fd()) ? Outcome.REPLIED : Outcome.DISCONNECT;
    }

    private Outcome setInflightFd() {
        needProtocol(PF_INFLIGHT_SHMFD);
        needSize(INFLIGHT_SIZE);
        if (msg.fdCount() != 1) {
            throw new Refused("needs exactly one fd, got " + msg.fdCount());
        }
        int numQueues = msg.u16(16) & 0xffff;
        int queueSize = msg.u16(18) & 0xffff;
        if (numQueues > vrings.length) {
            throw new Refused("inflight buffer for " + numQueues + " queues; the device has " + vrings.length);
        }
        try {
            replaceInflight(InflightRegion.attach(msg.takeFd(0), msg.u64(0), msg.u64(8), numQueues, queueSize));
        } catch (IllegalArgumentException e) {
            throw new Refused(e.getMessage());
        }
        return Outcome.OK;
    }

    private void replaceInflight(InflightRegion r) {
        if (anyRunning()) {
            r.close();
            throw new Refused("rings are running");
        }
        if (inflight != null) {
            inflight.close();
        }
        inflight = r;
    }

    // ---- teardown ----

    /** After {@link #run} returned: stops every ring and releases every fd and mapping of this connection. */
    void close() {
        for (Vring v : vrings) {
            v.reset();
        }
        iotlb.clear();
        memory.unmapRemoved(null);
        memory = VhostUserMemory.EMPTY;
        if (backend != null) {
            backend.close();
            backend = null;
        }
        if (inflight != null) {
            inflight.close();
            inflight = null;
        }
    }

    private void log(String s) {
        server.log(s);
    }
}
