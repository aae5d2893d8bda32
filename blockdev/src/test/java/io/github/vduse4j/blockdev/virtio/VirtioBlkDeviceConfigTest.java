package io.github.vduse4j.blockdev.virtio;

import static io.github.vduse4j.blockdev.virtio.VirtioBlk.bit;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.bindings.uapi.Uapi;
import io.github.vduse4j.bindings.uapi.virtio_blk_config;
import io.github.vduse4j.blockdev.backend.BackendQueue;
import io.github.vduse4j.blockdev.backend.BlockBackend;
import io.github.vduse4j.blockdev.backend.FileBackend;
import io.github.vduse4j.blockdev.backend.MemoryBackend;
import io.github.vduse4j.engine.vduse.VduseDevice;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The virtio-blk cache-mode field (§5.2.4 {@code writeback}, §5.2.5): who offers VIRTIO_BLK_F_CONFIG_WCE, what the
 * config space reports, and which driver writes the device accepts.
 */
class VirtioBlkDeviceConfigTest {
    static final VirtioBlkSettings SETTINGS = new VirtioBlkSettings(1, 64, 512, "cfg", false);
    static final int WB = VirtioBlk.CONFIG_WRITEBACK_OFFSET;

    @TempDir
    Path dir;

    /** A memory disk that counts {@link #flush()} calls and can be told to fail them, or to claim no flush at all. */
    static final class CountingBackend implements BlockBackend {
        final MemoryBackend inner = new MemoryBackend(1 << 20, false);
        final boolean canFlush;
        int flushes;
        boolean failFlush;

        CountingBackend(boolean canFlush) {
            this.canFlush = canFlush;
        }

        @Override public long capacity() { return inner.capacity(); }
        @Override public boolean isReadOnly() { return false; }
        @Override public boolean supportsDiscard() { return true; }
        @Override public boolean supportsWriteZeroes() { return true; }
        @Override public boolean supportsFlush() { return canFlush; }
        @Override public BackendQueue openQueue(int queueIndex) { return inner.openQueue(queueIndex); }
        @Override public String describe() { return "counting"; }
        @Override public void close() { inner.close(); }

        @Override
        public void flush() {
            flushes++;
            if (failFlush) {
                throw new IllegalStateException("EIO");
            }
        }
    }

    static long negotiated(VirtioBlkDevice d) {
        return d.deviceFeatures() | d.configWriteFeatures();
    }

    static byte writebackField(VirtioBlkDevice d) {
        return d.configSpace()[WB];
    }

    @Test
    void constantsMatchTheKernelHeaders() {
        assertEquals(Uapi.VIRTIO_BLK_F_CONFIG_WCE(), VirtioBlk.F_CONFIG_WCE);
        assertEquals(virtio_blk_config.wce$offset(), VirtioBlk.CONFIG_WRITEBACK_OFFSET);
        assertEquals(virtio_blk_config.layout().byteSize(), new VirtioBlkDevice(new MemoryBackend(1 << 20, false),
                SETTINGS).configSpace().length);
    }

