package io.github.vduse4j.engine.frontend;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.ErrnoException;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Ioctl;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * What {@link VhostVdpaTransport} does with {@code /dev/vhost-vdpa-N}: ioctls and {@code write()}s of IOTLB
 * messages. The seam lets unit tests check the handshake and the messages against a fake device
 * (VhostVdpaTransportTest); {@link #open(Path)} is the real character device.
 */
public interface VhostVdpaFile extends AutoCloseable {
    /** {@code ioctl(fd, request, arg)}: the result, or {@code -errno}. */
    int ioctl(long request, MemorySegment arg);

    /** {@code write(fd, msg)}: bytes written, or {@code -errno}. */
    long write(MemorySegment msg);

    @Override
    void close();

    /** Opens the vhost-vdpa character device {@code path} read-write (only one opener at a time: EBUSY). */
    static VhostVdpaFile open(Path path) {
        int fd;
        try {
            fd = FileIo.open(path.toString(), FileIo.O_RDWR | FileIo.O_CLOEXEC);
        } catch (ErrnoException e) {
            throw new IllegalStateException("cannot open " + path + ": " + Errno.name(e.errno()) + " ("
                    + Errno.description(e.errno()) + ")" + switch (e.errno()) {
                        case Errno.EBUSY -> ": another frontend has it open";
                        case Errno.ENOENT -> ": no such vhost-vdpa device (export with --vdpa-driver vhost_vdpa)";
                        default -> "";
                    }, e);
        }
        return new VhostVdpaFile() {
            private final CallState st = new CallState();
            private boolean closed;

            @Override
            public int ioctl(long request, MemorySegment arg) {
                return Ioctl.ioctlRaw(st, fd, request, arg);
            }

            @Override
            public long write(MemorySegment msg) {
                return FileIo.writeRaw(st, fd, msg, 0, msg.byteSize());
            }

            @Override
            public void close() {
                if (!closed) {
                    closed = true;
                    FileIo.close(fd);   // the kernel resets the device on release (vhost_vdpa_release)
                }
            }
        };
    }
}
