package io.github.vduse4j.engine;

/** Sends a used-buffer notification (an interrupt) for one queue to the driver (virtio 1.2 §2.7.14). */
@FunctionalInterface
public interface DriverNotifier {

    /** Must not allocate or throw; failures are counted by the implementation. */
    void notifyDriver();
}
