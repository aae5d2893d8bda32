package io.github.vduse4j.engine.vduse;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.Errno;
import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.bindings.uapi.Uapi;
import io.github.vduse4j.bindings.uapi.vduse_dev_request;
import io.github.vduse4j.bindings.uapi.vduse_dev_response;
import io.github.vduse4j.bindings.uapi.vduse_dev_status;
import io.github.vduse4j.bindings.uapi.vduse_iova_range;
import io.github.vduse4j.bindings.uapi.vduse_vq_state;
import io.github.vduse4j.bindings.uapi.vduse_vq_state_packed;
import io.github.vduse4j.bindings.uapi.vduse_vq_state_split;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The device's control thread: reads each {@code vduse_dev_request} from {@code /dev/vduse/NAME} and answers
 * it with a {@code vduse_dev_response} carrying the same {@code request_id}. The kernel waits for every answer
 * (and marks the device broken after {@code msg_timeout}), so each request is answered, FAILED if need be.
 */
final class VduseRequestLoop implements Runnable {
    /**
     * What the loop asks of the device ({@link VduseDevice} behind an adapter). The seam lets tests drive the loop
     * over a socket pair with a model device instead of /dev/vduse (VduseRequestLoopFuzzTest).
     */
    interface Device {
        String name();
        long negotiatedFeatures();
        /** SET_STATUS; false answers FAILED. */
        boolean onSetStatus(int status);
        /** GET_VQ_STATE; null answers FAILED. */
        VduseDevice.QueueState onGetVqState(int index);
        /** UPDATE_IOTLB of {@code [start, last]}; false answers FAILED. */
        boolean onUpdateIotlb(long start, long last);
    }

    private final Device device;
    private final int fd;
    private final int stopFd;
    private final Thread thread;
    private volatile boolean stopping;

    VduseRequestLoop(Device device, int fd) {
        this.device = device;
        this.fd = fd;
        this.stopFd = EventFd.create(0, EventFd.EFD_CLOEXEC);
        this.thread = Thread.ofPlatform().name("vduse4j-control-" + device.name()).daemon(true).unstarted(this);
    }

    void start() {
        thread.start();
    }

    /** Ends the thread (after it answers the request it is handling) and releases its eventfd. */
    void stop() {
        stopping = true;
        EventFd.signal(stopFd);
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        FileIo.close(stopFd);
    }

    @Override
    public void run() {
        CallState st = new CallState();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment req = arena.allocate(vduse_dev_request.layout());
            MemorySegment resp = arena.allocate(vduse_dev_response.layout());
            Poll poll = new Poll(2);
            poll.add(fd, Poll.POLLIN);
            poll.add(stopFd, Poll.POLLIN);
            while (!stopping) {
                int n = poll.pollRaw(st, -1);
                if (n == -Errno.EINTR) {
                    continue;
                }
                if (n < 0 || (poll.revents(0) & (Poll.POLLERR | Poll.POLLHUP | Poll.POLLNVAL)) != 0) {
                    System.err.println("vduse4j: " + device.name() + ": device file closed or broken; control stops");
                    return;
                }
                if (stopping || (poll.revents(0) & Poll.POLLIN) == 0) {
                    continue;
                }
                long r = FileIo.readRaw(st, fd, req, 0, req.byteSize());
                if (r == -Errno.EINTR || r == -Errno.EAGAIN) {
                    continue;
                }
                if (r != req.byteSize()) {
                    System.err.println("vduse4j: " + device.name() + ": short read of a request (" + r + "); control stops");
                    return;
                }
                resp.fill((byte) 0);
                vduse_dev_response.request_id(resp, vduse_dev_request.request_id(req));
                boolean ok = handle(req, resp);
                vduse_dev_response.result(resp, ok ? Uapi.VDUSE_REQ_RESULT_OK() : Uapi.VDUSE_REQ_RESULT_FAILED());
                long w = FileIo.writeRaw(st, fd, resp, 0, resp.byteSize());
                if (w != resp.byteSize()) {
                    System.err.println("vduse4j: " + device.name() + ": cannot answer request: " + w);
                }
            }
        } catch (RuntimeException e) {
            System.err.println("vduse4j: " + device.name() + ": control thread failed: " + e);
        }
    }

    private boolean handle(MemorySegment req, MemorySegment resp) {
        int type = vduse_dev_request.type(req);
        if (type == Uapi.VDUSE_SET_STATUS()) {
            return device.onSetStatus(Byte.toUnsignedInt(vduse_dev_status.status(vduse_dev_request.s(req))));
        }
        if (type == Uapi.VDUSE_GET_VQ_STATE()) {
            int index = vduse_vq_state.index(vduse_dev_request.vq_state(req));
            VduseDevice.QueueState s = device.onGetVqState(index);
            if (s == null) {
                return false;
            }
            MemorySegment out = vduse_dev_response.vq_state(resp);
            vduse_vq_state.index(out, index);
            if ((device.negotiatedFeatures() & (1L << Uapi.VIRTIO_F_RING_PACKED())) != 0) {
                MemorySegment p = vduse_vq_state.packed(out);
                vduse_vq_state_packed.last_avail_counter(p, (short) (s.availWrap() ? 1 : 0));
                vduse_vq_state_packed.last_avail_idx(p, (short) s.availIndex());
                vduse_vq_state_packed.last_used_counter(p, (short) (s.usedWrap() ? 1 : 0));
                vduse_vq_state_packed.last_used_idx(p, (short) s.usedIndex());
            } else {
                vduse_vq_state_split.avail_index(vduse_vq_state.split(out), (short) s.availIndex());
            }
            return true;
        }
        if (type == Uapi.VDUSE_UPDATE_IOTLB()) {
            MemorySegment range = vduse_dev_request.iova(req);
            return device.onUpdateIotlb(vduse_iova_range.start(range), vduse_iova_range.last(range));
        }
        System.err.println("vduse4j: " + device.name() + ": unknown request type " + type + ", answered FAILED");
        return false;
    }
}
