package io.github.vduse4j.engine.vduse;

import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.MemoryMap;
import io.github.vduse4j.engine.TransportException;
import io.github.vduse4j.engine.inflight.PackedInflightTracker;
import io.github.vduse4j.engine.inflight.SplitInflightTracker;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The VDUSE device's reconnect log: a file mapped {@code MAP_SHARED}, so the page cache keeps every store across a
 * {@code kill -9}, that lets a new process take over {@code /dev/vduse/NAME} (the kernel keeps the device, its rings
 * and the attached /dev/vdX when the old process dies). It holds a header that identifies the device, and one region
 * per queue in the inflight layouts of {@link SplitInflightTracker} / {@link PackedInflightTracker} (the vhost-user
 * spec's "Inflight I/O tracking", also what QEMU's libvduse logs), all regions one stride apart, large enough for
 * either layout (whether the driver picks split or packed is known only at DRIVER_OK).
 *
 * <pre>
 * header (one 4 KiB page, host byte order):
 *   magic u64 @0 ("VD4JRLOG"), version u32 @8, state u32 @12 (0 created, 1 driver running, 2 upgrade stop),
 *   offered features u64 @16, negotiated features u64 @24, queue count u32 @32, max queue size u32 @36,
 *   block size u32 @40, device status u32 @44, capacity bytes u64 @48, backend identity length u32 @56,
 *   backend identity UTF-8 @60 (up to 256 bytes)
 * queue q's region @4096 + q * stride: features u64 @0, version u16 @8, desc_num u16 @10 (the ring size), then the
 *   split or packed layout; stride = 32 + 32 * max queue size rounded up to 64
 * </pre>
 *
 * Only the control thread writes the header; each queue's poller writes its own region (plain stores and release
 * fences, no syscalls).
 */
public final class ReconnectLog implements AutoCloseable {
    static final long MAGIC = 0x474f4c524a344456L; // "VD4JRLOG" in little-endian bytes
    static final int VERSION = 1;
    static final long HEADER_BYTES = 4096;
    static final int MAX_IDENTITY = 256;
    static final long OFF_MAGIC = 0, OFF_VERSION = 8, OFF_STATE = 12, OFF_OFFERED = 16, OFF_NEGOTIATED = 24,
            OFF_QUEUES = 32, OFF_QUEUE_SIZE = 36, OFF_BLOCK_SIZE = 40, OFF_STATUS = 44, OFF_CAPACITY = 48,
            OFF_IDENTITY_LEN = 56, OFF_IDENTITY = 60;
    static final long REGION_VERSION = 8, REGION_DESC_NUM = 10;

    /** The driver has not started the device yet (or reset it): nothing to recover but the device itself. */
    public static final int STATE_CREATED = 0;
    /** The driver runs the device: queues are logged and must be recovered. */
    public static final int STATE_RUNNING = 1;
    /** An upgrade stop drained every queue: positions are logged, nothing is in flight. */
    public static final int STATE_UPGRADE_STOP = 2;

    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    /** What the log must match for a restart to take the device over. */
    public record Identity(long offeredFeatures, int queues, int maxQueueSize, int blockSize, long capacity,
                           String backend) {
        public Identity {
            byte[] b = backend.getBytes(StandardCharsets.UTF_8);
            if (b.length > MAX_IDENTITY) {
                backend = new String(b, 0, MAX_IDENTITY, StandardCharsets.UTF_8);
            }
        }
    }

    private final Path path;
    private final int fd;
    private final MemorySegment map;
    private final int queues;
    private final int maxQueueSize;
    private final long stride;

    private ReconnectLog(Path path, int fd, MemorySegment map, int queues, int maxQueueSize) {
        this.path = path;
        this.fd = fd;
        this.map = map;
        this.queues = queues;
        this.maxQueueSize = maxQueueSize;
        this.stride = stride(maxQueueSize);
    }

    static long stride(int maxQueueSize) {
        return (PackedInflightTracker.HEADER + (long) PackedInflightTracker.DESC * maxQueueSize + 63) & ~63L;
    }

    static long fileSize(int queues, int maxQueueSize) {
        return HEADER_BYTES + stride(maxQueueSize) * queues;
    }

    /** The default place: {@code RUN_ROOT/NAME/inflight}. */
    public static Path defaultPath(Path runRoot, String name) {
        return runRoot.resolve(name).resolve("inflight");
    }

    /** Creates (or overwrites) the log at {@code path} for a fresh device. */
    public static ReconnectLog create(Path path, Identity id) {
        try {
            Files.createDirectories(path.toAbsolutePath().getParent());
        } catch (IOException e) {
            throw new TransportException("cannot create the directory of the reconnect log " + path + ": " + e.getMessage(), e);
        }
        int fd;
        try {
            fd = FileIo.open(path.toString(), FileIo.O_RDWR | FileIo.O_CREAT | FileIo.O_TRUNC | FileIo.O_CLOEXEC, 0600);
        } catch (ErrnoException e) {
            throw new TransportException("cannot create the reconnect log " + path + ": " + e.getMessage()
                    + " (choose another place with --reconnect-log PATH)", e);
        }
        return create(path, fd, id);
    }

