package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.MemoryMap;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The shared inflight-tracking buffer of GET_INFLIGHT_FD / SET_INFLIGHT_FD (spec "Inflight I/O tracking"), split
 * virtqueue layout: per queue a {@code QueueRegionSplit} (features u64, version u16, desc_num u16,
 * last_batch_head u16, used_idx u16) followed by {@code desc_num} {@code DescStateSplit}s (inflight u8, padding,
 * next u16 at 6, counter u64 at 8). The back-end creates it (a memfd), the frontend keeps the fd across back-end
 * restarts and hands it back, so a new back-end learns which requests were popped but never completed.
 */
public final class InflightRegion implements AutoCloseable {
    static final int HEADER = 16;
    static final int DESC = 16;
    static final int ALIGN = 64;
    static final int VERSION = 1;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;

    private final int fd;
    private final MemorySegment mapping;
    private final long mmapSize;
    private final int numQueues;
    private final int queueSize;

    private InflightRegion(int fd, MemorySegment mapping, long mmapSize, int numQueues, int queueSize) {
        this.fd = fd;
        this.mapping = mapping;
        this.mmapSize = mmapSize;
        this.numQueues = numQueues;
        this.queueSize = queueSize;
    }

    /** Bytes of one queue's region: header plus one state per descriptor, 64-aligned (as libvhost-user). */
    static long queueRegionSize(int queueSize) {
        return (HEADER + (long) DESC * queueSize + ALIGN - 1) & ~(ALIGN - 1L);
    }

    /** GET_INFLIGHT_FD: a fresh, zeroed buffer for {@code numQueues} queues of {@code queueSize}. */
    static InflightRegion create(int numQueues, int queueSize) {
        long size = queueRegionSize(queueSize) * numQueues;
        int fd = FileIo.memfdCreate("vduse4j-inflight", FileIo.MFD_CLOEXEC);
        try {
            FileIo.ftruncate(fd, size);
            MemorySegment m = MemoryMap.map(size, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE, MemoryMap.MAP_SHARED, fd, 0);
            InflightRegion r = new InflightRegion(fd, m, size, numQueues, queueSize);
            for (int q = 0; q < numQueues; q++) {
                MemorySegment h = r.queueSegment(q);
                h.set(U16, 8, (short) VERSION);
                h.set(U16, 10, (short) queueSize);
            }
            return r;
        } catch (RuntimeException e) {
            VhostUserMessage.closeQuietly(fd);
            throw e;
        }
    }

    /**
     * SET_INFLIGHT_FD: maps the buffer the frontend returns. Takes ownership of {@code fd}.
     *
     * @throws IllegalArgumentException if the description does not fit (sizes come from the frontend)
     */
    static InflightRegion attach(int fd, long mmapSize, long mmapOffset, int numQueues, int queueSize) {
        try {
            if (numQueues <= 0 || queueSize <= 0 || queueSize > 32768) {
                throw new IllegalArgumentException("inflight buffer for " + numQueues + " queues of " + queueSize);
            }
            long need = queueRegionSize(queueSize) * numQueues;
            if (mmapSize < need || mmapSize > (1L << 32) || mmapOffset < 0 || (mmapOffset & 4095) != 0) {
                throw new IllegalArgumentException("inflight buffer of " + mmapSize + " bytes at offset " + mmapOffset
                        + " (needs " + need + ", page-aligned offset)");
            }
            long fileSize = FileSize.of(fd);
            if (fileSize >= 0 && mmapOffset + mmapSize > fileSize) {
                throw new IllegalArgumentException("inflight buffer beyond the end of its fd (" + fileSize + " bytes)");
            }
            MemorySegment m = MemoryMap.map(mmapSize, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE, MemoryMap.MAP_SHARED,
                    fd, mmapOffset);
            return new InflightRegion(fd, m, mmapSize, numQueues, queueSize);
        } catch (RuntimeException e) {
            VhostUserMessage.closeQuietly(fd);
            throw e instanceof IllegalArgumentException ? e : new IllegalArgumentException(e.getMessage(), e);
        }
    }

