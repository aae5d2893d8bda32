package io.github.vduse4j.blockdev.bench;

import io.github.vduse4j.engine.frontend.FrontendQueue;
import io.github.vduse4j.engine.frontend.MemoryRegion;
import io.github.vduse4j.engine.frontend.MemoryTable;
import io.github.vduse4j.engine.frontend.VhostFrontend;
import io.github.vduse4j.engine.frontend.VhostVdpaTransport;
import io.github.vduse4j.ring.driver.DriverRing;
import java.util.List;

/**
 * What {@code vduse4j bench --vhost-vdpa} does to the device while its jobs run, on the runner's thread:
 * <ul>
 * <li>IOTLB churn ({@link BenchOptions#remapIntervalMillis()}): each round takes one data buffer of every queue out of
 *     use (the job hands it over once no request uses it), then in one IOTLB batch invalidates each buffer's IOVA
 *     range and maps the same IOVAs to a new memfd filled with garbage, the way a VM's memory moves under ballooning,
 *     hotplug or a vIOMMU. BATCH_END returns once the device answered (VDUSE: UPDATE_IOTLB to its daemon, which must
 *     drop every stale mapping first). Only then is the buffer rebound to the new memory and handed back, and the old
 *     pages poisoned: a device that kept the old mapping reads garbage and writes where the bench never looks,
 *     which {@code --verify} reports.</li>
 * <li>Stop/start ({@link BenchOptions#stopStartIntervalMillis()}): every job drains and pauses, the frontend stops
 *     (VHOST_GET_VRING_BASE per ring, VDUSE: GET_VQ_STATE to the daemon, then reset), each base is checked against
 *     the driver ring's own position, and the device is started again from there (features, table, rings at their
 *     bases, DRIVER_OK).</li>
 * </ul>
 * The final stop's bases are checked as well. Not thread-safe: the runner's thread only.
 */
final class VdpaControl implements AutoCloseable {
    private static final long HANDOVER_TIMEOUT_NANOS = 10_000_000_000L;

    private final VhostFrontend fe;
    private final VhostVdpaTransport transport;
    private final BenchOptions o;
    private final List<BenchJob> jobs;
    private final List<BlkQueue> queues;
    private final long unit;
    /** Per queue and slot: the memfd now behind the buffer (null: still the original data region). */
    private MemoryRegion[][] moved;
    private int[] nextSlot;
    private long nextRemap;
    private long nextRestart;
    private boolean churnBroken;
    MemoryTable table;
    long remaps, restarts, baseChecks, errors;
    String firstProblem;

    VdpaControl(VhostFrontend fe, VhostVdpaTransport transport, BenchOptions o, List<BenchJob> jobs,
            List<BlkQueue> queues, long unit) {
        this.fe = fe;
        this.transport = transport;
        this.o = o;
        this.jobs = jobs;
        this.queues = queues;
        this.unit = unit;
        long now = System.nanoTime();
        this.nextRemap = now + o.remapIntervalMillis() * 1_000_000L;
        this.nextRestart = now + o.stopStartIntervalMillis() * 1_000_000L;
    }

    /** Milliseconds until the next remap or restart is due (Long.MAX_VALUE: none). */
    long millisToNextAction(long now) {
        long next = Long.MAX_VALUE;
        if (o.remapIntervalMillis() > 0 && !churnBroken) {
            next = Math.min(next, (nextRemap - now) / 1_000_000L);
        }
        if (o.stopStartIntervalMillis() > 0) {
            next = Math.min(next, (nextRestart - now) / 1_000_000L);
        }
        return next;
    }

    /** Runs whatever is due. */
    void act(long now) {
        if (o.remapIntervalMillis() > 0 && !churnBroken && now - nextRemap >= 0) {
            remapRound();
            nextRemap = System.nanoTime() + o.remapIntervalMillis() * 1_000_000L;
        }
        if (o.stopStartIntervalMillis() > 0 && now - nextRestart >= 0) {
            stopStart();
            nextRestart = System.nanoTime() + o.stopStartIntervalMillis() * 1_000_000L;
        }
    }

