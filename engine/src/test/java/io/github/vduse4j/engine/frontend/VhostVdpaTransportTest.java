package io.github.vduse4j.engine.frontend;

import static io.github.vduse4j.bindings.VhostIoctl.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.VhostIoctl;
import io.github.vduse4j.ring.driver.DriverRing;
import io.github.vduse4j.ring.driver.PackedDriverRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link VhostVdpaTransport} against a fake {@code /dev/vhost-vdpa-N} that records every ioctl and IOTLB message
 * and keeps a status byte as the kernel does ({@code vhost_vdpa_set_status}: no bit may be cleared except by 0;
 * SET_FEATURES is EBUSY once FEATURES_OK is set).
 */
class VhostVdpaTransportTest {
    static final long VERSION_1 = 1L << 32, PACKED = 1L << 34, ACCESS_PLATFORM = 1L << 33;
    static final Map<Long, String> NAMES = new HashMap<>();

    static {
        for (Field f : VhostIoctl.class.getFields()) {
            if (f.getName().startsWith("VHOST_") && f.getType() == long.class) {
                try {
                    NAMES.put(f.getLong(null), f.getName());
                } catch (IllegalAccessException e) {
                    throw new AssertionError(e);
                }
            }
        }
    }

    /** A fake vhost-vdpa device: log lines "NAME arg" for ioctls, "IOTLB type iova size uaddr perm" for writes. */
    static final class FakeDevice implements VhostVdpaFile {
        final List<String> log = new ArrayList<>();
        long backendFeatures = 0b1110;   // bits 1-3: MSG_V2, BATCH, ASID, as 6.1 offers
        long features = VERSION_1 | PACKED | ACCESS_PLATFORM | 1;
        int status;
        boolean refuseFeaturesOk;
        int writeErrno;
        int vringBase = 0x8005_8003;
        byte[] config = new byte[60];
        boolean closed;

