package io.github.vduse4j.engine.vhostuser;

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
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A split ring behind an emulated IOMMU whose driver, like Linux's DMA API, maps every request's indirect table
 * and buffers afresh and unmaps them once the request is used, then reuses the same IOVAs for other guest pages.
 * The frontend answers IOTLB misses from its current page table, like QEMU's {@code vhost_device_iotlb_miss}.
 *
 * <p>The back-end must never translate a new request through an older mapping, whether the frontend invalidated
 * it (spec "IOMMU support") or not: QEMU 7.2's intel-iommu only invalidates what its own shadow page walk saw
 * mapped, and never saw these short-lived mappings. Before the fix, the back-end read a freed indirect table
 * (here: filled with a kernel-pointer-like value, as SLUB leaves it) and failed the request, or copied the
 * previous request's data.
 */
class VhostUserIommuTest {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long GPA = 0x4000_0000L;
    private static final long RING_IOVA = 0x1_0000_0000L;
    private static final long IOVA = 0xffe0_0000L;      // where the driver maps request tables and buffers
    private static final long PAGE = 4096;
    private static final int NUM = 8;
    private static final long DESC = 0, AVAIL = 0x1000, USED = 0x2000;
    private static final long FREED = 0xffff_8880_0252_7380L; // what a freed slab object holds (a free pointer)
    private static final short F_NEXT = 1, F_WRITE = 2, F_INDIRECT = 4;

    @TempDir
    Path dir;

    private VhostUserServer server;
    private TestFrontend f;
    private TestFrontend.Memfd mem;
    private MemorySegment s;
    private int kick;
    private int backend;
    private final Poll poll = new Poll(1);
    private final VhostUserMessage bm = new VhostUserMessage();
    /** The emulated IOMMU page table: IOVA page -> offset of a page in the memfd. */
    private final Map<Long, Long> pageTable = new HashMap<>();
    private int misses;
    private int nextPage = 16; // memfd pages handed out to the driver (0..15: rings)
    private int avail;

