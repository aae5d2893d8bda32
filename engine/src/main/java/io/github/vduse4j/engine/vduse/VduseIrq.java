package io.github.vduse4j.engine.vduse;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Ioctl;
import io.github.vduse4j.bindings.uapi.Uapi;
import io.github.vduse4j.engine.DriverNotifier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Used-buffer notification for one queue: {@code VDUSE_VQ_INJECT_IRQ} (the kernel runs the driver's callback). */
final class VduseIrq implements DriverNotifier {
    private static final long INJECT_IRQ = Uapi.VDUSE_VQ_INJECT_IRQ();

    private final int deviceFd;
    private final MemorySegment index;
    private final CallState state = new CallState();
    private long failures;

    VduseIrq(int deviceFd, int queueIndex) {
        this.deviceFd = deviceFd;
        this.index = Arena.ofAuto().allocate(ValueLayout.JAVA_INT);
        index.set(ValueLayout.JAVA_INT, 0, queueIndex);
    }

    /** Poller thread only. */
    @Override
    public void notifyDriver() {
        if (Ioctl.ioctlRepeatableRaw(state, deviceFd, INJECT_IRQ, index) < 0) {
            failures++;
        }
    }

    long failures() {
        return failures;
    }
}