    @Test
    void configWceIsOfferedOnlyWhereConfigWritesArriveAndTheBackendCanFlush() throws IOException {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[1 << 20]);
        try (FileBackend file = new FileBackend(img, false); FileBackend ro = new FileBackend(img, true);
             CountingBackend noFlush = new CountingBackend(false)) {
            VirtioBlkDevice writable = new VirtioBlkDevice(file, SETTINGS);
            assertEquals(bit(VirtioBlk.F_CONFIG_WCE), writable.configWriteFeatures());
            assertEquals(0, writable.deviceFeatures() & bit(VirtioBlk.F_CONFIG_WCE), "not a plain device feature");
            assertNotEquals(0, writable.deviceFeatures() & bit(VirtioBlk.F_FLUSH), "§5.2.5: FLUSH comes with CONFIG_WCE");
            // VDUSE cannot deliver config writes (Linux 6.1 drops them): it must never offer CONFIG_WCE
            assertEquals(0, VduseDevice.offeredFeatures(writable) & bit(VirtioBlk.F_CONFIG_WCE));
            assertEquals(writable.deviceFeatures(), VduseDevice.offeredFeatures(writable));
            // a read-only device has no cache to configure; a backend that cannot flush cannot do writethrough
            assertEquals(0, new VirtioBlkDevice(ro, SETTINGS).configWriteFeatures());
            assertEquals(0, new VirtioBlkDevice(noFlush, SETTINGS).configWriteFeatures());
            assertFalse(new VirtioBlkDevice(noFlush, SETTINGS).acceptsConfigWrites(~0L));
            assertNotNull(new VirtioBlkDevice(ro, SETTINGS).writeConfig(WB, new byte[] {0}, ~0L));
        }
    }

    @Test
    void writebackStartsAtOneAndTogglesWithFlushOnTheWayToWritethrough() {
        try (CountingBackend b = new CountingBackend(true)) {
            VirtioBlkDevice d = new VirtioBlkDevice(b, SETTINGS);
            assertEquals(1, writebackField(d));
            assertTrue(d.writeback());
            assertTrue(d.acceptsConfigWrites(negotiated(d)));

            assertNull(d.writeConfig(WB, new byte[] {0}, negotiated(d)));
            assertEquals(0, writebackField(d));
            assertFalse(d.writeback());
            assertTrue(d.writeThrough());
            assertEquals(1, b.flushes, "writes completed in writeback mode are flushed before the switch is acknowledged");

            assertNull(d.writeConfig(WB, new byte[] {0}, negotiated(d)), "the same value again is fine");
            assertEquals(1, b.flushes, "and costs nothing");

            assertNull(d.writeConfig(WB, new byte[] {1}, negotiated(d)));
            assertEquals(1, writebackField(d));
            assertTrue(d.writeback());
            assertEquals(1, b.flushes);
        }
    }

    @Test
    void forbiddenWritesAreRefusedAndChangeNothing() {
        try (CountingBackend b = new CountingBackend(true)) {
            VirtioBlkDevice d = new VirtioBlkDevice(b, SETTINGS);
            byte[] before = d.configSpace();
            long f = negotiated(d);
            // CONFIG_WCE not negotiated (a driver that does not know it, or a write before SET_FEATURES)
            assertNotNull(d.writeConfig(WB, new byte[] {0}, d.deviceFeatures()));
            assertFalse(d.acceptsConfigWrites(d.deviceFeatures()));
            // read-only fields: capacity, num_queues, the padding after writeback, a range including writeback
            assertNotNull(d.writeConfig(0, new byte[] {1}, f));
            assertNotNull(d.writeConfig(34, new byte[] {1, 0}, f));
            assertNotNull(d.writeConfig(WB + 1, new byte[] {0}, f));
            assertNotNull(d.writeConfig(WB - 1, new byte[] {0, 0}, f));
            assertNotNull(d.writeConfig(WB, new byte[] {0, 0}, f));
            assertNotNull(d.writeConfig(0, new byte[before.length], f), "the whole config space");
            // values other than 0 and 1
            assertNotNull(d.writeConfig(WB, new byte[] {2}, f));
            assertNotNull(d.writeConfig(WB, new byte[] {(byte) 0xff}, f));
            assertArrayEquals(before, d.configSpace());
            assertTrue(d.writeback());
            assertEquals(0, b.flushes);
        }
    }

    @Test
    void aFailedFlushKeepsWriteback() {
        try (CountingBackend b = new CountingBackend(true)) {
            VirtioBlkDevice d = new VirtioBlkDevice(b, SETTINGS);
            b.failFlush = true;
            String why = d.writeConfig(WB, new byte[] {0}, negotiated(d));
            assertNotNull(why);
            assertTrue(why.contains("EIO"), why);
            assertTrue(d.writeback(), "the driver is refused, so it keeps sending FLUSH");
            assertEquals(1, writebackField(d));
        }
    }
}