    private void remapRound() {
        int n = jobs.size();
        if (moved == null) {
            moved = new MemoryRegion[n][o.depth()];
            nextSlot = new int[n];
        }
        int[] slot = new int[n];
        for (int j = 0; j < n; j++) {
            slot[j] = nextSlot[j];
            nextSlot[j] = (nextSlot[j] + 1) % o.depth();
            jobs.get(j).remapWanted = slot[j];
        }
        long deadline = System.nanoTime() + HANDOVER_TIMEOUT_NANOS;
        for (int j = 0; j < n; j++) {
            while (jobs.get(j).remapHeld != slot[j]) {
                if (System.nanoTime() - deadline > 0 || queues.get(j).ring().broken()) {
                    problem("queue " + j + " did not hand over buffer " + slot[j] + " for a remap; churn stops");
                    churnBroken = true;
                    for (BenchJob job : jobs) {
                        job.remapWanted = -1;
                    }
                    return;   // a job that took its slot late keeps it until its final drain
                }
                Thread.onSpinWait();
            }
            jobs.get(j).remapWanted = -1;
        }
        MemoryRegion[] fresh = new MemoryRegion[n];
        try {
            for (int j = 0; j < n; j++) {
                BlkQueue q = queues.get(j);
                fresh[j] = MemoryRegion.memfd(unit, q.dataGpa(slot[j]));
                fresh[j].segment().fill((byte) 0x5a);
            }
            transport.beginBatch();
            for (int j = 0; j < n; j++) {
                long iova = queues.get(j).dataGpa(slot[j]);
                transport.unmap(iova, unit);
                transport.map(iova, unit, fresh[j].uaddr(), VhostVdpaTransport.ACCESS_RW);
            }
            transport.endBatch();   // returns once the device has the new map (and dropped the old)
        } catch (RuntimeException e) {
            for (MemoryRegion r : fresh) {
                if (r != null) {
                    r.close();
                }
            }
            problem("IOTLB remap failed: " + e.getMessage());
            churnBroken = true;
            for (int j = 0; j < n; j++) {
                jobs.get(j).remapDone = slot[j];   // the old mapping may be gone: the verify will tell
            }
            return;
        }
        for (int j = 0; j < n; j++) {
            BlkQueue q = queues.get(j);
            MemoryRegion old = moved[j][slot[j]];
            q.data(slot[j]).fill((byte) 0xa5);   // poison what the device must no longer see
            q.rebind(slot[j], fresh[j].segment());
            moved[j][slot[j]] = fresh[j];
            jobs.get(j).remapDone = slot[j];   // volatile: publishes the rebind to the job
            if (old != null) {
                old.close();
            }
        }
        remaps += n;
    }

    private void stopStart() {
        for (BenchJob j : jobs) {
            j.pauseWanted = true;
        }
        long deadline = System.nanoTime() + 2 * HANDOVER_TIMEOUT_NANOS;
        for (int i = 0; i < jobs.size(); i++) {
            while (!jobs.get(i).paused) {
                if (System.nanoTime() - deadline > 0 || queues.get(i).ring().broken()) {
                    problem("queue " + i + " did not drain for a stop");
                    resume();
                    return;
                }
                Thread.onSpinWait();
            }
        }
        try {
            check(fe.stop());
            fe.start(table, queues.stream().map(BlkQueue::queue).toArray(FrontendQueue[]::new));
            restarts++;
        } catch (RuntimeException e) {
            problem("stop/start failed: " + e.getMessage());
        } finally {
            resume();
        }
    }

    private void resume() {
        for (BenchJob j : jobs) {
            j.pauseWanted = false;
        }
    }

    /** The last stop, after every job ended: the bases are checked too. */
    void stopAndCheck() {
        check(fe.stop());
    }

    /**
     * Every queue drained, so the device has consumed exactly what the driver made available: split, its last avail
     * index is the driver's avail idx (16 bits); packed, both last avail and last used (index | wrap &lt;&lt; 15) are the
     * driver's next ones (vhost.c VHOST_GET_VRING_BASE, vdpa.c from vdpa_vq_state).
     */
    private void check(int[] bases) {
        for (int i = 0; i < bases.length; i++) {
            DriverRing r = queues.get(i).ring();
            if (r.broken()) {
                continue;
            }
            int expected = r.vringBase();
            boolean same = r.packed() ? bases[i] == expected : (bases[i] & 0xffff) == (expected & 0xffff);
            baseChecks++;
            if (!same) {
                problem(String.format("vring %d: VHOST_GET_VRING_BASE says 0x%x but the driver ring is at 0x%x", i,
                        bases[i], expected));
            }
        }
    }

    private void problem(String s) {
        errors++;
        if (firstProblem == null) {
            firstProblem = s;
        }
    }

    @Override
    public void close() {
        if (moved != null) {
            for (MemoryRegion[] q : moved) {
                for (MemoryRegion r : q) {
                    if (r != null) {
                        r.close();
                    }
                }
            }
        }
    }
}
