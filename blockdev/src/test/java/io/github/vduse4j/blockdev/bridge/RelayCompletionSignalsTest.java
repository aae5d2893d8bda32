package io.github.vduse4j.blockdev.bridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.engine.frontend.FrontendQueue;
import io.github.vduse4j.engine.frontend.MemoryRegion;
import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.GuestMemory;
import io.github.vduse4j.ring.RegionTable;
import io.github.vduse4j.ring.SplitVirtqueue;
import io.github.vduse4j.ring.Virtqueue;
import io.github.vduse4j.ring.driver.DriverRing;
import io.github.vduse4j.ring.testkit.DriverConfig;
import io.github.vduse4j.ring.testkit.DriverMemory;
import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The relay's side of the spin-then-sleep switch, step by step on one thread (no timing): the target is a device-side
 * queue over the relay's own target ring in this process, which completes a request and calls only when the ring's
 * used-buffer notification suppression asks it to (virtio 1.2 §2.7.7 / §2.7.10, as qemu-storage-daemon's
 * libvhost-user does). While the poller spins ({@code quietCompletions}) a completion calls nothing; the re-arm before
 * a sleep ({@code armCompletions}) must then report it, or the request would wait for a call that never comes.
 */
class RelayCompletionSignalsTest {
    private static final int QSIZE = 16, MAX_ELEMENTS = 4;
    private static final long BOUNCE = 1L << 20, RINGS = 1L << 20;

    private final int memfd = FileIo.memfdCreate("relay-signals", FileIo.MFD_CLOEXEC);
    private MemoryRegion bounce;
    private MemoryRegion rings;
    private VirtqueueDriver driver;
    private FrontendQueue target;
    private final Poll callPoll = new Poll(1);
    private final DescriptorChain targetChain = new DescriptorChain(MAX_ELEMENTS);
    private final UsedBuffer used = new UsedBuffer();
    private Virtqueue deviceQueue;
    private Virtqueue targetQueue;
    private RelayQueueHandler relay;

    private void build(boolean packedDevice, boolean targetEventIdx) {
        FileIo.ftruncate(memfd, BOUNCE + RINGS);
        bounce = MemoryRegion.map(memfd, false, 0, BOUNCE, 0);
        rings = MemoryRegion.map(memfd, true, BOUNCE, RINGS, VhostUserBridge.RING_GPA);
        // the VDUSE side: the test kit's Linux-like driver, its buffers in the bounce region
        driver = DriverConfig.of(QSIZE).indirect(true).eventIdx(true).build(packedDevice);
        DriverMemory m = driver.memory();
        deviceQueue = driver.newDeviceQueue(RegionTable.builder()
                .add(DriverMemory.RING_BASE, m.ringSegment(), GuestMemory.READ | GuestMemory.WRITE)
                .add(DriverMemory.TABLE_BASE, m.tableSegment(), GuestMemory.READ | GuestMemory.WRITE)
                .add(DriverMemory.DATA_BASE, bounce.segment(), GuestMemory.READ | GuestMemory.WRITE).build());
        // the target: the relay's split ring, and a device over it that sees the bridge's two regions by GPA
        DriverRing ring = DriverRing.create(rings, QSIZE, false, targetEventIdx, true, MAX_ELEMENTS);
        target = new FrontendQueue(ring);
        targetQueue = new SplitVirtqueue(QSIZE, ring.descArea(), ring.driverArea(), ring.deviceArea(),
                RegionTable.builder()
                        .add(0, bounce.segment(), GuestMemory.READ | GuestMemory.WRITE)
                        .add(VhostUserBridge.RING_GPA, rings.segment(), GuestMemory.READ | GuestMemory.WRITE).build(),
                targetEventIdx, true);
        relay = new RelayQueueHandler(target, QSIZE, MAX_ELEMENTS, bounce.segment(), DriverMemory.DATA_BASE, 0);
        callPoll.add(target.callFd(), Poll.POLLIN);
    }

    @AfterEach
    void close() {
        if (target != null) {
            target.close();
        }
        if (bounce != null) {
            bounce.close();
        }
        if (rings != null) {
            rings.close();   // closes the memfd
        } else {
            FileIo.close(memfd);
        }
        if (driver != null) {
            driver.close();
        }
    }

    /** A 16-byte header and a 1-byte status in the bounce region (slot k at k * 64), posted by the relay. */
    private void submitAndRelay(int slot) {
        bounce.segment().set(ValueLayout.JAVA_BYTE, 64L * slot + 16, (byte) 0xff);
        assertTrue(driver.chain().readable(DriverMemory.DATA_BASE + 64L * slot, 16)
                .writable(DriverMemory.DATA_BASE + 64L * slot + 16, 1).add(slot) >= 0);
        driver.kickPrepare();
        assertEquals(1, relay.process(deviceQueue, 64), "popped and posted");
        assertEquals(1, relay.inflight());
    }

    /** The target serves one request: OK in its status byte, a used element; true if it then calls. */
    private boolean targetCompletes() {
        assertEquals(Virtqueue.POPPED, targetQueue.pop(targetChain));
        targetChain.writeLastByte((byte) VirtioBlk.S_OK);
        targetQueue.complete(targetChain.id(), 1);
        targetQueue.publish();
        if (targetQueue.needsNotification()) {
            EventFd.signal(target.callFd());
            return true;
        }
        return false;
    }

    private boolean callPending() {
        return callPoll.poll(0) > 0;
    }

    /** The relay reaps and completes the VDUSE chain; the driver sees it with OK in its status byte. */
    private void relayCompletes(int slot) {
        assertEquals(1, relay.process(deviceQueue, 64), "reaped and completed");
        deviceQueue.publish();
        assertTrue(driver.reap(used));
        assertEquals(slot, used.token);
        assertEquals(1, used.len);
        assertEquals(VirtioBlk.S_OK, bounce.segment().get(ValueLayout.JAVA_BYTE, 64L * slot + 16));
        assertEquals(0, relay.inflight());
    }

    @ParameterizedTest(name = "packed VDUSE ring={0}, target EVENT_IDX={1}")
    @CsvSource({"false,true", "false,false", "true,true", "true,false"})
    void aCompletionWhileCallsAreOffIsFoundByTheReArm(boolean packed, boolean eventIdx) {
        build(packed, eventIdx);
        // calls on (as the ring starts): the target calls, the relay sleeps on it
        submitAndRelay(0);
        assertFalse(relay.armCompletions(), "nothing used yet: the poller may sleep");
        assertTrue(targetCompletes(), "armed: the target calls");
        assertTrue(callPending());
        relayCompletes(0);
        assertFalse(callPending(), "the relay consumed the call before reaping");

        // the poller spins: calls off. The target completes, and does not call.
        for (int round = 1; round < 40; round++) {   // past the ring's wrap: indexes and the used_event hack
            int slot = round % 8;
            submitAndRelay(slot);
            relay.quietCompletions();
            assertFalse(targetCompletes(), "round " + round + ": the target called although calls were off");
            assertFalse(callPending());
            // the switch from spinning to sleeping: the re-arm must see the used element nobody called for
            assertTrue(relay.armCompletions(), "round " + round + ": a sleep now would never end");
            relayCompletes(slot);
            // and the next one, completed after the re-arm, calls again
            submitAndRelay(slot);
            assertFalse(relay.armCompletions());
            assertTrue(targetCompletes(), "round " + round + ": re-armed, the target calls");
            relayCompletes(slot);
        }
        assertEquals(0, target.ring().deviceFaults(), target.ring().firstDeviceFault());
    }
}
