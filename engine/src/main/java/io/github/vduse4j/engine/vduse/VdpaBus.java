package io.github.vduse4j.engine.vduse;

import io.github.vduse4j.engine.TransportException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Attaches VDUSE devices to the vdpa bus and detaches them, through iproute2's {@code vdpa} tool
 * ({@code vdpa dev add name NAME mgmtdev vduse} / {@code vdpa dev del NAME}).
 *
 * <p>Why the tool and not generic netlink directly: these are two rare control-path operations; iproute2's
 * {@code vdpa} is the reference client of the kernel's "vdpa" genetlink family, ships with every distribution
 * that has VDUSE, and its error text is what admins already know. A netlink client in {@code bindings} would
 * add socket and attribute code for no runtime gain. See docs/architecture.md.
 */
public final class VdpaBus {
    public static final Path VDPA_DEVICES = Path.of("/sys/bus/vdpa/devices");
    public static final Path VDPA_DRIVERS = Path.of("/sys/bus/vdpa/drivers");

    /**
     * The vdpa bus driver a device is bound to: virtio_vdpa (the kernel's virtio driver takes it: /dev/vdX) or
     * vhost_vdpa (a character device /dev/vhost-vdpa-N for a VMM or {@code vduse4j bench --vhost-vdpa}).
     */
    public enum Driver {
        VIRTIO_VDPA("virtio_vdpa"), VHOST_VDPA("vhost_vdpa");

        private final String sysfsName;

        Driver(String sysfsName) {
            this.sysfsName = sysfsName;
        }

        /** The driver's name on the vdpa bus (and its module's). */
        public String sysfsName() { return sysfsName; }

        /** The driver named {@code name} (virtio_vdpa or vhost_vdpa), or null. */
        public static Driver named(String name) {
            for (Driver d : values()) {
                if (d.sysfsName.equals(name)) {
                    return d;
                }
            }
            return null;
        }
    }
    private static final long TIMEOUT_SECONDS = 30;

    private VdpaBus() {}

    /**
     * Adds {@code name} to the vdpa bus (virtio-vdpa binds it and the guest-side driver probes it) and waits
     * for its block device to appear.
     *
     * @return the block device path, e.g. {@code /dev/vda}; empty when the device is bound to vhost-vdpa or
     *         is not a block device
     */
    public static Optional<Path> attach(String name) {
        run("vdpa", "dev", "add", "name", name, "mgmtdev", "vduse");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        Path dev = VDPA_DEVICES.resolve(name);
        while (System.nanoTime() < deadline) {
            Optional<Path> block = findBlockDevice(dev);
            if (block.isPresent() && Files.exists(block.get())) {
                return block;
            }
            if (Files.exists(dev) && hasVhostDriver(dev)) {
                return Optional.empty();
            }
            sleep(50);
        }
        return Optional.empty();
    }

    /**
     * Fails with one actionable line unless {@code driver} is registered on the vdpa bus (its module loaded or built
     * in): checked before a device is created, so a missing driver leaves nothing behind.
     */
    public static void requireDriver(Driver driver) {
        if (!Files.isDirectory(VDPA_DRIVERS.resolve(driver.sysfsName()))) {
            throw new TransportException("the " + driver.sysfsName() + " vdpa bus driver is not loaded: modprobe "
                    + driver.sysfsName());
        }
    }

