package io.github.vduse4j.engine.vduse;

import io.github.vduse4j.engine.TransportException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Optional;

/**
 * The VDUSE features of the running kernel that live in sysfs, found by looking (never by version number), and
 * set where they exist. What Linux 6.12 has and 6.1 lacks ({@code drivers/vdpa/vdpa_user/vduse_dev.c}):
 * <ul>
 *   <li>{@code /sys/class/vduse/NAME/bounce_size}: the bounce buffer's size in bytes, 1 MiB .. 1 GiB, rounded
 *       down to a page; writable only before {@code vdpa dev add} (the IOVA domain is created there, after which
 *       writes fail with EPERM). 6.1 fixes it at 64 MiB, which caps the data in flight.
 *   <li>{@code /sys/class/vduse/NAME/vqN/irq_cb_affinity}: a hex CPU mask; VDUSE_VQ_INJECT_IRQ runs the queue's
 *       completion callback on the next online CPU of the mask (round robin), on a bound workqueue. The default is
 *       every CPU; virtio_vdpa sets it from the driver's managed affinity when it has one. 6.1 injects on an
 *       unbound workqueue.
 * </ul>
 * The paths are parameters so that tests can point them at a directory tree.
 */
public final class VduseKernelFeatures {
    /** The bounce size when the kernel has no bounce_size file, or nothing was written to it (VDUSE_BOUNCE_SIZE). */
    public static final long DEFAULT_BOUNCE_SIZE = 64L << 20;
    public static final long MIN_BOUNCE_SIZE = 1L << 20;
    public static final long MAX_BOUNCE_SIZE = 1L << 30;

    /** How the completion interrupt of each queue is placed (irq_cb_affinity). */
    public enum IrqAffinity {
        /** the CPUs blk-mq maps to the queue (/sys/block/vdX/mq/N/cpu_list): the CPUs that submit to it */
        BLK_MQ,
        /** every online CPU: the kernel rotates through them (what 6.12 does when the driver sets nothing) */
        ALL,
        /** leave what the kernel and driver set */
        KERNEL
    }

    private final Path vduseClass;
    private final Path sysBlock;
    private final Path onlineCpus;

    public VduseKernelFeatures(Path vduseClass, Path sysBlock, Path onlineCpus) {
        this.vduseClass = vduseClass;
        this.sysBlock = sysBlock;
        this.onlineCpus = onlineCpus;
    }

    /** The running kernel's sysfs. */
    public static VduseKernelFeatures system() {
        return new VduseKernelFeatures(Path.of("/sys/class/vduse"), Path.of("/sys/block"),
                Path.of("/sys/devices/system/cpu/online"));
    }

    private Path bounceFile(String name) {
        return vduseClass.resolve(name).resolve("bounce_size");
    }

    private Path affinityFile(String name, int queue) {
        return vduseClass.resolve(name).resolve("vq" + queue).resolve("irq_cb_affinity");
    }

    /** True if the bounce size of device {@code name} (created, not yet attached) can be set. */
    public boolean bounceSizeSettable(String name) {
        return Files.exists(bounceFile(name));
    }

    /** True if the completion interrupt CPUs of the device's queues can be set. */
    public boolean irqAffinitySettable(String name) {
        return Files.exists(affinityFile(name, 0));
    }

    /** The device's bounce size as the kernel reports it, or 64 MiB where it has no bounce_size file. */
    public long bounceSize(String name) {
        return readTrimmed(bounceFile(name)).map(Long::parseLong).orElse(DEFAULT_BOUNCE_SIZE);
    }

    /**
     * Sets the bounce size of {@code name} before it is attached.
     *
     * @throws TransportException if the kernel has no bounce_size (one line that says so) or refuses the size
     */
    public void setBounceSize(String name, long size) {
        checkBounceSize(size);
        Path f = bounceFile(name);
        if (!Files.exists(f)) {
            throw new TransportException(bounceUnavailable());
        }
        try {
            Files.writeString(f, Long.toString(size));
        } catch (IOException e) {
            throw new TransportException("cannot set the VDUSE bounce size of '" + name + "' to " + mib(size) + " ("
                    + f + "): " + e.getMessage(), e);
        }
        long got = bounceSize(name);
        if (got != size) {
            throw new TransportException("the kernel set the VDUSE bounce size of '" + name + "' to " + got
                    + " bytes, not the " + size + " asked for");
        }
    }

    /** The one line said where bounce_size is missing. */
    public static String bounceUnavailable() {
        return "--bounce-size is unavailable on this kernel: it has no /sys/class/vduse/NAME/bounce_size (its VDUSE"
                + " bounce buffer is fixed at 64 MiB; Linux 6.12 has the setting)";
    }

    /** The one line said where irq_cb_affinity is missing. */
    public static String irqAffinityUnavailable() {
        return "--irq-affinity is unavailable on this kernel: it has no /sys/class/vduse/NAME/vqN/irq_cb_affinity"
                + " (completion interrupts run on any CPU; Linux 6.12 has the setting)";
    }

    /** Rejects a size the kernel would refuse (it takes 1 MiB .. 1 GiB, rounded down to 4 KiB pages). */
    public static void checkBounceSize(long size) {
        if (size < MIN_BOUNCE_SIZE || size > MAX_BOUNCE_SIZE || size % 4096 != 0) {
            throw new TransportException("--bounce-size must be a multiple of 4 KiB from 1 MiB to 1 GiB (the kernel's"
                    + " VDUSE_MIN/MAX_BOUNCE_SIZE), got " + size);
        }
    }

