package io.github.vduse4j.jmh.blk;

import io.github.vduse4j.blockdev.backend.NullBackend;
import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.blockdev.virtio.VirtioBlkDevice;
import io.github.vduse4j.blockdev.virtio.VirtioBlkSettings;
import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.jmh.ring.RingReplay;
import io.github.vduse4j.ring.Virtqueue;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The whole device-side request path on one core: pop a virtio-blk chain (16 B header, 4 KiB data, status),
 * parse and validate it, submit to the null backend, write the status byte, stage the used element; one publish
 * and one notification check per batch, exactly as {@code QueuePoller} drives {@code QueueHandler}. Chains are
 * re-exposed by {@link RingReplay}. One operation = one request. Target (issue #7): at least 10 M requests/s,
 * 0 B/op ({@code -prof gc}).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1)
public class BlkRequestPathBenchmark {
    static final int REQUESTS_PER_INVOCATION = 64;
    static final int QUEUE_SIZE = 256;

    @Param({"split", "packed"})
    public String ring;

    @Param({"1", "16", "64"})
    public int batch;

    /** IN (read) or OUT (write) requests. */
    @Param({"read", "write"})
    public String op;

    /**
     * {@code on}: the queue is a VDUSE reconnect-logged {@code TrackedVirtqueue} over a {@code ReconnectLog} in a
     * memfd (every pop, completion and publication recorded, as an export with a reconnect log runs); {@code off}: the
     * bare ring.
     */
    @Param({"off", "on"})
    public String log;

    private RingReplay replay;
    private io.github.vduse4j.engine.vduse.ReconnectLog reconnectLog;
    private Virtqueue queue;
    private QueueHandler handler;
    private NullBackend backend;

    @Setup
    public void setup() {
        boolean read = op.equals("read");
        replay = new RingReplay(ring.equals("packed"), QUEUE_SIZE, read);
        MemorySegment hdr = replay.memory().view(replay.header, 16);
        hdr.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, read ? VirtioBlk.T_IN : VirtioBlk.T_OUT);
        hdr.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 8, 2048L);
        queue = replay.newDeviceQueue();
        if (log.equals("on")) {
            boolean packed = ring.equals("packed");
            reconnectLog = io.github.vduse4j.engine.vduse.ReconnectLog.create(null,
                    io.github.vduse4j.bindings.FileIo.memfdCreate("bench-log", io.github.vduse4j.bindings.FileIo.MFD_CLOEXEC),
                    new io.github.vduse4j.engine.vduse.ReconnectLog.Identity(0, 1, QUEUE_SIZE, 512, 1L << 30, "bench"));
            MemorySegment region = reconnectLog.formatQueue(0, QUEUE_SIZE, packed, 0, true);
            io.github.vduse4j.engine.inflight.InflightTracker t;
            if (packed) {
                var pt = new io.github.vduse4j.engine.inflight.PackedInflightTracker(region, QUEUE_SIZE);
                pt.recover(replay.descSegment());
                t = pt;
            } else {
                t = new io.github.vduse4j.engine.inflight.SplitInflightTracker(region, QUEUE_SIZE);
            }
            queue = new io.github.vduse4j.engine.inflight.TrackedVirtqueue(0, queue, t, null, null);
        }
        queue.disableNotifications();
        backend = new NullBackend(1L << 30, false);
        VirtioBlkDevice dev = new VirtioBlkDevice(backend, new VirtioBlkSettings(1, QUEUE_SIZE, 512, "bench", false));
        handler = dev.openQueue(0, dev.deviceFeatures(), QUEUE_SIZE);
    }

    @TearDown
    public void tearDown() {
        if (handler.stats().ioErrors() != 0 || handler.stats().chainErrors() != 0) {
            throw new IllegalStateException("requests failed: " + handler.stats());
        }
        handler.close();
        replay.close();
        if (reconnectLog != null) {
            reconnectLog.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(REQUESTS_PER_INVOCATION)
    public int process() {
        final int b = batch;
        int sum = 0;
        for (int done = 0; done < REQUESTS_PER_INVOCATION; done += b) {
            replay.expose(b, done);
            sum += handler.process(queue, b);
            queue.publish();
            if (queue.needsNotification()) {
                sum++;
            }
        }
        return sum;
    }
}
