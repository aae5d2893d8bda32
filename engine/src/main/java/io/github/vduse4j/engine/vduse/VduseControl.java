package io.github.vduse4j.engine.vduse;

import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Ioctl;
import io.github.vduse4j.bindings.uapi.Uapi;
import io.github.vduse4j.bindings.uapi.vduse_dev_config;
import io.github.vduse4j.engine.TransportException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code /dev/vduse/control}: API version negotiation, {@code VDUSE_CREATE_DEV} and {@code VDUSE_DESTROY_DEV}
 * (Linux {@code include/uapi/linux/vduse.h}).
 */
public final class VduseControl implements AutoCloseable {
    public static final Path CONTROL = Path.of("/dev/vduse/control");
    public static final Path DEVICE_DIR = Path.of("/dev/vduse");
    /** The API version this code speaks: 0, the only one Linux 6.1 knows. */
    public static final long API_VERSION = 0;

    static final Ioctl.Request GET_API_VERSION = Ioctl.request("VDUSE_GET_API_VERSION", Uapi.VDUSE_GET_API_VERSION());
    static final Ioctl.Request SET_API_VERSION = Ioctl.request("VDUSE_SET_API_VERSION", Uapi.VDUSE_SET_API_VERSION());
    static final Ioctl.Request CREATE_DEV = Ioctl.request("VDUSE_CREATE_DEV", Uapi.VDUSE_CREATE_DEV());
    static final Ioctl.Request DESTROY_DEV = Ioctl.request("VDUSE_DESTROY_DEV", Uapi.VDUSE_DESTROY_DEV());

    private final int fd;

    private VduseControl(int fd) {
        this.fd = fd;
    }

    /** Opens the control device and agrees on API version 0; every failure is one actionable line. */
    public static VduseControl open() {
        int fd;
        try {
            fd = FileIo.open(CONTROL.toString(), FileIo.O_RDWR | FileIo.O_CLOEXEC);
        } catch (ErrnoException e) {
            throw switch (e.errno()) {
                case Errno.ENOENT, Errno.ENODEV, Errno.ENXIO -> new TransportException(
                        "no " + CONTROL + ": load the VDUSE modules (modprobe vduse virtio_vdpa) on a kernel with"
                                + " CONFIG_VDPA_USER, or run scripts/vm/run for a guest that has them");
                case Errno.EACCES, Errno.EPERM -> new TransportException(
                        "permission denied on " + CONTROL + ": run as root");
                default -> new TransportException("cannot open " + CONTROL + ": " + e.getMessage(), e);
            };
        }
        VduseControl control = new VduseControl(fd);
        try {
            long version;
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment v = arena.allocate(ValueLayout.JAVA_LONG);
                Ioctl.ioctl(fd, GET_API_VERSION, v);
                version = v.get(ValueLayout.JAVA_LONG, 0);
                if (version != API_VERSION) {
                    v.set(ValueLayout.JAVA_LONG, 0, API_VERSION);
                    Ioctl.ioctl(fd, SET_API_VERSION, v);
                }
            }
            return control;
        } catch (ErrnoException e) {
            control.close();
            throw new TransportException("VDUSE API version negotiation failed: " + e.getMessage(), e);
        }
    }

    /**
     * {@code VDUSE_CREATE_DEV}: makes {@code /dev/vduse/NAME}.
     *
     * @throws TransportException with a one-line reason (name in use, invalid config, ...)
     */
    public void createDevice(String name, int deviceId, long features, int queues, int vqAlign, byte[] config) {
        byte[] nameBytes = checkedName(name);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment c = arena.allocate(vduse_dev_config.layout().byteSize() + config.length, 8);
            MemorySegment.copy(nameBytes, 0, c, ValueLayout.JAVA_BYTE, vduse_dev_config.name$offset(), nameBytes.length);
            vduse_dev_config.vendor_id(c, 0);
            vduse_dev_config.device_id(c, deviceId);
            vduse_dev_config.features(c, features);
            vduse_dev_config.vq_num(c, queues);
            vduse_dev_config.vq_align(c, vqAlign);
            vduse_dev_config.config_size(c, config.length);
            MemorySegment.copy(config, 0, c, ValueLayout.JAVA_BYTE, vduse_dev_config.config$offset(), config.length);
            Ioctl.ioctl(fd, CREATE_DEV, c);
        } catch (ErrnoException e) {
            throw switch (e.errno()) {
                case Errno.EEXIST -> new TransportException("a VDUSE device named '" + name
                        + "' already exists: pick another --name, or remove the stale one (vduse4j destroy --name "
                        + name + ")");
                case Errno.EINVAL -> new TransportException("the kernel rejected the device config for '" + name
                        + "' (EINVAL): features 0x" + Long.toHexString(features) + ", " + queues + " queues", e);
                default -> new TransportException("cannot create VDUSE device '" + name + "': " + e.getMessage(), e);
            };
        }
    }

    /**
     * {@code VDUSE_DESTROY_DEV}. Fails with EBUSY while the device is attached to the vdpa bus or its fd is open.
     *
     * @return true if destroyed, false if no such device existed
     */
    public boolean destroyDevice(String name) {
        byte[] nameBytes = checkedName(name);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment n = arena.allocate(Uapi.VDUSE_NAME_MAX());
            MemorySegment.copy(nameBytes, 0, n, ValueLayout.JAVA_BYTE, 0, nameBytes.length);
            Ioctl.ioctl(fd, DESTROY_DEV, n);
            return true;
        } catch (ErrnoException e) {
            if (e.errno() == Errno.ENOENT || e.errno() == Errno.EINVAL && !Files.exists(DEVICE_DIR.resolve(name))) {
                return false;
            }
            if (e.errno() == Errno.EBUSY) {
                throw new TransportException("VDUSE device '" + name + "' is busy (attached to vdpa or open):"
                        + " detach it first (vdpa dev del " + name + ")", e);
            }
            throw new TransportException("cannot destroy VDUSE device '" + name + "': " + e.getMessage(), e);
        }
    }

    /**
     * Validates a device name as the kernel will (non-empty, shorter than VDUSE_NAME_MAX, a plain file name).
     *
     * @throws TransportException naming the rule
     */
    public static byte[] checkedName(String name) {
        byte[] b = name == null ? new byte[0] : name.getBytes(StandardCharsets.UTF_8);
        if (b.length == 0 || b.length >= Uapi.VDUSE_NAME_MAX() || name.contains("/") || name.equals(".")
                || name.equals("..") || !name.chars().allMatch(ch -> ch > 0x20 && ch < 0x7f)) {
            throw new TransportException("invalid device name '" + name + "': use 1.."
                    + (Uapi.VDUSE_NAME_MAX() - 1) + " printable characters without '/' or spaces");
        }
        return b;
    }

    @Override
    public void close() {
        FileIo.close(fd);
    }
}
