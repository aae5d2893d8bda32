package io.github.vduse4j.engine.frontend;

import static io.github.vduse4j.bindings.VhostIoctl.*;

import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.uapi.Uapi;
import io.github.vduse4j.bindings.uapi.vhost_iotlb_msg;
import io.github.vduse4j.bindings.uapi.vhost_msg_v2;
import io.github.vduse4j.bindings.uapi.vhost_vring_addr;
import io.github.vduse4j.bindings.uapi.vhost_vring_file;
import io.github.vduse4j.bindings.uapi.vhost_vring_state;
import io.github.vduse4j.ring.driver.DriverRing;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The vhost-vdpa {@link VhostTransport}: drives {@code /dev/vhost-vdpa-N} the way a VMM does (QEMU
 * {@code hw/virtio/vhost-vdpa.c}), verified against Linux 6.1 {@code drivers/vhost/vdpa.c} and {@code vhost.c}:
 * <ol>
 * <li>{@link #open}: VHOST_SET_OWNER (IOTLB messages need an owner: {@code vhost_dev_check_owner}), backend features
 *     (IOTLB_MSG_V2 required, IOTLB_BATCH when offered; ASID is not asked for, so a message's asid must be 0), device
 *     id, reset (SET_STATUS 0) then ACKNOWLEDGE | DRIVER (virtio 1.2 §3.1.1 steps 1-2), device features, max vring
 *     size, queue count (GET_VQS_COUNT), config size and the usable IOVA range.</li>
 * <li>{@link #setFeatures}: SET_FEATURES (refused with EBUSY once FEATURES_OK is set, so a restart resets first),
 *     FEATURES_OK, and GET_STATUS to check the device kept it (§3.1.1 step 5-6).</li>
 * <li>{@link #setMemoryTable}: each region as one {@code VHOST_IOTLB_UPDATE} (iova = its guest physical address,
 *     uaddr = this process's mapping), between BATCH_BEGIN/END so the device sees one map change. VDUSE devices use
 *     the VA mode ({@code use_va}): the kernel passes the file and offset of the mapping behind uaddr to the device,
 *     skipping silently any part that is not a shared file mapping ({@code vhost_vdpa_va_map}), hence memfds.</li>
 * <li>{@link #startVring}: SET_VRING_NUM, SET_VRING_BASE (after the features: for packed rings {@code vhost.c} reads
 *     avail | used &lt;&lt; 16 only when VIRTIO_F_RING_PACKED is acked), SET_VRING_ADDR with device addresses
 *     (IOVAs), SET_VRING_KICK, SET_VRING_CALL, VHOST_VDPA_SET_VRING_ENABLE; {@link #started}: DRIVER_OK, checked.</li>
 * <li>{@link #stopVring}: VHOST_GET_VRING_BASE (the device is asked for its position: VDUSE sends GET_VQ_STATE to
 *     its daemon); {@link #stopped}: SET_STATUS 0 resets the device, which is what stops its queues (6.1 VDUSE has
 *     no suspend).</li>
 * </ol>
 * Unmapping is per IOTLB entry: an INVALIDATE of any part of an entry removes all of it
 * ({@code vhost_vdpa_va_unmap}), so memory that will be moved piecewise must be announced piecewise
 * ({@link #map}). Control path only: one thread at a time.
 */
public final class VhostVdpaTransport implements VhostTransport {
    /** virtio 1.2 §2.1 device status bits. */
    static final int ACKNOWLEDGE = 1, DRIVER = 2, DRIVER_OK = 4, FEATURES_OK = 8, NEEDS_RESET = 64, FAILED = 128;
    /** VHOST_ACCESS_RW. */
    public static final int ACCESS_RW = 3;

    private final VhostVdpaFile file;
    private final String name;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment u64 = arena.allocate(8, 8);
    private final MemorySegment state = arena.allocate(vhost_vring_state.layout());
    private final MemorySegment vfile = arena.allocate(vhost_vring_file.layout());
    private final MemorySegment addr = arena.allocate(vhost_vring_addr.layout());
    private final MemorySegment msg = arena.allocate(vhost_msg_v2.layout());
    private final long backendFeatures;
    private final boolean batch;
    private final int deviceId;
    private final long deviceFeatures;
    private final int maxVringSize;
    private final int queues;
    private final int configSize;
    private final long iovaFirst;
    private final long iovaLast;
    private final List<long[]> announced = new ArrayList<>();   // {iova, size} of the table's entries
    private long features;
    private int status;
    private long iotlbMessages;
    private boolean closed;

    private VhostVdpaTransport(VhostVdpaFile file, String name) {
        this.file = file;
        this.name = name;
        ioctl("VHOST_SET_OWNER", VHOST_SET_OWNER, MemorySegment.NULL);
        long offered = getU64("VHOST_GET_BACKEND_FEATURES", VHOST_GET_BACKEND_FEATURES);
        if ((offered & (1L << Uapi.VHOST_BACKEND_F_IOTLB_MSG_V2())) == 0) {
            throw new IllegalStateException(name + ": the kernel does not offer VHOST_BACKEND_F_IOTLB_MSG_V2");
        }
        backendFeatures = offered & ((1L << Uapi.VHOST_BACKEND_F_IOTLB_MSG_V2())
                | (1L << Uapi.VHOST_BACKEND_F_IOTLB_BATCH()));
        setU64("VHOST_SET_BACKEND_FEATURES", VHOST_SET_BACKEND_FEATURES, backendFeatures);
        batch = (backendFeatures & (1L << Uapi.VHOST_BACKEND_F_IOTLB_BATCH())) != 0;
        deviceId = getU32("VHOST_VDPA_GET_DEVICE_ID", VHOST_VDPA_GET_DEVICE_ID);
        setStatus(0);
        setStatus(ACKNOWLEDGE | DRIVER);
        deviceFeatures = getU64("VHOST_GET_FEATURES", VHOST_GET_FEATURES);
        ioctl("VHOST_VDPA_GET_VRING_NUM", VHOST_VDPA_GET_VRING_NUM, u64);
        maxVringSize = Short.toUnsignedInt(u64.get(ValueLayout.JAVA_SHORT, 0));
        queues = getU32("VHOST_VDPA_GET_VQS_COUNT", VHOST_VDPA_GET_VQS_COUNT);
        configSize = getU32("VHOST_VDPA_GET_CONFIG_SIZE", VHOST_VDPA_GET_CONFIG_SIZE);
        MemorySegment range = arena.allocate(VDPA_IOVA_RANGE_SIZE, 8);
        ioctl("VHOST_VDPA_GET_IOVA_RANGE", VHOST_VDPA_GET_IOVA_RANGE, range);
        iovaFirst = range.get(ValueLayout.JAVA_LONG, VDPA_IOVA_RANGE_FIRST);
        iovaLast = range.get(ValueLayout.JAVA_LONG, VDPA_IOVA_RANGE_LAST);
    }

    /** Opens {@code /dev/vhost-vdpa-N} and runs the handshake up to the device features (see the class comment). */
    public static VhostVdpaTransport open(Path device) {
        return open(VhostVdpaFile.open(device), device.toString());
    }

    /** {@link #open(Path)} over {@code file} (tests pass a fake); closes it on failure. */
    public static VhostVdpaTransport open(VhostVdpaFile file, String name) {
        try {
            return new VhostVdpaTransport(file, name);
        } catch (RuntimeException e) {
            file.close();
            throw e;
        }
    }

    /** The virtio device id (2: block). */
    public int deviceId() { return deviceId; }
    /** Backend features in use (VHOST_BACKEND_F_*). */
    public long backendFeatures() { return backendFeatures; }
    /** True if map changes are batched (VHOST_BACKEND_F_IOTLB_BATCH). */
    public boolean batching() { return batch; }
    /** The largest vring the device takes (VHOST_VDPA_GET_VRING_NUM). */
    public int maxVringSize() { return maxVringSize; }
    /** First and last usable IOVA (VHOST_VDPA_GET_IOVA_RANGE). */
    public long iovaFirst() { return iovaFirst; }
    public long iovaLast() { return iovaLast; }
    /** IOTLB messages written so far (updates, invalidations, batch markers). */
    public long iotlbMessages() { return iotlbMessages; }
    /** The last status written (virtio 1.2 §2.1). */
    public int status() { return status; }

    @Override
    public long deviceFeatures() { return deviceFeatures; }

    @Override
    public int maxQueues() { return queues; }

    @Override
    public boolean hasConfig() { return true; }

    /** VHOST_VDPA_GET_CONFIG of {@code size} bytes from {@code offset} (the kernel checks the range). */
    @Override
    public byte[] config(int offset, int size) {
        if (size <= 0 || offset < 0 || offset + size > configSize) {
            throw new IllegalArgumentException(name + ": config bytes " + offset + "+" + size + " beyond its "
                    + configSize + " bytes");
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment c = a.allocate(VDPA_CONFIG_HEADER + size, 8);
            c.set(ValueLayout.JAVA_INT, VDPA_CONFIG_OFF, offset);
            c.set(ValueLayout.JAVA_INT, VDPA_CONFIG_LEN, size);
            ioctl("VHOST_VDPA_GET_CONFIG", VHOST_VDPA_GET_CONFIG, c);
            return c.asSlice(VDPA_CONFIG_HEADER, size).toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** VHOST_VDPA_SET_CONFIG (VDUSE ignores it: 6.1's {@code vduse_vdpa_set_config} is empty). */
    @Override
    public void setConfig(int offset, byte[] data) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment c = a.allocate(VDPA_CONFIG_HEADER + data.length, 8);
            c.set(ValueLayout.JAVA_INT, VDPA_CONFIG_OFF, offset);
            c.set(ValueLayout.JAVA_INT, VDPA_CONFIG_LEN, data.length);
            MemorySegment.copy(data, 0, c, ValueLayout.JAVA_BYTE, VDPA_CONFIG_HEADER, data.length);
            ioctl("VHOST_VDPA_SET_CONFIG", VHOST_VDPA_SET_CONFIG, c);
        }
    }

    /**
     * SET_FEATURES, FEATURES_OK, and a GET_STATUS that must still show FEATURES_OK (the device may refuse the subset,
     * virtio 1.2 §3.1.1). After a {@link #stopped()} (or any earlier FEATURES_OK) the device is reset and
     * acknowledged again first: vhost-vdpa refuses new features once FEATURES_OK is set.
     */
    @Override
    public void setFeatures(long features) {
        if (status != (ACKNOWLEDGE | DRIVER)) {
            setStatus(0);
            setStatus(ACKNOWLEDGE | DRIVER);
        }
        setU64("VHOST_SET_FEATURES", VHOST_SET_FEATURES, features);
        this.features = features;
        setStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
        int s = getStatus();
        if ((s & FEATURES_OK) == 0) {
            throw new IllegalStateException(name + ": the device did not accept features 0x" + Long.toHexString(features)
                    + " (status 0x" + Integer.toHexString(s) + " after FEATURES_OK)");
        }
    }

    /** What the last {@link #setFeatures} sent. */
    public long features() { return features; }

    /**
     * Announces {@code table}: in one batch, invalidates what the previous table announced and maps each region
     * whole at its guest physical address (VHOST_IOTLB_UPDATE, read-write).
     */
    @Override
    public void setMemoryTable(MemoryTable table) {
        for (MemoryRegion r : table.regions()) {
            checkIova(r.gpa(), r.size());
        }
        beginBatch();
        for (long[] e : announced) {
            iotlb(Uapi.VHOST_IOTLB_INVALIDATE(), e[0], e[1], 0, 0);
        }
        announced.clear();
        for (MemoryRegion r : table.regions()) {
            iotlb(Uapi.VHOST_IOTLB_UPDATE(), r.gpa(), r.size(), r.uaddr(), ACCESS_RW);
            announced.add(new long[] {r.gpa(), r.size()});
        }
        endBatch();
    }

    /**
     * VHOST_IOTLB_UPDATE: device addresses {@code [iova, iova + size)} now mean this process's {@code [uaddr, uaddr +
     * size)}, which must be a shared file mapping (memfd), with {@code perm} (VHOST_ACCESS_*). The range must not
     * overlap a mapped one (EEXIST). Outside a batch the device is told at once (VDUSE: UPDATE_IOTLB to its daemon,
     * answered before this returns).
     */
    public void map(long iova, long size, long uaddr, int perm) {
        checkIova(iova, size);
        iotlb(Uapi.VHOST_IOTLB_UPDATE(), iova, size, uaddr, perm);
    }

    /** VHOST_IOTLB_INVALIDATE of every IOTLB entry that overlaps {@code [iova, iova + size)}, each removed whole. */
    public void unmap(long iova, long size) {
        iotlb(Uapi.VHOST_IOTLB_INVALIDATE(), iova, size, 0, 0);
    }

    /** VHOST_IOTLB_BATCH_BEGIN (if batching): map changes up to {@link #endBatch()} reach the device as one. */
    public void beginBatch() {
        if (batch) {
            iotlb(Uapi.VHOST_IOTLB_BATCH_BEGIN(), 0, 0, 0, 0);
        }
    }

    /** VHOST_IOTLB_BATCH_END: the device gets the whole new map (VDUSE: one UPDATE_IOTLB), answered before return. */
    public void endBatch() {
        if (batch) {
            iotlb(Uapi.VHOST_IOTLB_BATCH_END(), 0, 0, 0, 0);
        }
    }

    private void checkIova(long iova, long size) {
        if (size <= 0 || Long.compareUnsigned(iova, iovaFirst) < 0
                || Long.compareUnsigned(iova + size - 1, iovaLast) > 0 || Long.compareUnsigned(iova + size - 1, iova) < 0) {
            throw new IllegalArgumentException(String.format("%s: iova range 0x%x+0x%x is outside the device's"
                    + " 0x%x-0x%x", name, iova, size, iovaFirst, iovaLast));
        }
    }

    /** Writes one {@code struct vhost_msg_v2} (type VHOST_IOTLB_MSG_V2, asid 0). */
    private void iotlb(int type, long iova, long size, long uaddr, int perm) {
        msg.fill((byte) 0);
        vhost_msg_v2.type(msg, Uapi.VHOST_IOTLB_MSG_V2());
        MemorySegment m = vhost_msg_v2.iotlb(msg);
        vhost_iotlb_msg.iova(m, iova);
        vhost_iotlb_msg.size(m, size);
        vhost_iotlb_msg.uaddr(m, uaddr);
        vhost_iotlb_msg.perm(m, (byte) perm);
        vhost_iotlb_msg.type(m, (byte) type);
        long w = file.write(msg);
        iotlbMessages++;
        if (w != msg.byteSize()) {
            // vhost_chr_write_iter answers EFAULT for any refusal (bad range, EEXIST, the device failing set_map)
            throw new IllegalStateException(String.format("%s: IOTLB %s of iova 0x%x+0x%x (uaddr 0x%x) refused: %s", name,
                    iotlbName(type), iova, size, uaddr, w < 0 ? Errno.name((int) -w) : "short write " + w));
        }
    }

    static String iotlbName(int type) {
        if (type == Uapi.VHOST_IOTLB_UPDATE()) return "UPDATE";
        if (type == Uapi.VHOST_IOTLB_INVALIDATE()) return "INVALIDATE";
        if (type == Uapi.VHOST_IOTLB_BATCH_BEGIN()) return "BATCH_BEGIN";
        if (type == Uapi.VHOST_IOTLB_BATCH_END()) return "BATCH_END";
        return "type " + type;
    }

    /**
     * Sets up vring {@code index} (order as QEMU's vhost_virtqueue_start): NUM, BASE, ADDR (device addresses: the
     * descriptor area, the driver area as avail, the device area as used, virtio 1.2 §2.6/§2.8), KICK, CALL, ENABLE.
     */
    @Override
    public void startVring(int index, DriverRing ring, int base, int kickFd, int callFd) {
        boolean packedNegotiated = (features & (1L << Uapi.VIRTIO_F_RING_PACKED())) != 0;
        if (ring.packed() != packedNegotiated) {
            throw new IllegalStateException("vring " + index + " is " + (ring.packed() ? "packed" : "split")
                    + " but VIRTIO_F_RING_PACKED was " + (ring.packed() ? "not " : "") + "negotiated");
        }
        if (index < 0 || index >= queues) {
            throw new IllegalArgumentException(name + ": vring " + index + " but the device has " + queues);
        }
        if (ring.size() > maxVringSize) {
            throw new IllegalArgumentException(name + ": vring of " + ring.size() + " but the device takes at most "
                    + maxVringSize);
        }
        vringState("VHOST_SET_VRING_NUM", VHOST_SET_VRING_NUM, index, ring.size());
        vringState("VHOST_SET_VRING_BASE", VHOST_SET_VRING_BASE, index, base);
        addr.fill((byte) 0);
        vhost_vring_addr.index(addr, index);
        vhost_vring_addr.desc_user_addr(addr, ring.descAddress());
        vhost_vring_addr.avail_user_addr(addr, ring.driverAreaAddress());
        vhost_vring_addr.used_user_addr(addr, ring.deviceAreaAddress());
        ioctl("VHOST_SET_VRING_ADDR", VHOST_SET_VRING_ADDR, addr);
        vringFile("VHOST_SET_VRING_KICK", VHOST_SET_VRING_KICK, index, kickFd);
        vringFile("VHOST_SET_VRING_CALL", VHOST_SET_VRING_CALL, index, callFd);
        vringState("VHOST_VDPA_SET_VRING_ENABLE", VHOST_VDPA_SET_VRING_ENABLE, index, 1);
    }

    /** DRIVER_OK (the device starts its queues), checked with GET_STATUS. */
    @Override
    public void started() {
        setStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        int s = getStatus();
        if ((s & DRIVER_OK) == 0 || (s & (NEEDS_RESET | FAILED)) != 0) {
            throw new IllegalStateException(name + ": the device did not start (status 0x" + Integer.toHexString(s)
                    + " after DRIVER_OK)");
        }
    }

    /**
     * VHOST_GET_VRING_BASE: where the device is (split: its last avail index; packed: last avail index | wrap
     * &lt;&lt; 15 in the low half, the used one likewise in the high half).
     */
    @Override
    public int stopVring(int index) {
        vhost_vring_state.index(state, index);
        vhost_vring_state.num(state, 0);
        ioctl("VHOST_GET_VRING_BASE", VHOST_GET_VRING_BASE, state);
        return vhost_vring_state.num(state);
    }

    /** Resets the device (SET_STATUS 0): what stops its queues. The IOTLB mappings stay. */
    @Override
    public void stopped() {
        setStatus(0);
    }

    private void setStatus(int s) {
        u64.set(ValueLayout.JAVA_BYTE, 0, (byte) s);
        ioctl("VHOST_VDPA_SET_STATUS", VHOST_VDPA_SET_STATUS, u64);
        status = s;
    }

    /** VHOST_VDPA_GET_STATUS. */
    public int getStatus() {
        u64.set(ValueLayout.JAVA_LONG, 0, 0);
        ioctl("VHOST_VDPA_GET_STATUS", VHOST_VDPA_GET_STATUS, u64);
        return Byte.toUnsignedInt(u64.get(ValueLayout.JAVA_BYTE, 0));
    }

    private void vringState(String what, long request, int index, int num) {
        vhost_vring_state.index(state, index);
        vhost_vring_state.num(state, num);
        ioctl(what, request, state);
    }

    private void vringFile(String what, long request, int index, int fd) {
        vhost_vring_file.index(vfile, index);
        vhost_vring_file.fd(vfile, fd);
        ioctl(what, request, vfile);
    }

    private long getU64(String what, long request) {
        u64.set(ValueLayout.JAVA_LONG, 0, 0);
        ioctl(what, request, u64);
        return u64.get(ValueLayout.JAVA_LONG, 0);
    }

    private int getU32(String what, long request) {
        u64.set(ValueLayout.JAVA_LONG, 0, 0);
        ioctl(what, request, u64);
        return u64.get(ValueLayout.JAVA_INT, 0);
    }

    private void setU64(String what, long request, long value) {
        u64.set(ValueLayout.JAVA_LONG, 0, value);
        ioctl(what, request, u64);
    }

    private void ioctl(String what, long request, MemorySegment arg) {
        int r = file.ioctl(request, arg);
        if (r < 0) {
            throw new IllegalStateException(name + ": " + what + " failed: " + Errno.name(-r) + " ("
                    + Errno.description(-r) + ")");
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        file.close();
        arena.close();
    }
}
