package io.github.vduse4j.engine.vhostuser;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.AfterAll;

/**
 * Coverage-guided fuzzing (Jazzer) of the vhost-user back-end: each input is one connection of a hostile frontend
 * sending a message stream — headers with any request, flags and size; payloads either raw or shaped like the
 * message (memory tables and single regions with fuzzed gpa/size/uaddr/offset, vring num/addr/base/enable, IOTLB
 * update/invalidate/miss/batch messages with fuzzed ranges and permissions, inflight fd descriptions, config
 * reads/writes, status); fds as memfds of fuzzed sizes, eventfds, or none, or more than the message takes.
 *
 * <p>Invariants: every message the back-end sends is a well-formed reply (REPLY flag, version 1, the request of a
 * message we sent, a payload size within the protocol's); a final GET_FEATURES is answered within 5 s unless the
 * back-end hung up (bounded work per message, no hang); after the connection the server accepts a new frontend and
 * negotiates features (it survived); no thread of the process died of an uncaught exception.
 */
class VhostUserFuzzTest {
    private static final int[] REQUESTS = {GET_FEATURES, SET_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE,
        SET_LOG_BASE, SET_LOG_FD, SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE, SET_VRING_KICK,
        SET_VRING_CALL, SET_VRING_ERR, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, SET_VRING_ENABLE,
        SET_BACKEND_REQ_FD, IOTLB_MSG, GET_CONFIG, SET_CONFIG, GET_INFLIGHT_FD, SET_INFLIGHT_FD, RESET_DEVICE,
        VRING_KICK, GET_MAX_MEM_SLOTS, ADD_MEM_REG, REM_MEM_REG, SET_STATUS, GET_STATUS};
    private static final long[] SIZES = {0, 1, 4095, 4096, 8192, 65536, 1 << 20};
    private static final ConcurrentLinkedQueue<Throwable> UNCAUGHT = new ConcurrentLinkedQueue<>();
    private static final Path DIR;
    private static final Path SOCK;
    private static final VhostUserServer SERVER;
    /**
     * Memfds of the common sizes, reused by every input (the back-end gets its own fd and mapping per message; the
     * memfd's contents carry over, which no invariant depends on). Other sizes are made and closed per input.
     */
    private static final Map<Long, TestFrontend.Memfd> POOLED = new HashMap<>();

