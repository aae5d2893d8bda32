package io.github.vduse4j.engine.vhostuser;

import io.github.vduse4j.engine.inflight.PackedInflightTracker;
import io.github.vduse4j.engine.inflight.SplitInflightTracker;

import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.MemoryMap;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The shared inflight-tracking buffer of GET_INFLIGHT_FD / SET_INFLIGHT_FD (spec "Inflight I/O tracking"): one
 * queue region per queue, in the split layout ({@link SplitInflightTracker}) or the packed one
 * ({@link PackedInflightTracker}). The back-end creates it (a memfd), the frontend keeps the fd across back-end
 * restarts and hands it back, so a new back-end learns which requests were popped but never used.
 *
 * <p><b>Stride.</b> QEMU's vhost-user-blk asks for the buffer (GET_INFLIGHT_FD) before SET_FEATURES, so when it is
 * created nobody knows whether the rings will be split or packed. Every queue region therefore gets the stride of
 * the larger, packed layout: {@code 32 + 32 * queueSize} bytes rounded up to 64 (the split layout needs
 * {@code 16 + 16 * queueSize}, as libvhost-user allocates). Both layouts start with the same {@code features},
 * {@code version} and {@code desc_num} fields. A fresh region is formatted for both at once: version, desc_num and
 * the packed free list ({@code desc[j].next = j + 1}, wrap counters 1, as DPDK initialises it); every field the
 * split layout reads (its inflight bytes, counters, {@code last_batch_head}, {@code used_idx}) stays zero, since
 * the packed values all land in split padding. A buffer handed back with only the split stride (an older vduse4j,
 * or libvhost-user) is still accepted, for split rings only.
 */
public final class InflightRegion implements AutoCloseable {
    /** Queue regions start at multiples of 64 bytes (as libvhost-user and DPDK lay them out). */
    static final int ALIGN = 64;
    /** {@code version} of the layouts the spec describes ("It's 1 currently. Zero value indicates an uninitialized buffer"). */
    static final int VERSION = 1;
    /** Header fields common to both layouts. */
    static final long VERSION_OFFSET = 8, DESC_NUM_OFFSET = 10;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    private final int fd;
    private final MemorySegment mapping;
    private final long mmapSize;
    private final int numQueues;
    private final int queueSize;
    private final long stride;

    private InflightRegion(int fd, MemorySegment mapping, long mmapSize, int numQueues, int queueSize, long stride) {
        this.fd = fd;
        this.mapping = mapping;
        this.mmapSize = mmapSize;
        this.numQueues = numQueues;
        this.queueSize = queueSize;
        this.stride = stride;
    }

    private static long align(long bytes) {
        return (bytes + ALIGN - 1) & ~(ALIGN - 1L);
    }

    /** Bytes of one queue's region: room for either layout (the packed one is the larger), 64-aligned. */
    static long queueRegionSize(int queueSize) {
        return align(PackedInflightTracker.HEADER + (long) PackedInflightTracker.DESC * queueSize);
    }

    /** Bytes of one queue's region in the split layout alone (libvhost-user's stride). */
    static long splitQueueRegionSize(int queueSize) {
        return align(SplitInflightTracker.HEADER + (long) SplitInflightTracker.DESC * queueSize);
    }

