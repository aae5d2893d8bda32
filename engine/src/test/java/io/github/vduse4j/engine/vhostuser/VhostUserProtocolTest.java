package io.github.vduse4j.engine.vhostuser;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.UnixSocket;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The vhost-user back-end against hand-written messages over a real socket: every request type it implements,
 * and malformed input (bad sizes, unknown requests, missing or surplus fds, bad regions, rings outside memory),
 * which must be answered with an error or a clean disconnect, after which the server still serves.
 */
class VhostUserProtocolTest {
    @TempDir
    Path dir;
    Path sock;
    VhostUserServer server;
    final EchoDevice device = new EchoDevice();

    @BeforeEach
    void start() {
        sock = dir.resolve("vu.sock");
        server = VhostUserServer.start(sock, device, true);
    }

    @AfterEach
    void stop() {
        server.close();
        assertFalse(Files.exists(sock), "socket file removed on close");
    }

    private TestFrontend connect() {
        return new TestFrontend(sock);
    }

    /** The server is alive: a new connection negotiates features. */
    private void assertServes() {
        try (TestFrontend f = connect()) {
            assertEquals(EchoDevice.FEATURES | (1L << F_PROTOCOL_FEATURES), f.getU64(GET_FEATURES));
        }
    }

    private static long openFds() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void featuresAndQueriesAreAnswered() {
        try (TestFrontend f = connect()) {
            assertEquals(EchoDevice.FEATURES | (1L << F_PROTOCOL_FEATURES), f.getU64(GET_FEATURES));
            long pf = f.getU64(GET_PROTOCOL_FEATURES);
            for (int bit : new int[] {PF_MQ, PF_REPLY_ACK, PF_BACKEND_REQ, PF_CONFIG, PF_INFLIGHT_SHMFD,
                    PF_RESET_DEVICE, PF_CONFIGURE_MEM_SLOTS}) {
                assertTrue((pf & (1L << bit)) != 0, "protocol feature " + bit);
            }
            f.handshake();
            assertEquals(2, f.getU64(GET_QUEUE_NUM));
            assertEquals(VhostUserMemory.MAX_SLOTS, f.getU64(GET_MAX_MEM_SLOTS));
            assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, (1L << 32) | (1L << F_PROTOCOL_FEATURES))));
            assertEquals(1L << 32, server.negotiatedFeatures());
            // a feature that was not offered
            assertNotEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, 1L << 40)));
            assertNotEquals(0, f.ack(SET_PROTOCOL_FEATURES, 8, m -> m.putU64(0, 1L << 60)));
            // config space: the requested window, zeros past the device's bytes
            f.send(GET_CONFIG, 0, CONFIG_HEADER_SIZE + 64, m -> m.putU32(0, 4).putU32(4, 64));
            VhostUserMessage r = f.reply(GET_CONFIG);
            assertEquals(CONFIG_HEADER_SIZE + 64, r.size());
            assertEquals(5, r.u8(CONFIG_HEADER_SIZE));          // config[4]
            assertEquals(60, r.u8(CONFIG_HEADER_SIZE + 55));    // config[59]
            assertEquals(0, r.u8(CONFIG_HEADER_SIZE + 56));     // past the end
            // bad GET_CONFIG: size beyond 256, and a payload that does not match its size field
            f.send(GET_CONFIG, 0, CONFIG_HEADER_SIZE, m -> m.putU32(0, 0).putU32(4, 4096));
            assertEquals(0, f.reply(GET_CONFIG).size());
            f.send(GET_CONFIG, 0, CONFIG_HEADER_SIZE + 8, m -> m.putU32(0, 0).putU32(4, 16));
            assertEquals(0, f.reply(GET_CONFIG).size());
            assertNotEquals(0, f.ack(SET_CONFIG, CONFIG_HEADER_SIZE + 4, m -> m.putU32(0, 0).putU32(4, 4)));
            assertEquals(0, f.ack(RESET_OWNER, 0, m -> { }));
            assertEquals(0, f.ack(RESET_DEVICE, 0, m -> { }));
        }
        assertServes();
    }

    @Test
    void unknownRequestsAndShortPayloadsGetErrorReplies() {
        try (TestFrontend f = connect()) {
            f.handshake();
            assertNotEquals(0, f.ack(999, 0, m -> { }));
            assertNotEquals(0, f.ack(SET_LOG_BASE, 16, m -> { }));
            assertNotEquals(0, f.ack(SET_VRING_NUM, 4, m -> m.putU32(0, 0)));          // needs 8 bytes
            assertNotEquals(0, f.ack(SET_VRING_ADDR, 16, m -> m.putU32(0, 0)));        // needs 40
            assertNotEquals(0, f.ack(SET_FEATURES, 0, m -> { }));
            assertNotEquals(0, f.ack(SET_MEM_TABLE, 4, m -> { }));
            assertNotEquals(0, f.ack(IOTLB_MSG, 8, m -> { }));
            // vring index out of range, sizes out of range
            assertNotEquals(0, f.ack(SET_VRING_NUM, 8, m -> m.putU32(0, 2).putU32(4, 64)));
            assertNotEquals(0, f.ack(SET_VRING_NUM, 8, m -> m.putU32(0, -1).putU32(4, 64)));
            assertNotEquals(0, f.ack(SET_VRING_NUM, 8, m -> m.putU32(0, 0).putU32(4, 0)));
            assertNotEquals(0, f.ack(SET_VRING_NUM, 8, m -> m.putU32(0, 0).putU32(4, 512)));
            assertNotEquals(0, f.ack(SET_VRING_ENABLE, 8, m -> m.putU32(0, 0).putU32(4, 7)));
            assertNotEquals(0, f.ack(GET_INFLIGHT_FD, INFLIGHT_SIZE, m -> m.putU16(16, (short) 9).putU16(18, (short) 64)));
            // IOTLB before VIRTIO_F_IOMMU_PLATFORM was negotiated
            assertNotEquals(0, f.ack(IOTLB_MSG, IOTLB_SIZE, m -> m.putU8(IOTLB_TYPE, (byte) IOTLB_UPDATE)));
            // still fine afterwards
            assertEquals(2, f.getU64(GET_QUEUE_NUM));
        }
        assertTrue(server.refusedMessages() >= 14, "refused " + server.refusedMessages());
        assertServes();
    }

    @Test
    void framingErrorsDisconnectCleanly() {
        try (TestFrontend f = connect()) { // payload larger than any request can have
            f.send(GET_FEATURES, 0, 0, m -> { });
            f.reply(GET_FEATURES);
            MemorySegment hdr = MemorySegment.ofArray(new byte[12]);
            hdr.set(ValueLayout.JAVA_INT_UNALIGNED, 0, SET_MEM_TABLE);
            hdr.set(ValueLayout.JAVA_INT_UNALIGNED, 4, VERSION);
            hdr.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 1 << 20);
            UnixSocket.sendmsg(f.socket, hdr);
            assertTrue(f.closedByPeer());
        }
        try (TestFrontend f = connect()) { // wrong version
            f.send(GET_FEATURES, 0, 0, m -> { });
            f.reply(GET_FEATURES);
            MemorySegment hdr = MemorySegment.ofArray(new byte[12]);
            hdr.set(ValueLayout.JAVA_INT_UNALIGNED, 0, GET_FEATURES);
            hdr.set(ValueLayout.JAVA_INT_UNALIGNED, 4, 2);
            UnixSocket.sendmsg(f.socket, hdr);
            assertTrue(f.closedByPeer());
        }
        long before = openFds();
        try (TestFrontend f = connect()) { // more fds than any message may carry
            int[] fds = new int[12];
            for (int i = 0; i < fds.length; i++) {
                fds[i] = EventFd.create(0, EventFd.EFD_CLOEXEC);
            }
            f.send(SET_VRING_CALL, 0, 8, m -> m.putU64(0, 0), fds);
            assertTrue(f.closedByPeer());
            for (int fd : fds) {
                FileIo.close(fd);
            }
        }
        try (TestFrontend f = connect()) { // a header cut short, then EOF
            UnixSocket.sendmsg(f.socket, MemorySegment.ofArray(new byte[] {1, 0, 0}));
        }
        assertServes();
        awaitFds(before);
    }

    private static void awaitFds(long expected) {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (openFds() > expected && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertTrue(openFds() <= expected, "fds leaked: " + openFds() + " open, " + expected + " before");
    }

    @Test
    void memoryTablesAreValidated() {
        try (TestFrontend f = connect(); TestFrontend.Memfd mem = TestFrontend.Memfd.create(1 << 20)) {
            f.handshake();
            long before = openFds();
            // regions without fds, more regions than fds, 0 and 9 regions
            assertNotEquals(0, f.ack(SET_MEM_TABLE, 8 + 32, m -> region(m.putU32(0, 1), 8, 0, 1 << 20, mem.uaddr(), 0)));
            assertNotEquals(0, f.ack(SET_MEM_TABLE, 8 + 64, m -> {
                region(m.putU32(0, 2), 8, 0, 1 << 19, mem.uaddr(), 0);
                region(m, 40, 1 << 19, 1 << 19, mem.uaddr() + (1 << 19), 1 << 19);
            }, mem.fd()));
            assertNotEquals(0, f.ack(SET_MEM_TABLE, 8, m -> m.putU32(0, 0)));
            assertNotEquals(0, f.ack(SET_MEM_TABLE, 8 + 32 * 8, m -> m.putU32(0, 9), mem.fd()));
            // beyond the end of the memfd, size 0, wrapping addresses, offset out of range
            assertNotEquals(0, f.ack(SET_MEM_TABLE, 40, m -> region(m.putU32(0, 1), 8, 0, 2 << 20, mem.uaddr(), 0), mem.fd()));
            assertNotEquals(0, f.ack(SET_MEM_TABLE, 40, m -> region(m.putU32(0, 1), 8, 0, 0, mem.uaddr(), 0), mem.fd()));
            assertNotEquals(0, f.ack(SET_MEM_TABLE, 40, m -> region(m.putU32(0, 1), 8, -4096, 8192, mem.uaddr(), 0), mem.fd()));
            assertNotEquals(0, f.ack(SET_MEM_TABLE, 40, m -> region(m.putU32(0, 1), 8, 0, 4096, mem.uaddr(), -1L), mem.fd()));
            // two regions overlapping in guest addresses
            assertNotEquals(0, f.ack(SET_MEM_TABLE, 8 + 64, m -> {
                region(m.putU32(0, 2), 8, 0, 1 << 19, mem.uaddr(), 0);
                region(m, 40, 4096, 1 << 19, mem.uaddr() + (1 << 19), 1 << 19);
            }, mem.fd(), mem.fd()));
            // a good table, then ADD/REM_MEM_REG
            assertEquals(0, f.ack(SET_MEM_TABLE, 8 + 64, m -> {
                region(m.putU32(0, 2), 8, 0, 1 << 19, mem.uaddr(), 0);
                region(m, 40, 1L << 32, 1 << 18, mem.uaddr() + (1 << 19), 1 << 19);
            }, mem.fd(), mem.fd()));
            assertEquals(0, f.ack(ADD_MEM_REG, 40, m -> region(m, 8, 1L << 33, 4096, mem.uaddr() + (3 << 18), 3 << 18), mem.fd()));
            assertNotEquals(0, f.ack(ADD_MEM_REG, 40, m -> region(m, 8, 1L << 33, 4096, 1 << 12, 0), mem.fd())); // overlap
            assertNotEquals(0, f.ack(ADD_MEM_REG, 40, m -> region(m, 8, 1L << 34, 4096, 1 << 12, 0)));          // no fd
            assertNotEquals(0, f.ack(REM_MEM_REG, 40, m -> region(m, 8, 1L << 35, 4096, 1 << 12, 0)));          // unknown
            assertEquals(0, f.ack(REM_MEM_REG, 40, m -> region(m, 8, 1L << 33, 4096, mem.uaddr() + (3 << 18), 0)));
            awaitFds(before); // every fd the frontend sent was closed, mapped or not
        }
        assertServes();
    }

    static VhostUserMessage region(VhostUserMessage m, int at, long gpa, long size, long uaddr, long offset) {
        return m.putU64(at + REGION_GPA, gpa).putU64(at + REGION_SIZE_FIELD, size).putU64(at + REGION_UADDR, uaddr)
                .putU64(at + REGION_MMAP_OFFSET, offset);
    }

    @Test
    void vringsOutsideTheMemoryTableAreRefused() {
        try (TestFrontend f = connect(); TestFrontend.Memfd mem = TestFrontend.Memfd.create(1 << 20)) {
            f.handshake();
            assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, (1L << 32) | (1L << F_PROTOCOL_FEATURES))));
            assertEquals(0, f.ack(SET_MEM_TABLE, 40, m -> region(m.putU32(0, 1), 8, 0, 1 << 20, mem.uaddr(), 0), mem.fd()));
            assertEquals(0, f.ack(SET_VRING_NUM, 8, m -> m.putU32(0, 0).putU32(4, 64)));
            assertEquals(0, f.ack(SET_VRING_BASE, 8, m -> m.putU32(0, 0).putU32(4, 0)));
            // the used ring ends past the region
            assertEquals(0, f.ack(SET_VRING_ADDR, ADDR_SIZE, m -> m.putU32(ADDR_INDEX, 0).putU64(ADDR_DESC, mem.uaddr())
                    .putU64(ADDR_AVAIL, mem.uaddr() + 4096).putU64(ADDR_USED, mem.uaddr() + (1 << 20) - 64)));
            int kick = EventFd.create(0, EventFd.EFD_CLOEXEC);
            // kick without fd and without the NOFD flag, and NOFD with an fd
            assertNotEquals(0, f.ack(SET_VRING_KICK, 8, m -> m.putU64(0, 0)));
            assertNotEquals(0, f.ack(SET_VRING_KICK, 8, m -> m.putU64(0, VRING_NOFD_MASK), kick));
            assertNotEquals(0, f.ack(SET_VRING_KICK, 8, m -> m.putU64(0, 1L << 20), kick));
            assertEquals(0, f.ack(SET_VRING_KICK, 8, m -> m.putU64(0, 0), kick));
            assertNotEquals(0, f.ack(SET_VRING_ENABLE, 8, m -> m.putU32(0, 0).putU32(4, 1))); // cannot start
            // a misaligned descriptor table, then user addresses nowhere near the table
            assertEquals(0, f.ack(SET_VRING_ADDR, ADDR_SIZE, m -> m.putU32(ADDR_INDEX, 0).putU64(ADDR_DESC, mem.uaddr() + 2)
                    .putU64(ADDR_AVAIL, mem.uaddr() + 4096).putU64(ADDR_USED, mem.uaddr() + 8192)));
            assertNotEquals(0, f.ack(SET_VRING_ENABLE, 8, m -> m.putU32(0, 0).putU32(4, 1)));
            assertEquals(0, f.ack(SET_VRING_ADDR, ADDR_SIZE, m -> m.putU32(ADDR_INDEX, 0).putU64(ADDR_DESC, 0x1000)
                    .putU64(ADDR_AVAIL, 0x2000).putU64(ADDR_USED, 0x3000)));
            assertNotEquals(0, f.ack(SET_VRING_ENABLE, 8, m -> m.putU32(0, 0).putU32(4, 1)));
            // dirty logging of the used ring (VHOST_VRING_F_LOG) needs VHOST_F_LOG_ALL, which is not offered
            assertNotEquals(0, f.ack(SET_VRING_ADDR, ADDR_SIZE, m -> m.putU32(ADDR_INDEX, 0).putU32(ADDR_FLAGS, 1)
                    .putU64(ADDR_DESC, mem.uaddr()).putU64(ADDR_AVAIL, mem.uaddr() + 4096)
                    .putU64(ADDR_USED, mem.uaddr() + 8192).putU64(ADDR_LOG, 0x1000)));
            // a good ring starts; GET_VRING_BASE stops it
            assertEquals(0, f.ack(SET_VRING_ADDR, ADDR_SIZE, m -> m.putU32(ADDR_INDEX, 0).putU64(ADDR_DESC, mem.uaddr())
                    .putU64(ADDR_AVAIL, mem.uaddr() + 4096).putU64(ADDR_USED, mem.uaddr() + 8192)));
            assertEquals(0, f.ack(SET_VRING_ENABLE, 8, m -> m.putU32(0, 0).putU32(4, 1)));
            assertNotEquals(0, f.ack(SET_VRING_NUM, 8, m -> m.putU32(0, 0).putU32(4, 32))); // running
            f.send(GET_VRING_BASE, 0, 8, m -> m.putU32(0, 0));
            assertEquals(0, f.reply(GET_VRING_BASE).u32(4));
            // non power of two split ring
            assertEquals(0, f.ack(SET_VRING_NUM, 8, m -> m.putU32(0, 0).putU32(4, 48)));
            int kick2 = EventFd.create(0, EventFd.EFD_CLOEXEC);
            assertNotEquals(0, f.ack(SET_VRING_KICK, 8, m -> m.putU64(0, 0), kick2));
            FileIo.close(kick);
            FileIo.close(kick2);
        }
        assertServes();
    }

    @Test
    void backendChannelInflightAndIotlbMessages() {
        try (TestFrontend f = connect(); TestFrontend.Memfd mem = TestFrontend.Memfd.create(1 << 20)) {
            f.handshake();
            int[] pair = UnixSocket.socketPair();
            assertNotEquals(0, f.ack(SET_BACKEND_REQ_FD, 0, m -> { }));          // no fd
            assertEquals(0, f.ack(SET_BACKEND_REQ_FD, 0, m -> { }, pair[1]));
            FileIo.close(pair[1]);
            long features = (1L << 32) | (1L << 33) | (1L << F_PROTOCOL_FEATURES);
            assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, features)));
            assertEquals(0, f.ack(SET_MEM_TABLE, 40, m -> region(m.putU32(0, 1), 8, 0, 1 << 20, mem.uaddr(), 0), mem.fd()));
            // IOTLB: update inside the table, outside it, bad permission, invalidate, unknown type
            assertEquals(0, f.ack(IOTLB_MSG, IOTLB_SIZE, m -> iotlb(m, 0x10000, 0x8000, mem.uaddr(), 3, IOTLB_UPDATE)));
            assertNotEquals(0, f.ack(IOTLB_MSG, IOTLB_SIZE, m -> iotlb(m, 0x90000, 0x8000, 0x1000, 3, IOTLB_UPDATE)));
            assertNotEquals(0, f.ack(IOTLB_MSG, IOTLB_SIZE, m -> iotlb(m, 0x90000, 0x8000, mem.uaddr(), 0, IOTLB_UPDATE)));
            assertNotEquals(0, f.ack(IOTLB_MSG, IOTLB_SIZE, m -> iotlb(m, -4096, 0x8000, mem.uaddr(), 3, IOTLB_UPDATE)));
            assertEquals(0, f.ack(IOTLB_MSG, IOTLB_SIZE, m -> iotlb(m, 0x10000, 0x1000, 0, 0, IOTLB_INVALIDATE)));
            assertNotEquals(0, f.ack(IOTLB_MSG, IOTLB_SIZE, m -> iotlb(m, 0, 0, 0, 0, 77)));
            // inflight buffer: GET gives an fd of the right size, SET takes one back
            f.send(GET_INFLIGHT_FD, 0, INFLIGHT_SIZE, m -> m.putU16(16, (short) 2).putU16(18, (short) 64));
            VhostUserMessage r = f.reply(GET_INFLIGHT_FD);
            assertEquals(1, r.fdCount());
            long size = r.u64(0);
            int fd = r.takeFd(0);
            assertEquals(2 * InflightRegion.queueRegionSize(64), size);
            assertEquals(0, f.ack(SET_INFLIGHT_FD, INFLIGHT_SIZE, m -> m.putU64(0, size).putU16(16, (short) 2)
                    .putU16(18, (short) 64), fd));
            assertNotEquals(0, f.ack(SET_INFLIGHT_FD, INFLIGHT_SIZE, m -> m.putU64(0, 1 << 30).putU16(16, (short) 2)
                    .putU16(18, (short) 64), fd));                                                  // beyond the fd
            assertNotEquals(0, f.ack(SET_INFLIGHT_FD, INFLIGHT_SIZE, m -> m.putU64(0, size).putU16(16, (short) 2)
                    .putU16(18, (short) 64)));                                                      // no fd
            FileIo.close(fd);
            FileIo.close(pair[0]);
        }
        assertServes();
    }

    static VhostUserMessage iotlb(VhostUserMessage m, long iova, long size, long uaddr, int perm, int type) {
        return m.putU64(IOTLB_IOVA, iova).putU64(IOTLB_SIZE_FIELD, size).putU64(IOTLB_UADDR, uaddr)
                .putU8(IOTLB_PERM, (byte) perm).putU8(IOTLB_TYPE, (byte) type);
    }

    @Test
    void randomGarbageNeverKillsTheServer() {
        SplittableRandom rnd = new SplittableRandom(7);
        for (int round = 0; round < 40; round++) {
            try (TestFrontend f = connect()) {
                if (rnd.nextBoolean()) {
                    f.handshake();
                }
                for (int i = 0; i < 20; i++) {
                    int request = rnd.nextInt(45);
                    int size = rnd.nextInt(4) == 0 ? rnd.nextInt(300) : new int[] {0, 8, 24, 32, 40, 72}[rnd.nextInt(6)];
                    byte[] junk = new byte[size];
                    rnd.nextBytes(junk);
                    if (request == SET_MEM_TABLE || request == ADD_MEM_REG) {
                        continue; // random user addresses would map random memory: covered above
                    }
                    try {
                        f.send(request, rnd.nextBoolean() ? FLAG_NEED_REPLY : 0, Math.min(size, MAX_PAYLOAD),
                                m -> MemorySegment.copy(junk, 0, m.payload(), ValueLayout.JAVA_BYTE, 0,
                                        Math.min(size, MAX_PAYLOAD)));
                    } catch (RuntimeException e) {
                        break; // the server hung up on us: fine
                    }
                }
            }
        }
        assertServes();
    }
}
