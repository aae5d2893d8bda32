package io.github.vduse4j.engine;

/**
 * A transport could not be set up or torn down. The message is one line a user can act on, e.g.
 * {@code no /dev/vduse/control: load the VDUSE modules (modprobe vduse virtio_vdpa)}.
 */
public final class TransportException extends RuntimeException {
    public TransportException(String message) {
        super(message);
    }

    public TransportException(String message, Throwable cause) {
        super(message, cause);
    }
}
