package io.github.vduse4j.ring.testkit;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Puts virtio-blk shaped requests into a test-kit queue: a 16-byte {@code virtio_blk_outhdr} (le32 type, le32 ioprio,
 * le64 sector), optional data buffers, and a 1-byte status buffer (virtio 1.2 §5.2.6). The ring module knows no
 * virtio-blk semantics: type codes are the caller's (e.g. 0 = IN, 1 = OUT, 4 = FLUSH, 8 = GET_ID).
 */
public final class BlkRequests {
    private BlkRequests() {}

    public static final int HEADER_BYTES = 16;
    /** Value the status byte is pre-filled with, so a test can tell whether the device wrote it. */
    public static final byte STATUS_UNSET = (byte) 0xEE;

    /** Guest addresses of one request's parts. {@code id} is -1 if the ring had no room. */
    public record Request(int id, long header, long data, int dataLength, int dataSegments, boolean dataDeviceWritable,
                          long status) {}

    /**
     * Allocates and adds {@code [header (R), data (R for writes / W for reads) in dataSegments pieces, status (W)]}.
     * The data is not initialized; fill it through {@code driver.memory()}.
     */
    public static Request add(VirtqueueDriver driver, int type, long sector, int dataLength, int dataSegments,
                              boolean dataDeviceWritable, long token) {
        DriverMemory m = driver.memory();
        long header = m.allocate(HEADER_BYTES, 16);
        var h = m.view(header, HEADER_BYTES);
        h.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, type);
        h.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4, 0);
        h.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 8, sector);
        long data = dataLength > 0 ? m.allocate(dataLength, 512) : 0;
        long status = m.allocate(1, 1);
        m.putByte(status, STATUS_UNSET);
        ChainBuilder c = driver.chain().readable(header, HEADER_BYTES);
        int segments = dataLength > 0 ? Math.max(1, Math.min(dataSegments, dataLength)) : 0;
        for (int s = 0; s < segments; s++) {
            int from = (int) ((long) dataLength * s / segments);
            int to = (int) ((long) dataLength * (s + 1) / segments);
            if (dataDeviceWritable) c.writable(data + from, to - from); else c.readable(data + from, to - from);
        }
        c.writable(status, 1);
        int id = c.add(token);
        return new Request(id, header, data, dataLength, segments, dataDeviceWritable, status);
    }

    /** The request's status byte as the device left it ({@link #STATUS_UNSET} if untouched). */
    public static byte status(VirtqueueDriver driver, Request r) {
        return driver.memory().getByte(r.status());
    }
}