    /** Formats a log in {@code fd} (a file or a memfd; the log owns it from here on). */
    public static ReconnectLog create(Path path, int fd, Identity id) {
        try {
            long size = fileSize(id.queues(), id.maxQueueSize());
            FileIo.ftruncate(fd, size);
            MemorySegment m = MemoryMap.map(size, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE, MemoryMap.MAP_SHARED, fd, 0);
            m.fill((byte) 0);
            ReconnectLog log = new ReconnectLog(path, fd, m, id.queues(), id.maxQueueSize());
            byte[] b = id.backend().getBytes(StandardCharsets.UTF_8);
            m.set(U32, OFF_VERSION, VERSION);
            m.set(U32, OFF_STATE, STATE_CREATED);
            m.set(U64, OFF_OFFERED, id.offeredFeatures());
            m.set(U32, OFF_QUEUES, id.queues());
            m.set(U32, OFF_QUEUE_SIZE, id.maxQueueSize());
            m.set(U32, OFF_BLOCK_SIZE, id.blockSize());
            m.set(U64, OFF_CAPACITY, id.capacity());
            m.set(U32, OFF_IDENTITY_LEN, b.length);
            MemorySegment.copy(b, 0, m, ValueLayout.JAVA_BYTE, OFF_IDENTITY, b.length);
            VarHandle.releaseFence();
            m.set(U64, OFF_MAGIC, MAGIC); // last: a log without its magic was never complete
            return log;
        } catch (RuntimeException e) {
            FileIo.close(fd);
            throw e;
        }
    }

    /**
     * Opens an existing log and checks it against {@code expected}.
     *
     * @throws TransportException with one line saying what differs (or that there is no log)
     */
    public static ReconnectLog open(Path path, Identity expected) {
        int fd;
        try {
            fd = FileIo.open(path.toString(), FileIo.O_RDWR | FileIo.O_CLOEXEC);
        } catch (ErrnoException e) {
            throw new TransportException("no reconnect log at " + path + " (" + e.errnoName() + ")");
        }
        return open(path, fd, expected);
    }

    /** As {@link #open(Path, Identity)} over {@code fd} (owned by the log on success, closed on failure). */
    public static ReconnectLog open(Path path, int fd, Identity expected) {
        MemorySegment m = null;
        try {
            long size;
            try {
                size = Files.size(Path.of("/proc/self/fd/" + fd));
            } catch (IOException e) {
                throw new TransportException("cannot read the reconnect log " + path + ": " + e.getMessage(), e);
            }
            if (size < HEADER_BYTES) {
                throw new TransportException("the reconnect log " + path + " is too short (" + size + " bytes)");
            }
            m = MemoryMap.map(size, MemoryMap.PROT_READ | MemoryMap.PROT_WRITE, MemoryMap.MAP_SHARED, fd, 0);
            String problem = mismatch(m, size, expected);
            if (problem != null) {
                throw new TransportException("the reconnect log " + path + " does not match this export: " + problem);
            }
            return new ReconnectLog(path, fd, m, expected.queues(), expected.maxQueueSize());
        } catch (RuntimeException e) {
            if (m != null) {
                MemoryMap.unmap(m);
            }
            FileIo.close(fd);
            throw e;
        }
    }

    /** What differs between the header in {@code m} and {@code id}, or null. */
    static String mismatch(MemorySegment m, long size, Identity id) {
        if (m.get(U64, OFF_MAGIC) != MAGIC) {
            return "not a vduse4j reconnect log (bad magic)";
        }
        if (m.get(U32, OFF_VERSION) != VERSION) {
            return "log version " + m.get(U32, OFF_VERSION) + ", this vduse4j writes " + VERSION;
        }
        if (m.get(U32, OFF_QUEUES) != id.queues()) {
            return m.get(U32, OFF_QUEUES) + " queues logged, " + id.queues() + " now";
        }
        if (m.get(U32, OFF_QUEUE_SIZE) != id.maxQueueSize()) {
            return "queue size " + m.get(U32, OFF_QUEUE_SIZE) + " logged, " + id.maxQueueSize() + " now";
        }
        if (m.get(U32, OFF_BLOCK_SIZE) != id.blockSize()) {
            return "block size " + m.get(U32, OFF_BLOCK_SIZE) + " logged, " + id.blockSize() + " now";
        }
        if (m.get(U64, OFF_CAPACITY) != id.capacity()) {
            return "capacity " + m.get(U64, OFF_CAPACITY) + " bytes logged, " + id.capacity() + " now";
        }
        // after the plain fields: a queue count or size change also changes the features (MQ, ...), and the
        // count says what changed where the feature bits would not
        long offered = m.get(U64, OFF_OFFERED);
        if (offered != id.offeredFeatures()) {
            return "features 0x" + Long.toHexString(offered) + " logged, 0x" + Long.toHexString(id.offeredFeatures())
                    + " now (ring layout or options changed)";
        }
        int len = m.get(U32, OFF_IDENTITY_LEN);
        if (len < 0 || len > MAX_IDENTITY) {
            return "backend identity of " + len + " bytes";
        }
        byte[] b = new byte[len];
        MemorySegment.copy(m, ValueLayout.JAVA_BYTE, OFF_IDENTITY, b, 0, len);
        String backend = new String(b, StandardCharsets.UTF_8);
        if (!backend.equals(id.backend())) {
            return "backend '" + printable(backend) + "' logged, '" + id.backend() + "' now";
        }
        if (size < fileSize(id.queues(), id.maxQueueSize())) {
            return "the log is " + size + " bytes, needs " + fileSize(id.queues(), id.maxQueueSize());
        }
        return null;
    }