        @Override
        public int ioctl(long request, MemorySegment arg) {
            String name = NAMES.getOrDefault(request, "0x" + Long.toHexString(request));
            MemorySegment a = arg.equals(MemorySegment.NULL) ? arg : arg.reinterpret(64);
            switch (name) {
                case "VHOST_GET_BACKEND_FEATURES" -> a.set(ValueLayout.JAVA_LONG, 0, backendFeatures);
                case "VHOST_GET_FEATURES" -> a.set(ValueLayout.JAVA_LONG, 0, features);
                case "VHOST_VDPA_GET_DEVICE_ID" -> a.set(ValueLayout.JAVA_INT, 0, 2);
                case "VHOST_VDPA_GET_VRING_NUM" -> a.set(ValueLayout.JAVA_SHORT, 0, (short) 256);
                case "VHOST_VDPA_GET_VQS_COUNT" -> a.set(ValueLayout.JAVA_INT, 0, 2);
                case "VHOST_VDPA_GET_CONFIG_SIZE" -> a.set(ValueLayout.JAVA_INT, 0, config.length);
                case "VHOST_VDPA_GET_IOVA_RANGE" -> {
                    a.set(ValueLayout.JAVA_LONG, 0, 0);
                    a.set(ValueLayout.JAVA_LONG, 8, 0xffff_ffffL);
                }
                case "VHOST_VDPA_GET_STATUS" -> a.set(ValueLayout.JAVA_BYTE, 0, (byte) status);
                case "VHOST_VDPA_SET_STATUS" -> {
                    int s = Byte.toUnsignedInt(a.get(ValueLayout.JAVA_BYTE, 0));
                    log.add(name + " " + s);
                    if (s != 0 && (status & ~s) != 0) {
                        return -Errno.EINVAL;
                    }
                    status = refuseFeaturesOk ? s & ~VhostVdpaTransport.FEATURES_OK : s;
                    return 0;
                }
                case "VHOST_SET_FEATURES" -> {
                    log.add(name + " 0x" + Long.toHexString(a.get(ValueLayout.JAVA_LONG, 0)));
                    return (status & VhostVdpaTransport.FEATURES_OK) != 0 ? -Errno.EBUSY : 0;
                }
                case "VHOST_SET_BACKEND_FEATURES" -> {
                    log.add(name + " " + a.get(ValueLayout.JAVA_LONG, 0));
                    return 0;
                }
                case "VHOST_VDPA_GET_CONFIG" -> {
                    int off = a.get(ValueLayout.JAVA_INT, 0), len = a.get(ValueLayout.JAVA_INT, 4);
                    MemorySegment.copy(config, off, arg.reinterpret(8 + len), ValueLayout.JAVA_BYTE, 8, len);
                    log.add(name + " " + off + " " + len);
                    return 0;
                }
                case "VHOST_GET_VRING_BASE" -> {
                    log.add(name + " " + a.get(ValueLayout.JAVA_INT, 0));
                    a.set(ValueLayout.JAVA_INT, 4, vringBase);
                    return 0;
                }
                case "VHOST_SET_VRING_ADDR" -> {
                    log.add(String.format("%s %d desc 0x%x used 0x%x avail 0x%x", name, a.get(ValueLayout.JAVA_INT, 0),
                            a.get(ValueLayout.JAVA_LONG, 8), a.get(ValueLayout.JAVA_LONG, 16),
                            a.get(ValueLayout.JAVA_LONG, 24)));
                    return 0;
                }
                case "VHOST_SET_VRING_NUM", "VHOST_SET_VRING_BASE", "VHOST_SET_VRING_KICK", "VHOST_SET_VRING_CALL",
                        "VHOST_VDPA_SET_VRING_ENABLE" -> {
                    log.add(name + " " + a.get(ValueLayout.JAVA_INT, 0) + " " + a.get(ValueLayout.JAVA_INT, 4));
                    return 0;
                }
                default -> {
                    log.add(name);
                    return 0;
                }
            }
            log.add(name);
            return 0;
        }

        @Override
        public long write(MemorySegment msg) {
            assertEquals(72, msg.byteSize(), "sizeof(struct vhost_msg_v2)");
            assertEquals(2, msg.get(ValueLayout.JAVA_INT, 0), "VHOST_IOTLB_MSG_V2");
            assertEquals(0, msg.get(ValueLayout.JAVA_INT, 4), "asid (ASID not negotiated)");
            int type = msg.get(ValueLayout.JAVA_BYTE, 33);
            log.add(String.format("IOTLB %s 0x%x 0x%x 0x%x %d", VhostVdpaTransport.iotlbName(type),
                    msg.get(ValueLayout.JAVA_LONG, 8), msg.get(ValueLayout.JAVA_LONG, 16),
                    msg.get(ValueLayout.JAVA_LONG, 24), msg.get(ValueLayout.JAVA_BYTE, 32)));
            return writeErrno != 0 ? -writeErrno : msg.byteSize();
        }

        @Override
        public void close() {
            closed = true;
        }

        List<String> take() {
            List<String> l = List.copyOf(log);
            log.clear();
            return l;
        }
    }

    @Test
    void openRunsTheHandshakeUpToTheDeviceFeatures() {
        FakeDevice dev = new FakeDevice();
        try (VhostVdpaTransport t = VhostVdpaTransport.open(dev, "fake")) {
            assertEquals(List.of("VHOST_SET_OWNER", "VHOST_GET_BACKEND_FEATURES", "VHOST_SET_BACKEND_FEATURES 6",
                    "VHOST_VDPA_GET_DEVICE_ID", "VHOST_VDPA_SET_STATUS 0", "VHOST_VDPA_SET_STATUS 3", "VHOST_GET_FEATURES",
                    "VHOST_VDPA_GET_VRING_NUM", "VHOST_VDPA_GET_VQS_COUNT", "VHOST_VDPA_GET_CONFIG_SIZE",
                    "VHOST_VDPA_GET_IOVA_RANGE"), dev.take());
            assertEquals(2, t.deviceId());
            assertEquals(256, t.maxVringSize());
            assertEquals(2, t.maxQueues());
            assertEquals(0xffff_ffffL, t.iovaLast());
            assertTrue(t.batching());
            dev.config[8] = 42;
            assertArrayEquals(new byte[] {42, 0}, t.config(8, 2));
            assertThrows(IllegalArgumentException.class, () -> t.config(59, 2));
        }
        assertTrue(dev.closed);
    }

