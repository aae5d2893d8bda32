package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.engine.inflight.PackedInflightTracker;
import io.github.vduse4j.engine.inflight.SplitInflightTracker;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.bindings.UnixSocket;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data through vhost-user rings written by hand in a shared memfd, served by {@link EchoDevice} (readable bytes
 * come back in the writable buffer): split and packed rings addressed by guest physical address, and a split
 * ring behind an IOMMU whose entries arrive as IOTLB misses answered over the backend channel.
 */
class VhostUserRingTest {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long GPA = 0x4000_0000L;
    private static final long IOVA = 0x1_0000_0000L;
    private static final int NUM = 8;
    private static final long DESC = 0, AVAIL = 0x1000, USED = 0x2000, IN = 0x10000, OUT = 0x11000;

    @TempDir
    Path dir;

    private void setUp(TestFrontend f, TestFrontend.Memfd mem, long features, long ringBase, int base, int kick) {
        f.handshake();
        assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, features | (1L << F_PROTOCOL_FEATURES))));
        assertEquals(0, f.ack(SET_MEM_TABLE, 40, m -> VhostUserProtocolTest.region(m.putU32(0, 1), 8, GPA, 1 << 20,
                mem.uaddr(), 0), mem.fd()));
        assertEquals(0, f.ack(SET_VRING_NUM, 8, m -> m.putU32(0, 0).putU32(4, NUM)));
        assertEquals(0, f.ack(SET_VRING_BASE, 8, m -> m.putU32(0, 0).putU32(4, base)));
        assertEquals(0, f.ack(SET_VRING_ADDR, ADDR_SIZE, m -> m.putU32(ADDR_INDEX, 0).putU64(ADDR_DESC, ringBase + DESC)
                .putU64(ADDR_AVAIL, ringBase + AVAIL).putU64(ADDR_USED, ringBase + USED)));
        assertEquals(0, f.ack(SET_VRING_KICK, 8, m -> m.putU64(0, 0), kick));
        assertEquals(0, f.ack(SET_VRING_CALL, 8, m -> m.putU64(0, VRING_NOFD_MASK)));
        assertEquals(0, f.ack(SET_VRING_ENABLE, 8, m -> m.putU32(0, 0).putU32(4, 1)));
    }

    private static void writeDesc(MemorySegment s, long off, long addr, int len, short a, short b) {
        s.set(U64, off, addr);
        s.set(U32, off + 8, len);
        s.set(U16, off + 12, a);
        s.set(U16, off + 14, b);
    }

    /** Adds the echo chain for request {@code n} to the split ring and returns the expected used index. */
    private static int addSplit(MemorySegment s, long base, int n) {
        fillIn(s, n);
        writeDesc(s, DESC, base + IN, 64, (short) 1, (short) 1);   // NEXT -> 1
        writeDesc(s, DESC + 16, base + OUT, 64, (short) 2, (short) 0); // WRITE
        s.set(U16, AVAIL + 4 + 2L * (n % NUM), (short) 0);
        VarHandle.releaseFence();
        s.set(U16, AVAIL + 2, (short) (n + 1));
        VarHandle.fullFence();
        return n + 1;
    }

    private static void fillIn(MemorySegment s, int n) {
        for (int i = 0; i < 64; i++) {
            s.set(ValueLayout.JAVA_BYTE, IN + i, (byte) (n * 7 + i));
        }
        s.asSlice(OUT, 64).fill((byte) 0);
    }

    private static void checkOut(MemorySegment s, int n) {
        for (int i = 0; i < 64; i++) {
            assertEquals((byte) (n * 7 + i), s.get(ValueLayout.JAVA_BYTE, OUT + i), "request " + n + " byte " + i);
        }
    }

    /** Waits for the split used index to reach {@code want}, serving IOTLB misses if {@code backend >= 0}. */
    private static void awaitUsed(TestFrontend f, MemorySegment s, int want, int backend, int[] misses) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        Poll p = new Poll(1);
        if (backend >= 0) {
            p.add(backend, Poll.POLLIN);
        }
        VhostUserMessage bm = new VhostUserMessage();
        while ((s.get(U16, USED + 2) & 0xffff) != (want & 0xffff)) {
            assertTrue(System.nanoTime() < deadline, "used index " + (s.get(U16, USED + 2) & 0xffff) + " != " + want);
            if (backend >= 0 && p.poll(1) > 0) {
                assertEquals(VhostUserMessage.ReadResult.OK, bm.read(backend));
                assertEquals(BACKEND_IOTLB_MSG, bm.request());
                assertEquals(IOTLB_MISS, bm.u8(IOTLB_TYPE));
                long iova = bm.u64(IOTLB_IOVA) & ~4095L;
                boolean reply = bm.needsReply();
                misses[0]++;
                // spec "IOMMU support": answer the miss with an UPDATE on the main channel, then ack the miss
                assertEquals(0, f.ack(IOTLB_MSG, IOTLB_SIZE, m -> VhostUserProtocolTest.iotlb(m, iova, 4096,
                        uaddrOfIova(iova), 3, IOTLB_UPDATE)));
                if (reply) {
                    bm.reply(8).putU64(0, 0).write(backend);
                }
            }
            Thread.onSpinWait();
        }
    }

    private static long memUaddr;

    private static long uaddrOfIova(long iova) {
        return memUaddr + (iova - IOVA);
    }

    @Test
    void splitRingByGuestAddress() {
        Path sock = dir.resolve("s.sock");
        int kick = EventFd.create(0, EventFd.EFD_CLOEXEC);
        try (VhostUserServer server = VhostUserServer.start(sock, new EchoDevice(), true);
             TestFrontend f = new TestFrontend(sock); TestFrontend.Memfd mem = TestFrontend.Memfd.create(1 << 20)) {
            MemorySegment s = mem.segment();
            setUp(f, mem, 1L << 32, mem.uaddr(), 0, kick);
            for (int n = 0; n < 20; n++) {
                int want = addSplit(s, GPA, n);
                EventFd.signal(kick);
                awaitUsed(f, s, want, -1, null);
                assertEquals(0, s.get(U32, USED + 4 + 8L * (n % NUM)));
                assertEquals(64, s.get(U32, USED + 8 + 8L * (n % NUM)));
                checkOut(s, n);
            }
            f.send(GET_VRING_BASE, 0, 8, m -> m.putU32(0, 0));
            assertEquals(20, f.reply(GET_VRING_BASE).u32(4));
            assertEquals(20, server.stats().get(0).requests());
        } finally {
            FileIo.close(kick);
        }
    }

    @Test
    void packedRingByGuestAddress() {
        Path sock = dir.resolve("p.sock");
        int kick = EventFd.create(0, EventFd.EFD_CLOEXEC);
        try (VhostUserServer server = VhostUserServer.start(sock, new EchoDevice(), true);
             TestFrontend f = new TestFrontend(sock); TestFrontend.Memfd mem = TestFrontend.Memfd.create(1 << 20)) {
            MemorySegment s = mem.segment();
            setUp(f, mem, (1L << 32) | (1L << 34), mem.uaddr(), 0x8000_8000, kick); // QEMU's fresh packed base
            int slot = 0;
            boolean wrap = true;
            for (int n = 0; n < 20; n++) {
                fillIn(s, n);
                int availFlags = wrap ? 1 << 7 : 1 << 15;   // §2.8.1: AVAIL = wrap, USED = !wrap
                int second = (slot + 1) % NUM;
                writeDesc(s, DESC + 16L * second, GPA + OUT, 64, (short) n, (short) (availFlags | 2)); // WRITE, id n
                writeDesc(s, DESC + 16L * slot, GPA + IN, 64, (short) n, (short) 0);
                VarHandle.releaseFence();
                s.set(U16, DESC + 16L * slot + 14, (short) (availFlags | 1)); // NEXT; head flags last
                VarHandle.fullFence();
                EventFd.signal(kick);
                long deadline = System.nanoTime() + 10_000_000_000L;
                int usedFlags = wrap ? (1 << 7) | (1 << 15) : 0;
                while (((s.get(U16, DESC + 16L * slot + 14) & 0xffff) & ((1 << 7) | (1 << 15))) != usedFlags) {
                    assertTrue(System.nanoTime() < deadline, "packed request " + n + " not used");
                    Thread.onSpinWait();
                }
                assertEquals(n, s.get(U16, DESC + 16L * slot + 12));
                assertEquals(64, s.get(U32, DESC + 16L * slot + 8));
                checkOut(s, n);
                slot += 2;
                if (slot >= NUM) {
                    slot -= NUM;
                    wrap = !wrap;
                }
            }
            f.send(GET_VRING_BASE, 0, 8, m -> m.putU32(0, 0));
            int base = f.reply(GET_VRING_BASE).u32(4);
            // 40 descriptors on a ring of 8: index 0, wrapped 5 times (counter back to 0)
            assertEquals(0, base & 0x7fff);
            assertEquals(wrap, (base & 0x8000) != 0);
            assertEquals(base & 0xffff, base >>> 16);
        } finally {
            FileIo.close(kick);
        }
    }

    @Test
    void splitRingBehindAnIommuUsesIotlbMisses() {
        Path sock = dir.resolve("i.sock");
        int kick = EventFd.create(0, EventFd.EFD_CLOEXEC);
        int[] pair = UnixSocket.socketPair();
        try (VhostUserServer server = VhostUserServer.start(sock, new EchoDevice(), true);
             TestFrontend f = new TestFrontend(sock); TestFrontend.Memfd mem = TestFrontend.Memfd.create(1 << 20)) {
            memUaddr = mem.uaddr();
            MemorySegment s = mem.segment();
            f.handshake();
            assertEquals(0, f.ack(SET_BACKEND_REQ_FD, 0, m -> { }, pair[1]));
            FileIo.close(pair[1]);
            setUpIommu(f, mem, kick);
            int[] misses = {0};
            int want = addSplit(s, IOVA, 0);
            EventFd.signal(kick);
            awaitUsed(f, s, want, pair[0], misses);
            checkOut(s, 0);
            // rings (3 pages) and both buffers: each page missed once
            assertEquals(5, misses[0], "misses");
            want = addSplit(s, IOVA, 1);
            EventFd.signal(kick);
            awaitUsed(f, s, want, pair[0], misses);
            checkOut(s, 1);
            // translations do not outlive a batch (VhostUserIotlb): the driver may have remapped the IOVAs
            assertEquals(7, misses[0], "the second request's buffers were missed again");
            // invalidation: acknowledged, then the buffers miss again
            assertEquals(0, f.ack(IOTLB_MSG, IOTLB_SIZE, m -> VhostUserProtocolTest.iotlb(m, IOVA + IN, 0x2000, 0, 0,
                    IOTLB_INVALIDATE)));
            want = addSplit(s, IOVA, 2);
            EventFd.signal(kick);
            awaitUsed(f, s, want, pair[0], misses);
            checkOut(s, 2);
            assertEquals(9, misses[0], "the invalidated pages were missed again");
            // a whole-space flush comes as iova 0, size 0 (QEMU: addr_mask + 1 overflows): everything misses again
            assertEquals(0, f.ack(IOTLB_MSG, IOTLB_SIZE, m -> VhostUserProtocolTest.iotlb(m, 0, 0, 0, 0,
                    IOTLB_INVALIDATE)));
            want = addSplit(s, IOVA, 3);
            EventFd.signal(kick);
            awaitUsed(f, s, want, pair[0], misses);
            checkOut(s, 3);
            assertEquals(11, misses[0], "both buffers missed after the global flush (rings stay resolved)");
        } finally {
            FileIo.close(kick);
            FileIo.close(pair[0]);
        }
    }

    private void setUpIommu(TestFrontend f, TestFrontend.Memfd mem, int kick) {
        long features = (1L << 32) | (1L << 33) | (1L << F_PROTOCOL_FEATURES);
        assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, features)));
        assertEquals(0, f.ack(SET_MEM_TABLE, 40, m -> VhostUserProtocolTest.region(m.putU32(0, 1), 8, GPA, 1 << 20,
                mem.uaddr(), 0), mem.fd()));
        assertEquals(0, f.ack(SET_VRING_NUM, 8, m -> m.putU32(0, 0).putU32(4, NUM)));
        assertEquals(0, f.ack(SET_VRING_BASE, 8, m -> m.putU32(0, 0).putU32(4, 0)));
        // spec SET_VRING_ADDR: "a ring address is an IOVA if VIRTIO_F_IOMMU_PLATFORM has been negotiated"
        assertEquals(0, f.ack(SET_VRING_ADDR, ADDR_SIZE, m -> m.putU32(ADDR_INDEX, 0).putU64(ADDR_DESC, IOVA + DESC)
                .putU64(ADDR_AVAIL, IOVA + AVAIL).putU64(ADDR_USED, IOVA + USED)));
        assertEquals(0, f.ack(SET_VRING_KICK, 8, m -> m.putU64(0, 0), kick));
        assertEquals(0, f.ack(SET_VRING_CALL, 8, m -> m.putU64(0, VRING_NOFD_MASK)));
        assertEquals(0, f.ack(SET_VRING_ENABLE, 8, m -> m.putU32(0, 0).putU32(4, 1)));
    }

    @Test
    void aRestartedBackendResubmitsWhatTheInflightBufferHolds() {
        Path sock = dir.resolve("r.sock");
        int kick = EventFd.create(0, EventFd.EFD_CLOEXEC);
        try (TestFrontend.Memfd mem = TestFrontend.Memfd.create(1 << 20)) {
            MemorySegment s = mem.segment();
            long size;
            int inflightFd;
            // The first back-end hands out the inflight buffer, pops three chains and dies before using them.
            try (VhostUserServer first = VhostUserServer.start(sock, new EchoDevice(), true);
                 TestFrontend f = new TestFrontend(sock)) {
                f.handshake();
                f.send(GET_INFLIGHT_FD, 0, INFLIGHT_SIZE, m -> m.putU16(16, (short) 1).putU16(18, (short) NUM));
                VhostUserMessage r = f.reply(GET_INFLIGHT_FD);
                size = r.u64(0);
                inflightFd = r.takeFd(0);
            }
            MemorySegment inflight = io.github.vduse4j.bindings.MemoryMap.map(size,
                    io.github.vduse4j.bindings.MemoryMap.PROT_READ | io.github.vduse4j.bindings.MemoryMap.PROT_WRITE,
                    io.github.vduse4j.bindings.MemoryMap.MAP_SHARED, inflightFd, 0);
            for (int n = 0; n < 3; n++) { // chains (0,1) (2,3) (4,5), each echoing its own 64 bytes
                for (int i = 0; i < 64; i++) {
                    s.set(ValueLayout.JAVA_BYTE, IN + 64L * n + i, (byte) (n * 7 + i));
                }
                writeDesc(s, DESC + 32L * n, GPA + IN + 64L * n, 64, (short) 1, (short) (2 * n + 1));
                writeDesc(s, DESC + 32L * n + 16, GPA + OUT + 64L * n, 64, (short) 2, (short) 0);
                s.set(U16, AVAIL + 4 + 2L * n, (short) (2 * n));
                // spec "Inflight I/O tracking": desc[head].inflight = 1, counter in pop order
                inflight.set(ValueLayout.JAVA_BYTE, SplitInflightTracker.HEADER + 16L * 2 * n, (byte) 1);
                inflight.set(U64, SplitInflightTracker.HEADER + 16L * 2 * n + 8, n);
            }
            s.set(U16, AVAIL + 2, (short) 3);
            // The restarted back-end gets the buffer back and the frontend's last known avail index (3).
            try (VhostUserServer second = VhostUserServer.start(sock, new EchoDevice(), true);
                 TestFrontend f = new TestFrontend(sock)) {
                f.handshake();
                assertEquals(0, f.ack(SET_INFLIGHT_FD, INFLIGHT_SIZE, m -> m.putU64(0, size).putU16(16, (short) 1)
                        .putU16(18, (short) NUM), inflightFd));
                assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, (1L << 32) | (1L << F_PROTOCOL_FEATURES))));
                assertEquals(0, f.ack(SET_MEM_TABLE, 40, m -> VhostUserProtocolTest.region(m.putU32(0, 1), 8, GPA,
                        1 << 20, mem.uaddr(), 0), mem.fd()));
                assertEquals(0, f.ack(SET_VRING_NUM, 8, m -> m.putU32(0, 0).putU32(4, NUM)));
                assertEquals(0, f.ack(SET_VRING_BASE, 8, m -> m.putU32(0, 0).putU32(4, 3)));
                assertEquals(0, f.ack(SET_VRING_ADDR, ADDR_SIZE, m -> m.putU32(ADDR_INDEX, 0)
                        .putU64(ADDR_DESC, mem.uaddr() + DESC).putU64(ADDR_AVAIL, mem.uaddr() + AVAIL)
                        .putU64(ADDR_USED, mem.uaddr() + USED)));
                assertEquals(0, f.ack(SET_VRING_KICK, 8, m -> m.putU64(0, 0), kick));
                assertEquals(0, f.ack(SET_VRING_ENABLE, 8, m -> m.putU32(0, 0).putU32(4, 1)));
                EventFd.signal(kick);
                awaitUsed(f, s, 3, -1, null);
                for (int n = 0; n < 3; n++) {
                    for (int i = 0; i < 64; i++) {
                        assertEquals((byte) (n * 7 + i), s.get(ValueLayout.JAVA_BYTE, OUT + 64L * n + i));
                    }
                }
                // the back-end tracked the completions: nothing is in flight any more
                for (int n = 0; n < 3; n++) {
                    assertEquals(0, inflight.get(ValueLayout.JAVA_BYTE, SplitInflightTracker.HEADER + 16L * 2 * n));
                }
                assertEquals(3, inflight.get(U16, 14)); // used_idx
            }
            io.github.vduse4j.bindings.MemoryMap.unmap(inflight);
            FileIo.close(inflightFd);
        } finally {
            FileIo.close(kick);
        }
    }

    // ---- restart with requests in flight: a crash is the shared memory as the first back-end left it ----

    /** QEMU's order: the inflight buffer (GET_INFLIGHT_FD) comes before SET_FEATURES. Returns {size, fd}. */
    private static long[] getInflightFd(TestFrontend f) {
        f.send(GET_INFLIGHT_FD, 0, INFLIGHT_SIZE, m -> m.putU16(16, (short) 1).putU16(18, (short) NUM));
        VhostUserMessage r = f.reply(GET_INFLIGHT_FD);
        long size = r.u64(0);
        return new long[] {size, r.takeFd(0)};
    }

    /** The ring setup of a (re)connecting frontend, after the handshake and the inflight buffer. */
    private static void setUpRing(TestFrontend f, TestFrontend.Memfd mem, long features, int base, int kick) {
        assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, features | (1L << F_PROTOCOL_FEATURES))));
        assertEquals(0, f.ack(SET_MEM_TABLE, 40, m -> VhostUserProtocolTest.region(m.putU32(0, 1), 8, GPA, 1 << 20,
                mem.uaddr(), 0), mem.fd()));
        assertEquals(0, f.ack(SET_VRING_NUM, 8, m -> m.putU32(0, 0).putU32(4, NUM)));
        assertEquals(0, f.ack(SET_VRING_BASE, 8, m -> m.putU32(0, 0).putU32(4, base)));
        assertEquals(0, f.ack(SET_VRING_ADDR, ADDR_SIZE, m -> m.putU32(ADDR_INDEX, 0)
                .putU64(ADDR_DESC, mem.uaddr() + DESC).putU64(ADDR_AVAIL, mem.uaddr() + AVAIL)
                .putU64(ADDR_USED, mem.uaddr() + USED)));
        assertEquals(0, f.ack(SET_VRING_KICK, 8, m -> m.putU64(0, 0), kick));
        assertEquals(0, f.ack(SET_VRING_CALL, 8, m -> m.putU64(0, VRING_NOFD_MASK)));
        assertEquals(0, f.ack(SET_VRING_ENABLE, 8, m -> m.putU32(0, 0).putU32(4, 1)));
    }

    /** Request {@code n}: 64 readable bytes at IN + 64n (derived from n), 64 writable at OUT + 64n (zeroed). */
    private static void fillRequest(MemorySegment s, int n) {
        for (int i = 0; i < 64; i++) {
            s.set(ValueLayout.JAVA_BYTE, IN + 64L * n + i, (byte) (n * 7 + i));
        }
        s.asSlice(OUT + 64L * n, 64).fill((byte) 0);
    }

    private static void checkRequest(MemorySegment s, int n) {
        for (int i = 0; i < 64; i++) {
            assertEquals((byte) (n * 7 + i), s.get(ValueLayout.JAVA_BYTE, OUT + 64L * n + i), "request " + n + " byte " + i);
        }
    }

    private static void await(String what, java.util.function.BooleanSupplier done) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!done.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, what);
            Thread.onSpinWait();
        }
    }

    /** Split request {@code n} on descriptors {@code head}, {@code head + 1}, in avail entry {@code slot}. */
    private static void addSplitRequest(MemorySegment s, int n, int head, int slot) {
        fillRequest(s, n);
        writeDesc(s, DESC + 16L * head, GPA + IN + 64L * n, 64, (short) 1, (short) (head + 1)); // NEXT
        writeDesc(s, DESC + 16L * (head + 1), GPA + OUT + 64L * n, 64, (short) 2, (short) 0);  // WRITE
        s.set(U16, AVAIL + 4 + 2L * (slot % NUM), (short) head);
    }

    /**
     * Split, requests used out of order before the crash (1 and 3 of 0..3), their descriptors reused by the driver
     * for 4 and 5 afterwards: the in-flight heads are not the avail entries from the used index on, so a restart
     * that re-popped the avail ring from there would serve request 2, then 5 instead of 3, and never 0. The restarted
     * back-end resubmits heads 0 and 4 from the buffer and pops from avail index used + 2: every request is used
     * exactly once, with its own data.
     */
    @Test
    void aRestartedBackendResubmitsSplitRequestsThatOthersOvertook() {
        Path sock = dir.resolve("o.sock");
        int kick = EventFd.create(0, EventFd.EFD_CLOEXEC);
        try (TestFrontend.Memfd mem = TestFrontend.Memfd.create(1 << 20)) {
            MemorySegment s = mem.segment();
            long[] inflightFd;
            MemorySegment inflight;
            byte[] memoryAtCrash;
            byte[] inflightAtCrash;
            HoldingDevice device = new HoldingDevice();
            try (VhostUserServer first = VhostUserServer.start(sock, device, true);
                 TestFrontend f = new TestFrontend(sock)) {
                f.handshake();
                inflightFd = getInflightFd(f);
                inflight = io.github.vduse4j.bindings.MemoryMap.map(inflightFd[0],
                        io.github.vduse4j.bindings.MemoryMap.PROT_READ | io.github.vduse4j.bindings.MemoryMap.PROT_WRITE,
                        io.github.vduse4j.bindings.MemoryMap.MAP_SHARED, (int) inflightFd[1], 0);
                setUpRing(f, mem, 1L << 32, 0, kick);
                for (int n = 0; n < 4; n++) {
                    addSplitRequest(s, n, 2 * n, n);
                }
                VarHandle.releaseFence();
                s.set(U16, AVAIL + 2, (short) 4);
                VarHandle.fullFence();
                EventFd.signal(kick);
                await("4 requests popped", () -> device.popped.get() == 4);
                device.release(2);   // request 1 (head 2)
                device.release(6);   // request 3 (head 6)
                awaitUsed(f, s, 2, -1, null);
                MemorySegment in = inflight;
                await("the buffer records the publication", () -> in.get(U16, SplitInflightTracker.USED_IDX) == 2);
                memoryAtCrash = s.toArray(ValueLayout.JAVA_BYTE);
                inflightAtCrash = inflight.toArray(ValueLayout.JAVA_BYTE);
                device.releaseAll();   // lets the disconnect drain; the snapshot is what a crash would have left
            }
            MemorySegment.copy(memoryAtCrash, 0, s, ValueLayout.JAVA_BYTE, 0, memoryAtCrash.length);
            MemorySegment.copy(inflightAtCrash, 0, inflight, ValueLayout.JAVA_BYTE, 0, inflightAtCrash.length);
            assertEquals(List.of(2, 6), List.of(s.get(U32, USED + 4), s.get(U32, USED + 12)));
            s.asSlice(OUT, 64).fill((byte) 0);            // requests 0 and 2 were never written back
            s.asSlice(OUT + 128, 64).fill((byte) 0);
            // the driver reaps 1 and 3 and reuses their descriptors: request 4 on 2-3, request 5 on 6-7
            addSplitRequest(s, 4, 2, 4);
            addSplitRequest(s, 5, 6, 5);
            VarHandle.releaseFence();
            s.set(U16, AVAIL + 2, (short) 6);
            VarHandle.fullFence();

            EchoDevice echo = new EchoDevice();
            try (VhostUserServer second = VhostUserServer.start(sock, echo, true);
                 TestFrontend f = new TestFrontend(sock)) {
                f.handshake();
                assertEquals(0, f.ack(SET_INFLIGHT_FD, INFLIGHT_SIZE, m -> m.putU64(0, inflightFd[0])
                        .putU16(16, (short) 1).putU16(18, (short) NUM), (int) inflightFd[1]));
                setUpRing(f, mem, 1L << 32, 2, kick);   // QEMU: the used index, its last known avail index
                EventFd.signal(kick);
                awaitUsed(f, s, 6, -1, null);
                // resubmitted in counter order (heads 0, 4), then the avail ring from index 4 (heads 2, 6)
                assertEquals(List.of(0, 4, 2, 6), List.of(s.get(U32, USED + 4 + 16), s.get(U32, USED + 4 + 24),
                        s.get(U32, USED + 4 + 32), s.get(U32, USED + 4 + 40)));
                for (int n = 0; n < 6; n++) {
                    checkRequest(s, n);
                }
                assertEquals(4, second.stats().get(0).requests(), "4 requests served, each once");
                for (int n = 0; n < NUM; n++) {
                    assertEquals(0, inflight.get(ValueLayout.JAVA_BYTE, SplitInflightTracker.HEADER + 16L * n));
                }
                assertEquals(6, inflight.get(U16, SplitInflightTracker.USED_IDX));
                f.send(GET_VRING_BASE, 0, 8, m -> m.putU32(0, 0));
                assertEquals(6, f.reply(GET_VRING_BASE).u32(4));
            }
            io.github.vduse4j.bindings.MemoryMap.unmap(inflight);
            FileIo.close((int) inflightFd[1]);
        } finally {
            FileIo.close(kick);
        }
    }

    /** Packed request {@code n} with buffer id {@code id} in slots {@code slot}, {@code slot + 1} of lap {@code wrap}. */
    private static void addPackedRequest(MemorySegment s, int n, int id, int slot, boolean wrap) {
        fillRequest(s, n);
        int availFlags = wrap ? 1 << 7 : 1 << 15;   // §2.8.1: AVAIL = wrap, USED = !wrap
        writeDesc(s, DESC + 16L * ((slot + 1) % NUM), GPA + OUT + 64L * n, 64, (short) id, (short) (availFlags | 2));
        writeDesc(s, DESC + 16L * slot, GPA + IN + 64L * n, 64, (short) id, (short) 0);
        VarHandle.releaseFence();
        s.set(U16, DESC + 16L * slot + 14, (short) (availFlags | 1)); // NEXT; head flags last
        VarHandle.fullFence();
    }

    private static boolean packedUsed(MemorySegment s, int slot, boolean wrap) {
        int flags = s.get(U16, DESC + 16L * slot + 14) & ((1 << 7) | (1 << 15));
        return flags == (wrap ? (1 << 7) | (1 << 15) : 0);
    }

    /**
     * Packed: requests 0..2 popped, 1 used out of order, then the crash; the driver reaps 1 and goes on, putting
     * request 3 in slots 6-7 and request 4 in slots 0-1 of the next lap — request 0's descriptors are gone from the
     * ring. The restarted back-end resubmits 0 and 2 from the buffer's copies, its used position comes from the
     * buffer (the frontend's is stale), then it pops 3 and 4: every request used once, with its own data.
     */
    @Test
    void aRestartedBackendResubmitsPackedRequestsFromTheCopies() {
        Path sock = dir.resolve("q.sock");
        int kick = EventFd.create(0, EventFd.EFD_CLOEXEC);
        long packed = (1L << 32) | (1L << 34);
        try (TestFrontend.Memfd mem = TestFrontend.Memfd.create(1 << 20)) {
            MemorySegment s = mem.segment();
            long[] inflightFd;
            MemorySegment inflight;
            byte[] memoryAtCrash;
            byte[] inflightAtCrash;
            HoldingDevice device = new HoldingDevice();
            try (VhostUserServer first = VhostUserServer.start(sock, device, true);
                 TestFrontend f = new TestFrontend(sock)) {
                f.handshake();
                inflightFd = getInflightFd(f);   // before SET_FEATURES: nobody knows yet that the ring is packed
                inflight = io.github.vduse4j.bindings.MemoryMap.map(inflightFd[0],
                        io.github.vduse4j.bindings.MemoryMap.PROT_READ | io.github.vduse4j.bindings.MemoryMap.PROT_WRITE,
                        io.github.vduse4j.bindings.MemoryMap.MAP_SHARED, (int) inflightFd[1], 0);
                setUpRing(f, mem, packed, 0x8000_8000, kick);
                for (int n = 0; n < 3; n++) {
                    addPackedRequest(s, n, n, 2 * n, true);
                }
                EventFd.signal(kick);
                await("3 requests popped", () -> device.popped.get() == 3);
                device.release(1);
                await("request 1 used", () -> packedUsed(s, 0, true));
                assertEquals(1, s.get(U16, DESC + 12));
                MemorySegment in = inflight;
                await("the buffer records the publication",
                        () -> in.get(U16, PackedInflightTracker.OLD_USED_IDX) == 2);
                memoryAtCrash = s.toArray(ValueLayout.JAVA_BYTE);
                inflightAtCrash = inflight.toArray(ValueLayout.JAVA_BYTE);
                device.releaseAll();
            }
            MemorySegment.copy(memoryAtCrash, 0, s, ValueLayout.JAVA_BYTE, 0, memoryAtCrash.length);
            MemorySegment.copy(inflightAtCrash, 0, inflight, ValueLayout.JAVA_BYTE, 0, inflightAtCrash.length);
            s.asSlice(OUT, 64).fill((byte) 0);
            s.asSlice(OUT + 128, 64).fill((byte) 0);
            addPackedRequest(s, 3, 3, 6, true);
            addPackedRequest(s, 4, 1, 0, false);   // id 1 is free again; slots 0-1 held request 0

            EchoDevice echo = new EchoDevice();
            try (VhostUserServer second = VhostUserServer.start(sock, echo, true);
                 TestFrontend f = new TestFrontend(sock)) {
                f.handshake();
                assertEquals(0, f.ack(SET_INFLIGHT_FD, INFLIGHT_SIZE, m -> m.putU64(0, inflightFd[0])
                        .putU16(16, (short) 1).putU16(18, (short) NUM), (int) inflightFd[1]));
                // avail where the first back-end stopped (6, lap 1); a stale used position (0, lap 1)
                setUpRing(f, mem, packed, 0x8000_8006, kick);
                EventFd.signal(kick);
                // §2.8.22: a batch of used elements is published by its first element's flags, written last,
                // so request 4 (slot 0, next lap) can show used before 0, 2 and 3: wait for all four
                await("requests 0, 2, 3 and 4 used", () -> packedUsed(s, 0, false)
                        && packedUsed(s, 2, true) && packedUsed(s, 4, true) && packedUsed(s, 6, true));
                // used elements in order: 0 and 2 (resubmitted, counter order), then 3 and 4 from the ring
                assertEquals(List.of(0, 2, 3, 1), List.of((int) s.get(U16, DESC + 32 + 12), (int) s.get(U16, DESC + 64 + 12),
                        (int) s.get(U16, DESC + 96 + 12), (int) s.get(U16, DESC + 12)));
                for (int n = 0; n < 5; n++) {
                    checkRequest(s, n);
                }
                assertEquals(4, second.stats().get(0).requests(), "4 requests served, each once");
                for (int n = 0; n < NUM; n++) {
                    assertEquals(0, inflight.get(ValueLayout.JAVA_BYTE, PackedInflightTracker.HEADER + 32L * n));
                }
                assertEquals(2, inflight.get(U16, PackedInflightTracker.OLD_USED_IDX));
                assertEquals(0, inflight.get(ValueLayout.JAVA_BYTE, PackedInflightTracker.OLD_USED_WRAP));
                f.send(GET_VRING_BASE, 0, 8, m -> m.putU32(0, 0));
                int base = f.reply(GET_VRING_BASE).u32(4);
                assertEquals(2, base & 0xffff, "avail 2 in lap 0");
                assertEquals(2, base >>> 16, "used 2 in lap 0");
            }
            io.github.vduse4j.bindings.MemoryMap.unmap(inflight);
            FileIo.close((int) inflightFd[1]);
        } finally {
            FileIo.close(kick);
        }
    }
}
