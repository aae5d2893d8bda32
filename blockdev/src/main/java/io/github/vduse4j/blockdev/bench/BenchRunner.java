package io.github.vduse4j.blockdev.bench;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;

import io.github.vduse4j.blockdev.virtio.VirtioBlk;
import io.github.vduse4j.engine.frontend.FrontendQueue;
import io.github.vduse4j.engine.frontend.MemoryRegion;
import io.github.vduse4j.engine.frontend.MemoryTable;
import io.github.vduse4j.engine.frontend.VhostFrontend;
import io.github.vduse4j.engine.frontend.VhostUserFrontend;
import io.github.vduse4j.engine.frontend.VhostVdpaTransport;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import org.HdrHistogram.Histogram;

/**
 * Runs a {@link BenchOptions} load against a vhost-user-blk back-end: connects as the frontend (the engine's
 * {@link VhostFrontend} over a {@link VhostUserFrontend} transport), shares one memfd,
 * sets up split or packed rings, starts one {@link BenchJob} thread per queue, reports once a second to
 * {@code live}, then stops the rings (GET_VRING_BASE) and merges the results.
 */
public final class BenchRunner {
    private BenchRunner() {}

    /**
     * Features the bench accepts when offered (no EVENT_IDX, indirect or IOMMU: it polls and uses 3 descriptors).
     * VIRTIO_F_RING_PACKED is added with {@link BenchOptions#packed()} only.
     */
    static final long WANTED = VirtioBlk.bit(VirtioBlk.F_VERSION_1) | (1L << F_PROTOCOL_FEATURES)
            | VirtioBlk.bit(VirtioBlk.F_BLK_SIZE) | VirtioBlk.bit(VirtioBlk.F_SEG_MAX) | VirtioBlk.bit(VirtioBlk.F_FLUSH)
            | VirtioBlk.bit(VirtioBlk.F_RO) | VirtioBlk.bit(VirtioBlk.F_TOPOLOGY);
    static final long WANTED_PROTOCOL = (1L << PF_MQ) | (1L << PF_REPLY_ACK) | (1L << PF_CONFIG);
    /** Bytes of config space read: capacity .. num_queues (virtio 1.2 §5.2.4). */
    static final int CONFIG_BYTES = 36;

    public static BenchResult run(BenchOptions o, Consumer<String> live) {
        VhostFrontend.Connector connector = o.vhostVdpa() ? () -> VhostVdpaTransport.open(o.socket())
                : () -> VhostUserFrontend.open(o.socket(), WANTED_PROTOCOL, Duration.ZERO);
        long wanted = WANTED | (o.queues() > 1 ? VirtioBlk.bit(VirtioBlk.F_MQ) : 0)
                | (o.packed() ? VirtioBlk.bit(VirtioBlk.F_RING_PACKED) : 0)
                // vhost-vdpa: descriptors carry IOVAs the device translates through its IOTLB (virtio 1.2 §6.1)
                | (o.vhostVdpa() ? VirtioBlk.bit(VirtioBlk.F_ACCESS_PLATFORM) : 0);
        try (VhostFrontend fe = VhostFrontend.open(connector, wanted, 0)) {
            long offered = fe.offeredFeatures();
            if (fe.transport() instanceof VhostVdpaTransport t && t.deviceId() != VirtioBlk.DEVICE_ID) {
                throw new IllegalStateException(o.socket() + " is virtio device " + t.deviceId() + ", not a block device ("
                        + VirtioBlk.DEVICE_ID + ")");
            }
            if ((offered & VirtioBlk.bit(VirtioBlk.F_VERSION_1)) == 0) {
                throw new IllegalStateException("the back-end does not offer VIRTIO_F_VERSION_1");
            }
            if (o.packed() && (offered & VirtioBlk.bit(VirtioBlk.F_RING_PACKED)) == 0) {
                throw new IllegalStateException("--packed: the back-end does not offer VIRTIO_F_RING_PACKED"
                        + " (packed virtqueues); run without --packed");
            }
            int maxQueues = fe.maxQueues();
            if (o.queues() > maxQueues) {
                throw new IllegalArgumentException("--queues " + o.queues() + " but the back-end has " + maxQueues);
            }
            if (!fe.transport().hasConfig()) {
                throw new IllegalStateException("the back-end does not offer VHOST_USER_PROTOCOL_F_CONFIG: size unknown");
            }
            MemorySegment cfg = MemorySegment.ofArray(fe.config(0, CONFIG_BYTES));
            long capacity = cfg.get(ValueLayout.JAVA_LONG_UNALIGNED, 0) * VirtioBlk.SECTOR_SIZE;
            long features = fe.features();
            boolean writes = o.readPercent() < 100;
            if (writes && (features & VirtioBlk.bit(VirtioBlk.F_RO)) != 0) {
                throw new IllegalArgumentException("the device is read-only; use --rw randread or read");
            }
            long size = o.size() > 0 ? Math.min(o.size(), capacity) : capacity;
            long blocks = size / o.blockSize();
            if (blocks < o.queues()) {
                throw new IllegalArgumentException("device of " + capacity + " bytes is too small for " + o.blockSize()
                        + "-byte blocks");
            }
            return o.vhostVdpa() ? runVdpa(fe, o, features, blocks, live) : runShared(fe, o, features, blocks, live);
        }
    }