    /** The device's irq_cb_affinity of queue {@code queue} as a CPU set, empty if the kernel has none. */
    public Optional<BitSet> irqAffinity(String name, int queue) {
        return readTrimmed(affinityFile(name, queue)).map(VduseKernelFeatures::parseCpuMask);
    }

    /**
     * Sets the completion interrupt CPUs of each queue of {@code name}, attached as block device {@code disk}
     * ({@code vda}), and returns what each queue got, e.g. {@code vq0=0 vq1=1}.
     *
     * @throws TransportException if the kernel has no irq_cb_affinity, blk-mq's map cannot be read, or a write fails
     */
    public String applyIrqAffinity(String name, String disk, int queues, IrqAffinity mode) {
        if (mode == IrqAffinity.KERNEL) {
            return describeAffinity(name, queues);
        }
        if (!irqAffinitySettable(name)) {
            throw new TransportException(irqAffinityUnavailable());
        }
        BitSet all = readTrimmed(onlineCpus).map(VduseKernelFeatures::parseCpuList).orElse(null);
        for (int q = 0; q < queues; q++) {
            BitSet cpus;
            if (mode == IrqAffinity.ALL) {
                cpus = all;
            } else {
                Path list = sysBlock.resolve(disk).resolve("mq").resolve(Integer.toString(q)).resolve("cpu_list");
                cpus = readTrimmed(list).map(VduseKernelFeatures::parseCpuList).orElse(null);
                if (cpus == null && Files.isDirectory(sysBlock.resolve(disk).resolve("mq"))) {
                    continue; // the driver uses fewer queues than the device has (virtio-blk: at most one per CPU)
                }
                if (cpus == null) {
                    throw new TransportException("cannot read blk-mq's CPUs of queue " + q + " of " + disk + " (" + list
                            + ")");
                }
            }
            if (cpus == null || cpus.isEmpty()) {
                continue; // blk-mq maps no CPU to this queue (more queues than CPUs): keep the kernel's
            }
            Path f = affinityFile(name, q);
            try {
                Files.writeString(f, toCpuMask(cpus));
            } catch (IOException e) {
                throw new TransportException("cannot set " + f + " to CPUs " + toCpuList(cpus) + ": " + e.getMessage(), e);
            }
        }
        return describeAffinity(name, queues);
    }

    private String describeAffinity(String name, int queues) {
        List<String> out = new ArrayList<>();
        for (int q = 0; q < queues; q++) {
            int i = q;
            irqAffinity(name, q).ifPresent(c -> out.add("vq" + i + "=" + toCpuList(c)));
        }
        return String.join(" ", out);
    }

    // ---- CPU sets in sysfs's two notations ----

    /** Parses a CPU list ({@code 0-3,6}, as cpu_list and cpu/online print it). */
    public static BitSet parseCpuList(String s) {
        BitSet b = new BitSet();
        for (String part : s.trim().split(",")) {
            if (part.isEmpty()) {
                continue;
            }
            int dash = part.indexOf('-');
            int from = Integer.parseInt(part.substring(0, dash < 0 ? part.length() : dash).trim());
            int to = dash < 0 ? from : Integer.parseInt(part.substring(dash + 1).trim());
            b.set(from, to + 1);
        }
        return b;
    }

    /** Parses a hex CPU mask ({@code 3}, {@code 00000001,00000000}: 32-bit groups, as %*pb prints it). */
    public static BitSet parseCpuMask(String s) {
        String hex = s.trim().replace(",", "");
        BitSet b = new BitSet();
        for (int i = 0; i < hex.length(); i++) {
            int nibble = Character.digit(hex.charAt(hex.length() - 1 - i), 16);
            if (nibble < 0) {
                throw new NumberFormatException("not a hex CPU mask: " + s);
            }
            for (int bit = 0; bit < 4; bit++) {
                if ((nibble & (1 << bit)) != 0) {
                    b.set(i * 4 + bit);
                }
            }
        }
        return b;
    }

    /** A hex CPU mask that cpumask_parse accepts, in 32-bit groups separated by commas. */
    public static String toCpuMask(BitSet cpus) {
        int groups = Math.max(1, (cpus.length() + 31) / 32);
        StringBuilder sb = new StringBuilder();
        for (int g = groups - 1; g >= 0; g--) {
            long word = 0;
            for (int bit = 0; bit < 32; bit++) {
                if (cpus.get(g * 32 + bit)) {
                    word |= 1L << bit;
                }
            }
            if (sb.length() > 0) {
                sb.append(',').append(String.format("%08x", word));
            } else {
                sb.append(Long.toHexString(word));
            }
        }
        return sb.toString();
    }

    /** A CPU list, {@code 0-3,6}. */
    public static String toCpuList(BitSet cpus) {
        StringBuilder sb = new StringBuilder();
        for (int i = cpus.nextSetBit(0); i >= 0; ) {
            int end = cpus.nextClearBit(i) - 1;
            if (sb.length() > 0) {
                sb.append(',');
            }
            sb.append(i);
            if (end > i) {
                sb.append('-').append(end);
            }
            i = cpus.nextSetBit(end + 1);
        }
        return sb.toString();
    }

    private static Optional<String> readTrimmed(Path p) {
        try {
            return Optional.of(Files.readString(p).trim()).filter(s -> !s.isEmpty());
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private static String mib(long bytes) {
        return bytes % (1L << 20) == 0 ? (bytes >> 20) + " MiB" : bytes + " bytes";
    }
}