    /** GET_INFLIGHT_FD: a fresh buffer for {@code numQueues} queues of {@code queueSize}, formatted for both layouts. */
    static InflightRegion create(int numQueues, int queueSize) {
        long per = queueRegionSize(queueSize);
        long size = per * numQueues;
        int fd = FileIo.memfdCreate("vduse4j-inflight", FileIo.MFD_CLOEXEC);
        try {
            FileIo.ftruncate(fd, size);
            MemorySegment m = MemoryMap.map(size, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE, MemoryMap.MAP_SHARED, fd, 0);
            InflightRegion r = new InflightRegion(fd, m, size, numQueues, queueSize, per);
            for (int q = 0; q < numQueues; q++) {
                MemorySegment s = r.queueSegment(q);
                PackedInflightTracker.format(s, queueSize);
                s.set(U16, DESC_NUM_OFFSET, (short) queueSize);
                s.set(U16, VERSION_OFFSET, (short) VERSION);
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
            long need = splitQueueRegionSize(queueSize) * numQueues;
            if (mmapSize < need || mmapSize > (1L << 32) || mmapOffset < 0 || (mmapOffset & 4095) != 0) {
                throw new IllegalArgumentException("inflight buffer of " + mmapSize + " bytes at offset " + mmapOffset
                        + " (needs " + need + ", page-aligned offset)");
            }
            long fileSize = FileSize.of(fd);
            if (fileSize >= 0 && mmapOffset + mmapSize > fileSize) {
                throw new IllegalArgumentException("inflight buffer beyond the end of its fd (" + fileSize + " bytes)");
            }
            // Our own stride if the buffer is large enough for it, else the split one (split rings only).
            long stride = mmapSize >= queueRegionSize(queueSize) * numQueues
                    ? queueRegionSize(queueSize) : splitQueueRegionSize(queueSize);
            MemorySegment m = MemoryMap.map(mmapSize, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE, MemoryMap.MAP_SHARED,
                    fd, mmapOffset);
            return new InflightRegion(fd, m, mmapSize, numQueues, queueSize, stride);
        } catch (RuntimeException e) {
            VhostUserMessage.closeQuietly(fd);
            throw e instanceof IllegalArgumentException ? e : new IllegalArgumentException(e.getMessage(), e);
        }
    }

    int fd() { return fd; }
    long mmapSize() { return mmapSize; }
    int numQueues() { return numQueues; }
    int queueSize() { return queueSize; }
    /** Bytes between two queue regions. */
    long stride() { return stride; }

    /** Queue {@code q}'s region (a slice of the mapping, {@link #stride()} bytes). */
    MemorySegment queueSegment(int q) {
        return mapping.asSlice(stride * q, stride);
    }

    /** What the buffer is, for log lines. */
    String describe() {
        return numQueues + " queues of " + queueSize + ", " + stride + "-byte regions";
    }

    /**
     * The split tracker of queue {@code q} for a ring of {@code ringSize}, or null if the buffer does not describe
     * it (no such queue, another size or desc_num, an unknown version). A region of version 0 is formatted first.
     */
    SplitInflightTracker splitTracker(int q, int ringSize) {
        MemorySegment s = region(q, ringSize, splitQueueRegionSize(ringSize));
        return s == null ? null : new SplitInflightTracker(s, ringSize);
    }

    /** As {@link #splitTracker}, for a packed ring (needs the packed stride). */
    PackedInflightTracker packedTracker(int q, int ringSize) {
        MemorySegment s = region(q, ringSize, queueRegionSize(ringSize));
        return s == null ? null : new PackedInflightTracker(s, ringSize);
    }

    private MemorySegment region(int q, int ringSize, long need) {
        // spec: one queue region per queue of the VhostUserInflight description, desc_num = its queue size
        if (q < 0 || q >= numQueues || ringSize != queueSize || stride < need) {
            return null;
        }
        MemorySegment s = queueSegment(q);
        int version = s.get(U16, VERSION_OFFSET) & 0xffff;
        if (version == 0) { // uninitialised (spec): format it; fits both layouts when the stride allows
            if (stride >= queueRegionSize(ringSize)) {
                PackedInflightTracker.format(s, ringSize);
            }
            s.set(U16, DESC_NUM_OFFSET, (short) ringSize);
            s.set(U16, VERSION_OFFSET, (short) VERSION);
            return s;
        }
        // spec: version "is 1 currently"; desc_num "is equal to the virtqueue size"
        int descNum = s.get(U16, DESC_NUM_OFFSET) & 0xffff;
        return version == VERSION && descNum == ringSize ? s : null;
    }

    @Override
    public void close() {
        MemoryMap.unmap(mapping);
        VhostUserMessage.closeQuietly(fd);
    }
}