    /** vhost-user: one memfd for rings, headers and data, announced with SET_MEM_TABLE. */
    private static BenchResult runShared(VhostFrontend fe, BenchOptions o, long features, long blocks,
            Consumer<String> live) {
        long bytes = o.queues() * BlkQueue.memoryBytes(o.ringSize(), o.depth(), o.blockSize());
        try (MemoryRegion mem = MemoryRegion.memfd(bytes, 0)) {
            List<BlkQueue> queues = new ArrayList<>();
            List<BenchJob> jobs = new ArrayList<>();
            try {
                for (int i = 0; i < o.queues(); i++) {
                    BlkQueue q = new BlkQueue(mem, o.ringSize(), o.depth(), o.blockSize(), features);
                    queues.add(q);
                    jobs.add(new BenchJob(q, o, i, blocks));
                }
                fe.start(MemoryTable.of(mem), queues.stream().map(BlkQueue::queue).toArray(FrontendQueue[]::new));
                double seconds = drive(jobs, o, live, null);
                fe.stop();
                return merge(o, jobs, queues, seconds, null);
            } finally {
                queues.forEach(BlkQueue::close);
            }
        }
    }

    /**
     * vhost-vdpa: rings and request headers in one memfd (IOVA 0 up), data buffers in a second one above it. With
     * IOTLB churn each data buffer is its own IOTLB entry (an INVALIDATE removes whole entries), mapped here before
     * the start; otherwise the data memfd is one more region of the table. Every stop's GET_VRING_BASE is checked
     * against where the driver rings are.
     */
    private static BenchResult runVdpa(VhostFrontend fe, BenchOptions o, long features, long blocks,
            Consumer<String> live) {
        VhostVdpaTransport t = (VhostVdpaTransport) fe.transport();
        long unit = BlkQueue.dataBytes(o.blockSize());
        long ringBytes = o.queues() * BlkQueue.memoryBytes(o.ringSize(), o.depth(), 0);
        try (MemoryRegion rings = MemoryRegion.memfd(ringBytes, 0);
                MemoryRegion data = MemoryRegion.memfd(o.queues() * o.depth() * unit + 4096, rings.size())) {
            List<BlkQueue> queues = new ArrayList<>();
            List<BenchJob> jobs = new ArrayList<>();
            VdpaControl control = new VdpaControl(fe, t, o, jobs, queues, unit);
            try {
                for (int i = 0; i < o.queues(); i++) {
                    BlkQueue q = new BlkQueue(rings, o.ringSize(), o.depth(), o.blockSize(), features, data);
                    queues.add(q);
                    jobs.add(new BenchJob(q, o, i, blocks));
                }
                MemoryTable table;
                if (o.remapIntervalMillis() > 0) {
                    table = MemoryTable.of(rings);
                    t.beginBatch();
                    for (BlkQueue q : queues) {
                        for (int s = 0; s < q.depth(); s++) {
                            t.map(q.dataGpa(s), unit, data.uaddrOf(q.dataGpa(s) - data.gpa()), VhostVdpaTransport.ACCESS_RW);
                        }
                    }
                    t.endBatch();
                } else {
                    table = MemoryTable.of(rings, data);
                }
                control.table = table;
                fe.start(table, queues.stream().map(BlkQueue::queue).toArray(FrontendQueue[]::new));
                double seconds = drive(jobs, o, live, control);
                control.stopAndCheck();
                return merge(o, jobs, queues, seconds, control);
            } finally {
                control.close();
                queues.forEach(BlkQueue::close);
            }
        }
    }

