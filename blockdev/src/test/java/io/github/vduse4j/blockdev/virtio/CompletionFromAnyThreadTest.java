package io.github.vduse4j.blockdev.virtio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.blockdev.backend.BackendQueue;
import io.github.vduse4j.blockdev.backend.BlockBackend;
import io.github.vduse4j.blockdev.backend.BlockRequest;
import io.github.vduse4j.engine.EventFdKick;
import io.github.vduse4j.engine.PollMode;
import io.github.vduse4j.engine.PollerSettings;
import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.engine.QueuePoller;
import io.github.vduse4j.ring.testkit.BlkRequests;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A backend that completes requests from a pool of its own threads, after random delays and so out of order (some
 * inline on the poller, as a synchronous backend would), behind the real {@link QueuePoller} (event mode: it sleeps
 * as soon as it is idle, so every wake-up must come through the completion handoff's eventfd) and the ring test
 * kit's Linux-like driver. 10^6 requests ({@code -Dvduse4j.anyThread.requests=N} to change): every one comes back
 * exactly once, with the status the backend chose for it and the data it wrote from its own thread.
 */
class CompletionFromAnyThreadTest {
    static final int QSIZE = 128;
    static final long SECTORS = 1 << 20;
    static final long REQUESTS = Long.getLong("vduse4j.anyThread.requests", 1_000_000L);
    static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** The status the backend gives a read of {@code sector}: some fail, so a mixed-up completion shows. */
    static int expectedStatus(long sector) {
        return sector % 7 == 3 ? BlockRequest.STATUS_IOERR : BlockRequest.STATUS_OK;
    }

    static long pattern(long sector) {
        return sector * 0x9E3779B97F4A7C15L + 17;
    }

    /** Reads complete on a pool thread (or inline, one in eight) after a random delay; the data is a pattern. */
    static final class PoolBackend implements BlockBackend {
        final ExecutorService pool = Executors.newFixedThreadPool(3, r -> {
            Thread t = new Thread(r, "backend-io");
            t.setDaemon(true);
            return t;
        });
        final AtomicLong offThread = new AtomicLong();
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        @Override public long capacity() { return SECTORS * 512; }
        @Override public boolean isReadOnly() { return false; }
        @Override public boolean supportsDiscard() { return false; }
        @Override public boolean supportsWriteZeroes() { return false; }
        @Override public String describe() { return "pool"; }
        @Override public void close() { pool.shutdownNow(); }

        @Override
        public BackendQueue openQueue(int queueIndex) {
            return new BackendQueue() {
                @Override
                public void submit(BlockRequest req) {
                    // Capture what the request needs: the buffer lists are valid only during submit().
                    MemorySegment seg = req.buffer(0);
                    long off = req.bufferOffset(0);
                    long sector = req.offset() / 512;
                    ThreadLocalRandom rnd = ThreadLocalRandom.current();
                    if (rnd.nextInt(8) == 0) {
                        finish(req, seg, off, sector);
                        return;
                    }
                    int delay = rnd.nextInt(64);
                    pool.execute(() -> {
                        try {
                            if (delay == 0) {
                                LockSupport.parkNanos(ThreadLocalRandom.current().nextLong(200_000));
                            } else {
                                for (int i = 0; i < delay * 16; i++) {
                                    Thread.onSpinWait();
                                }
                            }
                            offThread.incrementAndGet();
                            finish(req, seg, off, sector);
                        } catch (Throwable t) {
                            failure.compareAndSet(null, t);
                        }
                    });
                }
            };
        }

        static void finish(BlockRequest req, MemorySegment seg, long off, long sector) {
            seg.set(LE_LONG, off, pattern(sector));
            req.complete(expectedStatus(sector));
        }
    }

    @ParameterizedTest(name = "packed={0}")
    @CsvSource({"false", "true"})
    void everyRequestCompletesExactlyOnceWithItsStatus(boolean packed) throws Exception {
        PoolBackend backend = new PoolBackend();
        VirtqueueDriver driver = DriverConfig.of(QSIZE).eventIdx(true).indirect(true).dataRegions(1, 4 << 20).build(packed);
        VirtioBlkDevice dev = new VirtioBlkDevice(backend, new VirtioBlkSettings(1, QSIZE, 512, "any-thread", packed));
        QueueHandler handler = dev.openQueue(0, dev.deviceFeatures(), QSIZE);
        int irq = EventFd.create(0, EventFd.EFD_NONBLOCK | EventFd.EFD_CLOEXEC);
        EventFdKick kick = new EventFdKick();
        QueuePoller poller = new QueuePoller(0, driver.newDeviceQueue(), handler, kick, () -> EventFd.signal(irq),
                new PollerSettings(PollMode.EVENT, 0, new int[0]));
        try {
            // One preallocated request per slot (token = slot): header, 512 data bytes, status.
            BlkRequests.Request[] slots = new BlkRequests.Request[QSIZE];
            long[] sectorOf = new long[QSIZE];
            boolean[] outstanding = new boolean[QSIZE];
            int[] freeSlots = new int[QSIZE];
            for (int i = 0; i < QSIZE; i++) {
                freeSlots[i] = i;
            }
            int freeCount = QSIZE;
            Random rnd = new Random(12);
            poller.start();

            Poll irqWait = new Poll(1);
            irqWait.add(irq, Poll.POLLIN);
            UsedBuffer u = new UsedBuffer();
            long submitted = 0;
            long completed = 0;
            long failed = 0;
            while (completed < REQUESTS) {
                while (freeCount > 0 && submitted < REQUESTS) {
                    int s = freeSlots[--freeCount];
                    long sector = Math.floorMod(rnd.nextLong(), SECTORS);
                    int id;
                    if (slots[s] == null) {
                        slots[s] = BlkRequests.add(driver, VirtioBlk.T_IN, sector, 512, 1, true, s);
                        id = slots[s].id();
                    } else {
                        id = readd(driver, slots[s], sector, s);
                    }
                    assertTrue(id >= 0, "the ring has room for every slot (indirect chains)");
                    sectorOf[s] = sector;
                    outstanding[s] = true;
                    submitted++;
                }
                if (driver.kickPrepare()) {
                    EventFd.signal(kick.fd());
                }
                int reaped = 0;
                while (driver.reap(u)) {
                    int s = (int) u.token;
                    if (!outstanding[s]) {
                        fail("slot " + s + " completed twice (or never submitted), after " + completed);
                    }
                    outstanding[s] = false;
                    long sector = sectorOf[s];
                    int status = BlkRequests.status(driver, slots[s]);
                    assertEquals(expectedStatus(sector), status, "status of the read of sector " + sector);
                    if (status == BlockRequest.STATUS_OK) {
                        assertEquals(pattern(sector), driver.memory().view(slots[s].data(), 8).get(LE_LONG, 0),
                                "data the backend wrote from its own thread, sector " + sector);
                    } else {
                        failed++;
                    }
                    freeSlots[freeCount++] = s;
                    completed++;
                    reaped++;
                }
                if (reaped == 0 && freeCount < QSIZE) {
                    // Like a driver: re-enable callbacks, re-check, then sleep until the device interrupts.
                    if (driver.enableCallbacks()) {
                        int n = irqWait.poll(20_000);
                        assertTrue(n > 0, "no completion for 20 s with " + (QSIZE - freeCount)
                                + " in flight: a lost wake-up (completed " + completed + ")");
                        EventFd.consume(irq);
                    }
                    driver.disableCallbacks();
                }
                assertNull(backend.failure.get());
                assertNull(poller.failure());
            }
            assertEquals(REQUESTS, completed);
            assertEquals(0, driver.inflight());
            assertTrue(backend.offThread.get() > REQUESTS / 2, "most completions came from the pool: "
                    + backend.offThread.get());
            assertTrue(failed > 0 && failed < completed, "both statuses were seen: " + failed + " failed");
            poller.stop();
            assertEquals(0, handler.inflight());
            assertEquals(REQUESTS, handler.stats().requests());
        } finally {
            poller.stop();
            backend.pool.shutdownNow();
            backend.pool.awaitTermination(10, TimeUnit.SECONDS);
            handler.close();
            kick.close();
            FileIo.close(irq);
            driver.close();
        }
    }

    /** Adds the slot's request again with a new sector (same buffers). */
    static int readd(VirtqueueDriver driver, BlkRequests.Request r, long sector, int token) {
        driver.memory().view(r.header(), BlkRequests.HEADER_BYTES).set(LE_LONG, 8, sector);
        driver.memory().putByte(r.status(), BlkRequests.STATUS_UNSET); // before the add: the device runs meanwhile
        return driver.chain().readable(r.header(), BlkRequests.HEADER_BYTES).writable(r.data(), r.dataLength())
                .writable(r.status(), 1).add(token);
    }
}