    /**
     * Adds {@code name} to the vdpa bus bound to {@code driver} and waits for what the driver makes.
     * {@link Driver#VIRTIO_VDPA}: as {@link #attach(String)}. {@link Driver#VHOST_VDPA}: a new vdpa device is probed
     * by the first driver that matches (every vdpa driver matches every device, Linux 6.1 {@code vdpa_dev_match}) as
     * soon as {@code vdpa dev add} registers it, so it is then unbound from whatever took it, its
     * {@code driver_override} set to vhost_vdpa (honoured by {@code vdpa_dev_match}) and bound through
     * {@code drivers/vhost_vdpa/bind}; the result is {@code /dev/vhost-vdpa-N}.
     *
     * @return the block device (virtio_vdpa) or the vhost-vdpa character device; empty if none appeared
     */
    public static Optional<Path> attach(String name, Driver driver) {
        if (driver == Driver.VIRTIO_VDPA) {
            return attach(name);
        }
        run("vdpa", "dev", "add", "name", name, "mgmtdev", "vduse");
        Path dev = VDPA_DEVICES.resolve(name);
        Path current = dev.resolve("driver");
        try {
            if (Files.exists(current)) {
                String bound = Files.readSymbolicLink(current).getFileName().toString();
                if (!bound.equals(driver.sysfsName())) {
                    Files.writeString(VDPA_DRIVERS.resolve(bound).resolve("unbind"), name);
                }
            }
            Files.writeString(dev.resolve("driver_override"), driver.sysfsName());
            if (!Files.exists(current)) {
                Files.writeString(VDPA_DRIVERS.resolve(driver.sysfsName()).resolve("bind"), name);
            }
        } catch (IOException e) {
            throw new TransportException("cannot bind vdpa device '" + name + "' to " + driver.sysfsName() + ": "
                    + e.getMessage(), e);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        while (System.nanoTime() < deadline) {
            Optional<Path> chr = findVhostDevice(dev);
            if (chr.isPresent() && Files.exists(chr.get())) {
                return chr;
            }
            sleep(50);
        }
        return Optional.empty();
    }

    private static Optional<Path> findVhostDevice(Path vdpaDevice) {
        try (DirectoryStream<Path> s = Files.newDirectoryStream(vdpaDevice, "vhost-vdpa-*")) {
            for (Path p : s) {
                return Optional.of(Path.of("/dev").resolve(p.getFileName().toString()));
            }
        } catch (IOException e) {
            return Optional.empty();
        }
        return Optional.empty();
    }

    /** Removes {@code name} from the vdpa bus; the driver resets the device first. Idempotent. */
    public static void detach(String name) {
        if (!Files.exists(VDPA_DEVICES.resolve(name))) {
            return;
        }
        run("vdpa", "dev", "del", name);
    }

    /** The block device of {@code name} if it is on the vdpa bus under virtio_vdpa (e.g. after a takeover). */
    public static Optional<Path> blockDevice(String name) {
        return findBlockDevice(VDPA_DEVICES.resolve(name));
    }

    /** True if {@code name} is on the vdpa bus. */
    public static boolean isAttached(String name) {
        return Files.exists(VDPA_DEVICES.resolve(name));
    }

    private static Optional<Path> findBlockDevice(Path vdpaDevice) {
        if (!Files.isDirectory(vdpaDevice)) {
            return Optional.empty();
        }
        try (DirectoryStream<Path> virtio = Files.newDirectoryStream(vdpaDevice, "virtio*")) {
            for (Path v : virtio) {
                Path block = v.resolve("block");
                if (!Files.isDirectory(block)) {
                    continue;
                }
                try (DirectoryStream<Path> disks = Files.newDirectoryStream(block)) {
                    for (Path d : disks) {
                        return Optional.of(Path.of("/dev").resolve(d.getFileName().toString()));
                    }
                }
            }
        } catch (IOException e) {
            return Optional.empty();
        }
        return Optional.empty();
    }

    private static boolean hasVhostDriver(Path vdpaDevice) {
        try (DirectoryStream<Path> s = Files.newDirectoryStream(vdpaDevice, "vhost-vdpa-*")) {
            return s.iterator().hasNext();
        } catch (IOException e) {
            return false;
        }
    }

    private static void run(String... command) {
        Process p;
        try {
            p = new ProcessBuilder(command).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new TransportException("cannot run '" + command[0] + "': install iproute2 (it provides the vdpa tool)", e);
        }
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new TransportException("'" + String.join(" ", command) + "' did not finish in "
                        + TIMEOUT_SECONDS + " s");
            }
            if (p.exitValue() != 0) {
                throw new TransportException("'" + String.join(" ", command) + "' failed: "
                        + out.replace('\n', ' '));
            }
        } catch (IOException e) {
            throw new TransportException("'" + String.join(" ", command) + "' failed: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new TransportException("interrupted while running " + command[0], e);
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new TransportException("interrupted while waiting for the block device", e);
        }
    }
}