    @BeforeEach
    void start() {
        Path sock = dir.resolve("iommu.sock");
        kick = EventFd.create(0, EventFd.EFD_CLOEXEC);
        server = VhostUserServer.start(sock, new EchoDevice(), true);
        f = new TestFrontend(sock);
        mem = TestFrontend.Memfd.create(1 << 20);
        s = mem.segment();
        f.handshake();
        int[] pair = UnixSocket.socketPair();
        assertEquals(0, f.ack(SET_BACKEND_REQ_FD, 0, m -> { }, pair[1]));
        FileIo.close(pair[1]);
        backend = pair[0];
        poll.add(backend, Poll.POLLIN);
        for (long off = 0; off < 3 * PAGE; off += PAGE) {
            pageTable.put(RING_IOVA + off, off); // the rings stay mapped while the device runs
        }
        long features = (1L << 32) | (1L << 33) | (1L << 28) | (1L << F_PROTOCOL_FEATURES); // + INDIRECT_DESC
        assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, features)));
        assertEquals(0, f.ack(SET_MEM_TABLE, 40, m -> VhostUserProtocolTest.region(m.putU32(0, 1), 8, GPA, 1 << 20,
                mem.uaddr(), 0), mem.fd()));
        assertEquals(0, f.ack(SET_VRING_NUM, 8, m -> m.putU32(0, 0).putU32(4, NUM)));
        assertEquals(0, f.ack(SET_VRING_BASE, 8, m -> m.putU32(0, 0).putU32(4, 0)));
        assertEquals(0, f.ack(SET_VRING_ADDR, ADDR_SIZE, m -> m.putU32(ADDR_INDEX, 0).putU64(ADDR_DESC, RING_IOVA + DESC)
                .putU64(ADDR_AVAIL, RING_IOVA + AVAIL).putU64(ADDR_USED, RING_IOVA + USED)));
        assertEquals(0, f.ack(SET_VRING_KICK, 8, m -> m.putU64(0, 0), kick));
        assertEquals(0, f.ack(SET_VRING_CALL, 8, m -> m.putU64(0, VRING_NOFD_MASK)));
        assertEquals(0, f.ack(SET_VRING_ENABLE, 8, m -> m.putU32(0, 0).putU32(4, 1)));
    }

    @AfterEach
    void stop() {
        f.close();
        server.close();
        mem.close();
        FileIo.close(kick);
        FileIo.close(backend);
    }

    /** One request as the driver maps it: an indirect table (readable buffer, writable buffer) on three IOVA pages. */
    private record Request(long table, long in, long out, long tablePage, long inPage, long outPage) {}

    /** Maps a fresh guest page at IOVA page {@code iova} and returns its memfd offset. */
    private long map(long iova) {
        long page = PAGE * nextPage++;
        pageTable.put(iova, page);
        return page;
    }

    /** The driver maps a request at IOVAs {@code base}, {@code base + 1 page}, {@code base + 2 pages}, fills it in. */
    private Request prepare(long base, int n) {
        Request r = new Request(base + 0x3c0, base + PAGE, base + 2 * PAGE, map(base), map(base + PAGE),
                map(base + 2 * PAGE));
        long t = r.tablePage + 0x3c0;
        writeDesc(t, r.in, 64, F_NEXT, (short) 1);
        writeDesc(t + 16, r.out, 64, F_WRITE, (short) 0);
        for (int i = 0; i < 64; i++) {
            s.set(ValueLayout.JAVA_BYTE, r.inPage + i, (byte) (n * 31 + i));
        }
        s.asSlice(r.outPage, 64).fill((byte) 0);
        return r;
    }

    /** Puts the request at descriptor {@code head} and makes {@code count} new avail entries visible at once. */
    private void add(int head, Request r) {
        writeDesc(DESC + 16L * head, r.table, 32, F_INDIRECT, (short) 0);
        s.set(U16, AVAIL + 4 + 2L * (avail % NUM), (short) head);
        avail++;
    }

    private void publish() {
        VarHandle.releaseFence();
        s.set(U16, AVAIL + 2, (short) avail);
        VarHandle.fullFence();
        EventFd.signal(kick);
    }

    /** Completion, as the driver handles it: unmap everything the request used and free its table. */
    private void unmapAndFree(Request r) {
        pageTable.remove(r.table & ~(PAGE - 1));
        pageTable.remove(r.in);
        pageTable.remove(r.out);
        // the slab allocator reuses the freed table: its first descriptor now holds a free pointer
        s.set(U64, r.tablePage + 0x3c0, FREED);
        s.set(U64, r.tablePage + 0x3c0 + 16, FREED + 0x40);
    }

    private void writeDesc(long off, long addr, int len, short flags, short next) {
        s.set(U64, off, addr);
        s.set(U32, off + 8, len);
        s.set(U16, off + 12, flags);
        s.set(U16, off + 14, next);
    }

    private void checkUsed(int usedIdx, int head, Request r, int n) {
        long e = USED + 4 + 8L * (usedIdx % NUM);
        assertEquals(head, s.get(U32, e), "used id of request " + n);
        assertEquals(64, s.get(U32, e + 4), "request " + n + " was served through its own table");
        for (int i = 0; i < 64; i++) {
            assertEquals((byte) (n * 31 + i), s.get(ValueLayout.JAVA_BYTE, r.outPage + i), "request " + n + " byte " + i);
        }
    }

    /** Waits for the used index to reach {@code want}, answering misses from the current page table. */
    private void awaitUsed(int want) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while ((s.get(U16, USED + 2) & 0xffff) != want) {
            assertTrue(System.nanoTime() < deadline, "used index " + (s.get(U16, USED + 2) & 0xffff) + " != " + want);
            if (poll.poll(1) > 0) {
                serveMiss();
            }
        }
    }

    private void serveMiss() {
        assertEquals(VhostUserMessage.ReadResult.OK, bm.read(backend));
        assertEquals(BACKEND_IOTLB_MSG, bm.request());
        assertEquals(IOTLB_MISS, bm.u8(IOTLB_TYPE));
        long iova = bm.u64(IOTLB_IOVA) & ~(PAGE - 1);
        boolean reply = bm.needsReply();
        misses++;
        Long page = pageTable.get(iova);
        if (page != null) { // QEMU: translate with the current page table, UPDATE on the main channel, then answer
            assertEquals(0, f.ack(IOTLB_MSG, IOTLB_SIZE, m -> VhostUserProtocolTest.iotlb(m, iova, PAGE,
                    mem.uaddr() + page, 3, IOTLB_UPDATE)));
        }
        if (reply) {
            bm.reply(8).putU64(0, page != null ? 0 : 1).write(backend);
        }
    }

    private void invalidate(long iova, long size) {
        assertEquals(0, f.ack(IOTLB_MSG, IOTLB_SIZE, m -> VhostUserProtocolTest.iotlb(m, iova, size, 0, 0,
                IOTLB_INVALIDATE)));
    }

    @Test
    void iovasReusedWithoutAnInvalidationAreTranslatedAfresh() {
        for (int n = 0; n < 6; n++) {
            // the same IOVAs every time, each time on other guest pages; nobody invalidates anything
            Request r = prepare(IOVA, n);
            add(n % NUM, r);
            publish();
            awaitUsed(n + 1);
            checkUsed(n, n % NUM, r, n);
            unmapAndFree(r);
        }
        assertEquals(3 + 6 * 3, misses, "rings once, then every page of every request");
    }

    @Test
    void iovasReusedAfterAnInvalidationAreTranslatedAfresh() {
        for (int n = 0; n < 4; n++) {
            Request r = prepare(IOVA, n);
            add(n % NUM, r);
            publish();
            awaitUsed(n + 1);
            checkUsed(n, n % NUM, r, n);
            unmapAndFree(r);
            if (n % 2 == 0) {
                invalidate(IOVA, 3 * PAGE);
            } else {
                invalidate(0, 0); // whole space (QEMU's addr_mask + 1 overflow): the rings stay resolved
            }
        }
        assertEquals(3 + 4 * 3, misses);
    }

    @Test
    void requestsOfOneBatchShareTranslations() {
        // two requests published together, their tables in one IOVA page: one batch, each page missed once
        Request a = prepare(IOVA, 0);
        long t = a.tablePage + 0x400;
        writeDesc(t, a.in + 64, 64, F_NEXT, (short) 1);
        writeDesc(t + 16, a.out + 64, 64, F_WRITE, (short) 0);
        for (int i = 0; i < 64; i++) {
            s.set(ValueLayout.JAVA_BYTE, a.inPage + 64 + i, (byte) (7 + i));
        }
        add(0, a);
        writeDesc(DESC + 16, IOVA + 0x400, 32, F_INDIRECT, (short) 0);
        s.set(U16, AVAIL + 4 + 2L * avail, (short) 1);
        avail++;
        publish();
        awaitUsed(2);
        checkUsed(0, 0, a, 0);
        for (int i = 0; i < 64; i++) {
            assertEquals((byte) (7 + i), s.get(ValueLayout.JAVA_BYTE, a.outPage + 64 + i));
        }
        assertEquals(3 + 3, misses, "rings, then the three pages once for both requests");
    }

    @Test
    void aMissTheFrontendCannotAnswerNeverFallsBackOnAnOlderEntry() {
        Request r = prepare(IOVA, 0);
        add(0, r);
        publish();
        awaitUsed(1);
        checkUsed(0, 0, r, 0);
        // the driver unmaps the request but (buggy) publishes it again: its table and buffers are still intact,
        // but the frontend can no longer translate them, so serving it from the earlier translation would be wrong
        pageTable.remove(r.table & ~(PAGE - 1));
        pageTable.remove(r.in);
        pageTable.remove(r.out);
        s.asSlice(r.outPage, 64).fill((byte) 0);
        add(0, r);
        publish();
        awaitUsed(2);
        long e = USED + 4 + 8L;
        assertEquals(0, s.get(U32, e));
        assertEquals(0, s.get(U32, e + 4), "chain error: used with length 0");
        assertEquals(0, s.get(ValueLayout.JAVA_BYTE, r.outPage), "nothing written through the old translation");
        assertEquals(1, server.stats().get(0).chainErrors());
    }
}