    private static double drive(List<BenchJob> jobs, BenchOptions o, Consumer<String> live, VdpaControl control) {
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < jobs.size(); i++) {
            threads.add(Thread.ofPlatform().name("vduse4j-bench-" + i).daemon(true).start(jobs.get(i)));
        }
        long start = System.nanoTime();
        long end = start + o.runtime().toNanos();
        long lastOps = 0;
        long lastTick = start;
        try {
            while (true) {
                long now = System.nanoTime();
                if (now >= end) {
                    break;
                }
                long sleepMs = Math.max(1, Math.min(1000, (end - now) / 1_000_000));
                if (control != null) {
                    sleepMs = Math.min(sleepMs, Math.max(1, control.millisToNextAction(now)));
                }
                Thread.sleep(sleepMs);
                now = System.nanoTime();
                if (control != null && now < end) {
                    control.act(now);
                }
                long ops = 0;
                for (BenchJob j : jobs) {
                    ops += j.completedOps();
                }
                if (live != null && now - lastTick >= 900_000_000L) {
                    double rate = (ops - lastOps) / ((now - lastTick) / 1e9);
                    live.accept(String.format(Locale.ROOT, "[%4.0fs] %9.0f IOPS %8.1f MB/s", (now - start) / 1e9, rate,
                            rate * o.blockSize() / 1e6));
                    lastOps = ops;
                    lastTick = now;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (BenchJob j : jobs) {
            j.stop = true;
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return seconds;
    }

    private static BenchResult merge(BenchOptions o, List<BenchJob> jobs, List<BlkQueue> queues, double seconds,
            VdpaControl control) {
        Histogram h = new Histogram(60_000_000_000L, 3);
        long reads = 0, writes = 0, bytes = 0, errors = 0, verifyErrors = 0, verified = 0, kicks = 0, faults = 0, calls = 0;
        String problem = null;
        for (BenchJob j : jobs) {
            h.add(j.histogram);
            reads += j.reads;
            writes += j.writes;
            bytes += j.bytes;
            errors += j.errors;
            verifyErrors += j.verifyErrors;
            verified += j.verified;
            if (problem == null) {
                problem = j.firstProblem;
            }
        }
        if (control != null) {
            errors += control.errors;
            if (problem == null) {
                problem = control.firstProblem;
            }
        }
        for (BlkQueue q : queues) {
            kicks += q.kicks();
            calls += q.queue().calls();
            faults += q.ring().deviceFaults();
        }
        return new BenchResult(o.socket().toString(), o, seconds, reads, writes, bytes, errors, verifyErrors, verified,
                us(h.getValueAtPercentile(50)), us(h.getValueAtPercentile(90)), us(h.getValueAtPercentile(99)),
                us(h.getValueAtPercentile(99.9)), us(h.getMaxValue()), h.getTotalCount() == 0 ? 0 : h.getMean() / 1000.0,
                kicks, faults, problem, control == null ? 0 : control.remaps, control == null ? 0 : control.restarts,
                control == null ? 0 : control.baseChecks, calls);
    }

    private static double us(long nanos) {
        return nanos / 1000.0;
    }
}