    int fd() { return fd; }
    long mmapSize() { return mmapSize; }
    int numQueues() { return numQueues; }
    int queueSize() { return queueSize; }

    private MemorySegment queueSegment(int q) {
        long per = queueRegionSize(queueSize);
        return mapping.asSlice(per * q, per);
    }

    /** The tracker of queue {@code q} for a ring of {@code ringSize}, or null if the buffer does not describe it. */
    Tracker tracker(int q, int ringSize) {
        if (q < 0 || q >= numQueues || ringSize != queueSize) {
            return null;
        }
        MemorySegment s = queueSegment(q);
        int version = s.get(U16, 8);
        int descNum = s.get(U16, 10) & 0xffff;
        if (version == 0) { // uninitialised buffer from an older frontend: start it
            s.set(U16, 8, (short) VERSION);
            s.set(U16, 10, (short) ringSize);
            descNum = ringSize;
        }
        if (descNum != ringSize) {
            return null;
        }
        return new Tracker(s, ringSize);
    }

    @Override
    public void close() {
        MemoryMap.unmap(mapping);
        VhostUserMessage.closeQuietly(fd);
    }

    /**
     * One queue's tracking, following the spec's steps for split virtqueues. Poller thread only while the queue
     * runs; {@link #recover} runs on the control thread before it starts.
     */
    static final class Tracker {
        private final MemorySegment s;
        private final int size;
        private final int[] batch;
        private int batchCount;
        private long counter;

        Tracker(MemorySegment s, int size) {
            this.s = s;
            this.size = size;
            this.batch = new int[size];
        }

        private long desc(int i) {
            return HEADER + (long) DESC * i;
        }

        /** Receiving an available buffer with head {@code i}. */
        void popped(int i) {
            if (i < 0 || i >= size) {
                return;
            }
            s.set(U64, desc(i) + 8, counter++);
            s.set(ValueLayout.JAVA_BYTE, desc(i), (byte) 1);
        }

        /** Supplying used buffer {@code i}: link it into the last batch list. */
        void completed(int i) {
            if (i < 0 || i >= size || batchCount == size) {
                return;
            }
            s.set(U16, desc(i) + 6, s.get(U16, 12));
            s.set(U16, 12, (short) i);
            batch[batchCount++] = i;
        }

        /** After the used index {@code usedIdx} was published: clear the batch, then record the index. */
        void published(int usedIdx) {
            for (int k = 0; k < batchCount; k++) {
                s.set(ValueLayout.JAVA_BYTE, desc(batch[k]), (byte) 0);
            }
            batchCount = 0;
            s.set(U16, 14, (short) usedIdx);
        }

        /**
         * On reconnect (spec "When reconnecting"): if the recorded used_idx lags the ring's, the last batch was
         * published but not cleared, so clear its entries; then return the heads still in flight, oldest first.
         */
        List<Integer> recover(int ringUsedIdx) {
            int recorded = s.get(U16, 14) & 0xffff;
            if (recorded != ringUsedIdx) {
                int n = (ringUsedIdx - recorded) & 0xffff;
                int i = s.get(U16, 12) & 0xffff;
                for (int k = 0; k < n && k < size && i < size; k++) {
                    s.set(ValueLayout.JAVA_BYTE, desc(i), (byte) 0);
                    i = s.get(U16, desc(i) + 6) & 0xffff;
                }
                s.set(U16, 14, (short) ringUsedIdx);
            }
            List<Integer> heads = new ArrayList<>();
            long max = -1;
            for (int i = 0; i < size; i++) {
                if (s.get(ValueLayout.JAVA_BYTE, desc(i)) == 1) {
                    heads.add(i);
                }
                max = Math.max(max, s.get(U64, desc(i) + 8));
            }
            counter = max + 1;
            heads.sort(Comparator.comparingLong(i -> s.get(U64, desc(i) + 8)));
            return heads;
        }
    }
}