    @Test
    void startAnnouncesMemoryBatchedThenRingsThenDriverOkAndStopReadsBasesThenResets() {
        FakeDevice dev = new FakeDevice();
        try (MemoryRegion mem = MemoryRegion.memfd(1 << 20, 0x10_0000);
                VhostFrontend fe = VhostFrontend.open(() -> VhostVdpaTransport.open(dev, "fake"), VERSION_1, VERSION_1);
                FrontendQueue q = new FrontendQueue(DriverRing.create(mem, 64, false, false, false, 0))) {
            dev.take();
            DriverRing r = q.ring();
            fe.start(MemoryTable.of(mem), q);
            assertEquals(List.of("VHOST_SET_FEATURES 0x100000000", "VHOST_VDPA_SET_STATUS 11",
                    "VHOST_VDPA_GET_STATUS", "IOTLB BATCH_BEGIN 0x0 0x0 0x0 0",
                    String.format("IOTLB UPDATE 0x100000 0x100000 0x%x 3", mem.uaddr()),
                    "IOTLB BATCH_END 0x0 0x0 0x0 0",
                    "VHOST_SET_VRING_NUM 0 64", "VHOST_SET_VRING_BASE 0 0",
                    String.format("VHOST_SET_VRING_ADDR 0 desc 0x%x used 0x%x avail 0x%x", r.descAddress(),
                            r.deviceAreaAddress(), r.driverAreaAddress()),
                    "VHOST_SET_VRING_KICK 0 " + q.kickFd(), "VHOST_SET_VRING_CALL 0 " + q.callFd(),
                    "VHOST_VDPA_SET_VRING_ENABLE 0 1", "VHOST_VDPA_SET_STATUS 15",
                    "VHOST_VDPA_GET_STATUS"), dev.take());
            assertTrue(r.descAddress() >= 0x10_0000 && r.descAddress() < 0x20_0000, "rings at device addresses");
            dev.vringBase = 7;
            assertArrayEquals(new int[] {7}, fe.stop());
            assertEquals(List.of("VHOST_GET_VRING_BASE 0", "VHOST_VDPA_SET_STATUS 0"), dev.take());
            // a restart acknowledges again (SET_FEATURES is EBUSY after FEATURES_OK) and re-announces the table
            fe.start(MemoryTable.of(mem), q);
            List<String> again = dev.take();
            assertEquals(List.of("VHOST_VDPA_SET_STATUS 0", "VHOST_VDPA_SET_STATUS 3", "VHOST_SET_FEATURES 0x100000000",
                    "VHOST_VDPA_SET_STATUS 11", "VHOST_VDPA_GET_STATUS", "IOTLB BATCH_BEGIN 0x0 0x0 0x0 0", "IOTLB INVALIDATE 0x100000 0x100000 0x0 0",
                    String.format("IOTLB UPDATE 0x100000 0x100000 0x%x 3", mem.uaddr()), "IOTLB BATCH_END 0x0 0x0 0x0 0"),
                    again.subList(0, 9));
        }
    }