    /**
     * The logged identity as it may go into a one-line error: whoever can write the log file chooses these bytes,
     * so control characters (a newline, terminal escapes) are shown as {@code \\uXXXX} instead of printed.
     */
    static String printable(String logged) {
        StringBuilder b = new StringBuilder(logged.length());
        for (int i = 0; i < logged.length(); i++) {
            char c = logged.charAt(i);
            if (Character.isISOControl(c) || Character.getType(c) == Character.FORMAT
                    || Character.getType(c) == Character.LINE_SEPARATOR
                    || Character.getType(c) == Character.PARAGRAPH_SEPARATOR) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    public Path path() {
        return path;
    }

    public int queues() {
        return queues;
    }

    public int state() {
        return map.get(U32, OFF_STATE);
    }

    public long negotiatedFeatures() {
        return map.get(U64, OFF_NEGOTIATED);
    }

    public int deviceStatus() {
        return map.get(U32, OFF_STATUS);
    }

    /** Control thread: the driver started the device with {@code features}; every queue region was formatted. */
    public void running(long features, int status) {
        map.set(U64, OFF_NEGOTIATED, features);
        map.set(U32, OFF_STATUS, status);
        VarHandle.releaseFence();
        map.set(U32, OFF_STATE, STATE_RUNNING);
    }

    /** Control thread: the device was reset (or never started): nothing to recover in the queues. */
    public void reset() {
        map.set(U32, OFF_STATE, STATE_CREATED);
        VarHandle.releaseFence();
        map.set(U64, OFF_NEGOTIATED, 0);
        map.set(U32, OFF_STATUS, 0);
    }

    /**
     * The export was resized (`vduse4j resize`, a grown file, an RBD image grown by another client): the next process
     * is checked against the new capacity ({@link #open}), so a takeover after a resize is not refused.
     */
    public void capacity(long bytes) {
        map.set(U64, OFF_CAPACITY, bytes);
    }

    /** After every queue drained for an upgrade stop. */
    public void upgradeStop() {
        VarHandle.fullFence();
        map.set(U32, OFF_STATE, STATE_UPGRADE_STOP);
    }

    /** Queue {@code q}'s region. */
    public MemorySegment region(int q) {
        return map.asSlice(HEADER_BYTES + stride * q, stride);
    }

    /** The ring size the region of queue {@code q} was formatted for (0: never). */
    public int ringSize(int q) {
        return region(q).get(U16, REGION_DESC_NUM) & 0xffff;
    }

    /**
     * Formats queue {@code q}'s region for a ring of {@code num} entries with nothing in flight, whose used position
     * is {@code usedIdx} (split: the ring's {@code used->idx}, which the split layout's {@code used_idx} must equal or
     * recovery would take the last batch for unpublished; packed: the descriptor index and wrap counter).
     */
    public MemorySegment formatQueue(int q, int num, boolean packed, int usedIdx, boolean usedWrap) {
        if (num <= 0 || num > maxQueueSize) {
            throw new IllegalArgumentException("queue " + q + ": ring size " + num + " beyond " + maxQueueSize);
        }
        MemorySegment s = region(q);
        s.fill((byte) 0);
        if (packed) {
            PackedInflightTracker.format(s, num);
            s.set(U16, PackedInflightTracker.USED_IDX, (short) usedIdx);
            s.set(U16, PackedInflightTracker.OLD_USED_IDX, (short) usedIdx);
            s.set(ValueLayout.JAVA_BYTE, PackedInflightTracker.USED_WRAP, (byte) (usedWrap ? 1 : 0));
            s.set(ValueLayout.JAVA_BYTE, PackedInflightTracker.OLD_USED_WRAP, (byte) (usedWrap ? 1 : 0));
        } else {
            s.set(U16, SplitInflightTracker.USED_IDX, (short) usedIdx);
        }
        s.set(U16, REGION_DESC_NUM, (short) num);
        VarHandle.releaseFence();
        s.set(U16, REGION_VERSION, (short) 1);
        return s;
    }

    /** Unmaps and closes the log; the file stays. */
    @Override
    public void close() {
        MemoryMap.unmap(map);
        FileIo.close(fd);
    }

    /** Closes the log and deletes its file (clean stop: the device is gone). */
    public void delete() {
        close();
        try {
            if (path != null) {
                Files.deleteIfExists(path);
            }
        } catch (IOException e) {
            System.err.println("vduse4j: cannot remove the reconnect log " + path + ": " + e.getMessage());
        }
    }
}
