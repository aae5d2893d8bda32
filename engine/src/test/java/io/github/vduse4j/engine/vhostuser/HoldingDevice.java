package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.engine.VirtioDevice;
import io.github.vduse4j.ring.DescriptorChain;
import io.github.vduse4j.ring.Virtqueue;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A test device like {@link EchoDevice} (each chain's readable bytes are copied into its writable ones when it is
 * popped) whose completions the test releases, in any order: {@link #release}. While it holds requests the poller
 * only polls, so the shared memory stays as a crashed back-end would have left it. Queue 0 only.
 */
final class HoldingDevice implements VirtioDevice {
    private final ConcurrentLinkedQueue<Integer> released = new ConcurrentLinkedQueue<>();
    private volatile boolean releaseAll;
    final AtomicInteger popped = new AtomicInteger();

    @Override public int deviceId() { return 2; }
    @Override public long deviceFeatures() { return EchoDevice.FEATURES; }
    @Override public byte[] configSpace() { return new byte[60]; }
    @Override public int queueCount() { return 1; }
    @Override public int maxQueueSize() { return 256; }

    /** Lets the chain {@code id} complete (with what was echoed into it). */
    void release(int id) {
        released.add(id);
    }

    /** Lets everything complete from now on (for the drain when the back-end stops). */
    void releaseAll() {
        releaseAll = true;
    }

    @Override
    public QueueHandler openQueue(int index, long negotiatedFeatures, int queueSize) {
        return new QueueHandler() {
            final DescriptorChain chain = new DescriptorChain(DescriptorChain.capacityFor(queueSize));
            final MemorySegment scratch = Arena.ofAuto().allocate(1 << 16);
            final Map<Integer, Integer> held = new LinkedHashMap<>();
            final QueueStats stats = new QueueStats();

            @Override
            public int process(Virtqueue q, int budget) {
                int n = 0;
                for (Integer id; (id = released.poll()) != null; ) {
                    Integer w = held.remove(id);
                    if (w != null) {
                        q.complete(id, w);
                        n++;
                    }
                }
                if (releaseAll) {
                    for (Map.Entry<Integer, Integer> e : held.entrySet()) {
                        q.complete(e.getKey(), e.getValue());
                        n++;
                    }
                    held.clear();
                }
                while (n < budget) {
                    int r = q.pop(chain);
                    if (r == Virtqueue.EMPTY || r == Virtqueue.NEEDS_RESET) {
                        break;
                    }
                    n++;
                    stats.popped();
                    stats.completed(-1, -1, 0, 0);
                    int w = 0;
                    if (r == Virtqueue.POPPED) {
                        long len = Math.min(chain.readableLength(), scratch.byteSize());
                        chain.readTo(0, scratch, 0, len);
                        w = (int) chain.writeFrom(scratch, 0, 0, len);
                    }
                    held.put(chain.id(), w);
                    popped.incrementAndGet();
                }
                return n;
            }

            @Override public int inflight() { return held.size(); }
            @Override public QueueStats stats() { return stats; }
            @Override public void close() { }
        };
    }
}