    @Test
    void packedRingsNeedThePackedFeatureAndPassTheirBaseThrough() {
        FakeDevice dev = new FakeDevice();
        try (MemoryRegion mem = MemoryRegion.memfd(1 << 20, 0);
                VhostFrontend fe = VhostFrontend.open(() -> VhostVdpaTransport.open(dev, "fake"), VERSION_1 | PACKED,
                        VERSION_1);
                FrontendQueue q = new FrontendQueue(DriverRing.create(mem, 64, true, false, false, 0))) {
            fe.start(MemoryTable.of(mem), q);
            assertTrue(dev.log.contains("VHOST_SET_VRING_BASE 0 " + PackedDriverRing.base(0, true, 0, true)),
                    dev.log.toString());
            assertArrayEquals(new int[] {0x8005_8003}, fe.stop());
        }
        FakeDevice split = new FakeDevice();
        try (MemoryRegion mem = MemoryRegion.memfd(1 << 20, 0);
                VhostFrontend fe = VhostFrontend.open(() -> VhostVdpaTransport.open(split, "fake"), VERSION_1, VERSION_1);
                FrontendQueue q = new FrontendQueue(DriverRing.create(mem, 64, true, false, false, 0))) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> fe.start(MemoryTable.of(mem), q));
            assertTrue(e.getMessage().contains("VIRTIO_F_RING_PACKED was not negotiated"), e.getMessage());
        }
    }

    @Test
    void withoutBatchingUpdatesGoOneByOne() {
        FakeDevice dev = new FakeDevice();
        dev.backendFeatures = 2;   // MSG_V2 only
        try (VhostVdpaTransport t = VhostVdpaTransport.open(dev, "fake")) {
            assertTrue(dev.log.contains("VHOST_SET_BACKEND_FEATURES 2"));
            dev.take();
            t.beginBatch();
            t.map(0x1000, 0x2000, 0x7000_0000L, VhostVdpaTransport.ACCESS_RW);
            t.unmap(0x1000, 0x1000);
            t.endBatch();
            assertEquals(List.of("IOTLB UPDATE 0x1000 0x2000 0x70000000 3", "IOTLB INVALIDATE 0x1000 0x1000 0x0 0"),
                    dev.take());
        }
    }

    @Test
    void refusalsSurfaceAsOneClearError() {
        FakeDevice noV2 = new FakeDevice();
        noV2.backendFeatures = 0;
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> VhostVdpaTransport.open(noV2, "fake"));
        assertTrue(e.getMessage().contains("IOTLB_MSG_V2"), e.getMessage());
        assertTrue(noV2.closed, "a failed open closes the device file");

        FakeDevice refuses = new FakeDevice();
        refuses.refuseFeaturesOk = true;
        try (VhostVdpaTransport t = VhostVdpaTransport.open(refuses, "fake")) {
            e = assertThrows(IllegalStateException.class, () -> t.setFeatures(VERSION_1));
            assertTrue(e.getMessage().contains("did not accept features"), e.getMessage());
        }

        FakeDevice failsMap = new FakeDevice();
        failsMap.writeErrno = Errno.EFAULT;
        try (VhostVdpaTransport t = VhostVdpaTransport.open(failsMap, "fake")) {
            e = assertThrows(IllegalStateException.class, () -> t.map(0, 4096, 0x1000, 3));
            assertTrue(e.getMessage().contains("IOTLB UPDATE of iova 0x0+0x1000") && e.getMessage().contains("EFAULT"),
                    e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> t.map(0xffff_f000L, 0x2000, 0x1000, 3),
                    "beyond GET_IOVA_RANGE");
        }
    }

    @Test
    void ioctlNumbersAreTheHeaderOnes() {
        // spot checks; LibcConstantsTest compares every one with linux/vhost.h through gcc
        assertEquals(0xAF01L, VHOST_SET_OWNER);
        assertEquals(0xC008AF12L, VHOST_GET_VRING_BASE);
        assertEquals(0x8008AF73L, VHOST_VDPA_GET_CONFIG);
        assertEquals(0x4001AF72L, VHOST_VDPA_SET_STATUS);
    }
}