    static {
        try {
            DIR = Files.createTempDirectory("vu-fuzz");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        SOCK = DIR.resolve("vu.sock");
        Thread.setDefaultUncaughtExceptionHandler((t, e) -> UNCAUGHT.add(e));
        SERVER = VhostUserServer.start(SOCK, new EchoDevice(), true);
    }

    @AfterAll
    static void stop() throws IOException {
        SERVER.close();
        for (TestFrontend.Memfd m : POOLED.values()) m.close();
        POOLED.clear();
        Files.deleteIfExists(DIR);
    }

    @FuzzTest(maxDuration = "30s")
    void messages(FuzzedDataProvider data) {
        List<Integer> sent = new ArrayList<>();
        List<TestFrontend.Memfd> memfds = new ArrayList<>();    // what this input's messages refer to
        List<TestFrontend.Memfd> created = new ArrayList<>();   // of those, the ones not pooled: closed at the end
        List<Integer> fds = new ArrayList<>();
        boolean hungUp = false, answered = false;
        try (TestFrontend f = new TestFrontend(SOCK)) {
            if (data.consumeBoolean()) {
                f.handshake();
                sent.add(GET_PROTOCOL_FEATURES);
                drainReplies(f, sent);
            }
            int messages = data.consumeInt(1, 24);
            for (int i = 0; i < messages && data.remainingBytes() > 0 && !hungUp; i++) {
                int request = data.consumeInt(0, 7) == 0 ? data.consumeInt(0, 64) : data.pickValue(REQUESTS);
                int flags = data.consumeBoolean() ? FLAG_NEED_REPLY : 0;
                int[] sendFds = fds(data, memfds, created, fds);
                int size = payloadSize(data, request);
                try {
                    f.send(request, flags, size, m -> payload(data, request, m, size, memfds), sendFds);
                    sent.add(request);
                } catch (RuntimeException e) {
                    hungUp = true;   // the back-end closed the connection (allowed for hostile input)
                }
                if (!hungUp && data.consumeBoolean()) hungUp = !drainReplies(f, sent);
            }
            if (!hungUp) {
                try {
                    f.send(GET_FEATURES, 0, 0, m -> { });
                    sent.add(GET_FEATURES);
                    answered = awaitFinalReply(f, sent);
                } catch (RuntimeException e) {
                    // hung up meanwhile
                }
            }
        } finally {
            for (TestFrontend.Memfd m : created) m.close();
            for (int fd : fds) FileIo.close(fd);
        }
        // The server survived: a new frontend negotiates features. Checked here unless the back-end just answered
        // the final GET_FEATURES (then the next input's connection is the check that the server still accepts).
        if (!answered) {
            try (TestFrontend f = new TestFrontend(SOCK)) {
                assertEquals(EchoDevice.FEATURES | (1L << F_PROTOCOL_FEATURES), f.getU64(GET_FEATURES),
                        "the server serves the next frontend");
            }
        }
        assertTrue(UNCAUGHT.isEmpty(), "uncaught exception in a server thread: " + UNCAUGHT.peek());
    }

    /** Reads the replies already sent; false if the peer hung up. */
    private static boolean drainReplies(TestFrontend f, List<Integer> sent) {
        while (true) {
            VhostUserMessage.ReadResult r = f.pollRead(0);
            if (r == null) return true;
            if (r == VhostUserMessage.ReadResult.CLOSED) return false;
            assertWellFormedReply(f.msg, r, sent);
        }
    }

    /** Waits for the answer to the final GET_FEATURES: true when it came, false if the back-end hung up. */
    private static boolean awaitFinalReply(TestFrontend f, List<Integer> sent) {
        while (true) {
            VhostUserMessage.ReadResult r = f.pollRead(5000);
            assertNotNull(r, "no answer to GET_FEATURES within 5 s: the back-end hangs");
            if (r == VhostUserMessage.ReadResult.CLOSED) return false;
            assertWellFormedReply(f.msg, r, sent);
            if (f.msg.request() == GET_FEATURES && f.msg.size() == U64_SIZE
                    && f.msg.u64(0) == (EchoDevice.FEATURES | (1L << F_PROTOCOL_FEATURES))) {
                return true;
            }
        }
    }

    private static void assertWellFormedReply(VhostUserMessage m, VhostUserMessage.ReadResult r, List<Integer> sent) {
        assertEquals(VhostUserMessage.ReadResult.OK, r, "a malformed message from the back-end: " + m.problem());
        assertTrue((m.flags() & FLAG_REPLY) != 0, "not a reply: " + m);
        assertEquals(VERSION, m.flags() & VERSION_MASK, "version");
        assertTrue(sent.contains(m.request()), "reply to a request never sent: " + m);
        assertTrue(m.size() >= 0 && m.size() <= MAX_PAYLOAD, "payload size " + m.size());
        m.closeUntakenFds();
    }

    private static boolean contains(long[] values, long v) {
        for (long x : values) if (x == v) return true;
        return false;
    }

    private static int[] fds(FuzzedDataProvider data, List<TestFrontend.Memfd> memfds, List<TestFrontend.Memfd> created,
                             List<Integer> fds) {
        int n = data.consumeInt(0, 9) < 6 ? 0 : data.consumeInt(1, 3);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            if (data.consumeBoolean()) {
                long size = data.consumeInt(0, 3) == 0 ? data.consumeLong(0, 1 << 20) : data.pickValue(SIZES);
                TestFrontend.Memfd m = POOLED.get(size);
                if (m == null) {
                    m = TestFrontend.Memfd.create(Math.max(size, 1));
                    if (POOLED.size() < 16 && (size == 0 || contains(SIZES, size))) {
                        POOLED.put(size, m);
                    } else {
                        created.add(m);
                    }
                }
                memfds.add(m);
                out[i] = m.fd();
            } else {
                int fd = EventFd.create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK);
                fds.add(fd);
                out[i] = fd;
            }
        }
        return out;
    }

    private static int payloadSize(FuzzedDataProvider data, int request) {
        if (data.consumeInt(0, 5) == 0) return data.consumeInt(0, MAX_PAYLOAD);
        return switch (request) {
            case SET_FEATURES, SET_PROTOCOL_FEATURES, SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR, SET_LOG_BASE,
                 SET_STATUS -> U64_SIZE;
            case SET_VRING_NUM, SET_VRING_BASE, GET_VRING_BASE, SET_VRING_ENABLE, VRING_KICK -> STATE_SIZE;
            case SET_VRING_ADDR -> ADDR_SIZE;
            case SET_MEM_TABLE -> MEMORY_HEADER_SIZE + REGION_SIZE * data.consumeInt(0, MAX_TABLE_REGIONS);
            case ADD_MEM_REG, REM_MEM_REG -> SINGLE_REGION_SIZE;
            case IOTLB_MSG -> IOTLB_SIZE;
            case GET_CONFIG, SET_CONFIG -> CONFIG_HEADER_SIZE + data.consumeInt(0, 64);
            case GET_INFLIGHT_FD, SET_INFLIGHT_FD -> 24;
            default -> 0;
        };
    }

    private static long addr(FuzzedDataProvider data, List<TestFrontend.Memfd> memfds) {
        return switch (data.consumeInt(0, 3)) {
            case 0 -> data.consumeLong();
            case 1 -> memfds.isEmpty() ? 0 : memfds.get(data.consumeInt(0, memfds.size() - 1)).uaddr()
                    + data.consumeInt(-64, 8192);
            default -> data.consumeLong(0, 1 << 24);
        };
    }

    private static long size(FuzzedDataProvider data) {
        return data.consumeInt(0, 3) == 0 ? data.consumeLong() : data.pickValue(SIZES) + data.consumeInt(-1, 1);
    }

    private static void region(FuzzedDataProvider data, VhostUserMessage m, int at, List<TestFrontend.Memfd> memfds) {
        m.putU64(at + REGION_GPA, data.consumeInt(0, 3) == 0 ? data.consumeLong() : data.consumeLong(0, 1 << 24) & ~0xFFFL);
        m.putU64(at + REGION_SIZE_FIELD, size(data));
        m.putU64(at + REGION_UADDR, addr(data, memfds));
        m.putU64(at + REGION_MMAP_OFFSET, data.consumeInt(0, 3) == 0 ? data.consumeLong() : data.consumeInt(0, 2) * 4096L);
    }

    private static void payload(FuzzedDataProvider data, int request, VhostUserMessage m, int size,
                                List<TestFrontend.Memfd> memfds) {
        boolean raw = data.consumeInt(0, 5) == 0;
        if (raw || size == 0) {
            byte[] b = data.consumeBytes(size);
            for (int i = 0; i < b.length; i++) m.putU8(i, b[i]);
            return;
        }
        switch (request) {
            case SET_MEM_TABLE -> {
                int n = (size - MEMORY_HEADER_SIZE) / REGION_SIZE;
                m.putU32(0, data.consumeBoolean() ? n : data.consumeInt());
                for (int i = 0; i < n; i++) region(data, m, MEMORY_HEADER_SIZE + REGION_SIZE * i, memfds);
            }
            case ADD_MEM_REG, REM_MEM_REG -> region(data, m, 8, memfds);
            case SET_VRING_NUM, SET_VRING_BASE, GET_VRING_BASE, SET_VRING_ENABLE, VRING_KICK -> {
                m.putU32(0, data.consumeInt(0, 3));
                m.putU32(4, data.consumeBoolean() ? 1 << data.consumeInt(0, 16) : data.consumeInt());
            }
            case SET_VRING_ADDR -> {
                m.putU32(ADDR_INDEX, data.consumeInt(0, 3));
                m.putU32(ADDR_FLAGS, data.consumeInt(0, 1));
                for (int off : new int[] {ADDR_DESC, ADDR_USED, ADDR_AVAIL, ADDR_LOG}) m.putU64(off, addr(data, memfds));
            }
            case IOTLB_MSG -> {
                m.putU64(IOTLB_IOVA, data.consumeInt(0, 3) == 0 ? data.consumeLong() : data.consumeLong(0, 1 << 20));
                m.putU64(IOTLB_SIZE_FIELD, size(data));
                m.putU64(IOTLB_UADDR, addr(data, memfds));
                m.putU8(IOTLB_PERM, (byte) data.consumeInt(0, 4));
                m.putU8(IOTLB_TYPE, (byte) data.consumeInt(0, 7));
            }
            case GET_INFLIGHT_FD, SET_INFLIGHT_FD -> {
                m.putU64(0, size(data));                        // mmap_size
                m.putU64(8, data.consumeInt(0, 3) == 0 ? data.consumeLong() : data.consumeInt(0, 2) * 4096L);
                m.putU16(16, (short) data.consumeInt(0, 4));    // num_queues
                m.putU16(18, (short) (data.consumeBoolean() ? 1 << data.consumeInt(0, 15) : data.consumeInt(0, 0xFFFF)));
            }
            case GET_CONFIG, SET_CONFIG -> {
                m.putU32(0, data.consumeInt(0, 3) == 0 ? data.consumeInt() : data.consumeInt(0, 64));   // offset
                m.putU32(4, data.consumeBoolean() ? size - CONFIG_HEADER_SIZE : data.consumeInt());   // size
                m.putU32(8, data.consumeInt(0, 1));                                                    // flags
            }
            default -> {
                if (size >= 8) m.putU64(0, data.consumeLong());
            }
        }
    }
}
