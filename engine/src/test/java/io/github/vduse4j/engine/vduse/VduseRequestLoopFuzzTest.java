package io.github.vduse4j.engine.vduse;

import static org.junit.jupiter.api.Assertions.*;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.Test;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.FileIo;
import io.github.vduse4j.bindings.Poll;
import io.github.vduse4j.bindings.UnixSocket;
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
import java.lang.foreign.ValueLayout;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Coverage-guided fuzzing (Jazzer) of the VDUSE control loop ({@link VduseRequestLoop}): the fuzzer is the kernel,
 * writing {@code vduse_dev_request} bytes (SET_STATUS, GET_VQ_STATE with any queue index, UPDATE_IOTLB with any
 * range, unknown types, any request_id and reserved bytes) into a socket pair that stands in for
 * {@code /dev/vduse/NAME}; the device behind the loop's {@link VduseRequestLoop.Device} seam is a model that
 * records what it was asked and answers as the fuzzer decides (including "queue does not exist").
 *
 * <p>Invariants: exactly one response per request, in order, with the request's request_id; result OK exactly when
 * the device said yes and FAILED otherwise (unknown types FAILED, the loop goes on); the device is handed exactly the
 * status byte, queue index and IOTLB range of the request; a GET_VQ_STATE answer carries the queue's index and its
 * state in the split or packed layout that the negotiated features select; every answer arrives within 5 s; the
 * loop stops when asked ({@link #stopsWhenAsked}).
 */
class VduseRequestLoopFuzzTest {
    private static final long REQ = vduse_dev_request.layout().byteSize();
    private static final long RESP = vduse_dev_response.layout().byteSize();

    /** Answers as told; remembers the last call. */
    private static final class ModelDevice implements VduseRequestLoop.Device {
        final ConcurrentLinkedQueue<String> calls = new ConcurrentLinkedQueue<>();
        volatile long features;
        volatile boolean answer;
        volatile int queues;

        @Override public String name() { return "fuzz"; }
        @Override public long negotiatedFeatures() { return features; }

        @Override
        public boolean onSetStatus(int status) {
            calls.add("status " + status);
            return answer;
        }

        @Override
        public VduseDevice.QueueState onGetVqState(int index) {
            calls.add("vq " + index);
            return index >= 0 && index < queues ? state(index) : null;
        }

        @Override
        public boolean onUpdateIotlb(long start, long last) {
            calls.add("iotlb " + start + " " + last);
            return answer;
        }

        static VduseDevice.QueueState state(int index) {
            return new VduseDevice.QueueState((index * 7919) & 0x7FFF, (index & 1) == 0, (index * 104729) & 0x7FFF,
                    (index & 2) == 0);
        }
    }

    /**
     * One loop, socket pair and model device for every input (an execution costs the requests, not a thread start and
     * stop); {@link #stopsWhenAsked} checks the stop on a loop of its own.
     */
    private static final int[] PAIR = UnixSocket.socketPair();
    private static final ModelDevice DEVICE = new ModelDevice();
    private static final MemorySegment REQ_BUF = Arena.global().allocate(vduse_dev_request.layout());
    private static final MemorySegment RESP_BUF = Arena.global().allocate(vduse_dev_response.layout());
    private static final Poll POLL = new Poll(1);

    static {
        new VduseRequestLoop(DEVICE, PAIR[1]).start();
        POLL.add(PAIR[0], Poll.POLLIN);
    }

    @Test
    void stopsWhenAsked() throws Exception {
        int[] pair = UnixSocket.socketPair();
        ModelDevice device = new ModelDevice();
        device.answer = true;
        VduseRequestLoop loop = new VduseRequestLoop(device, pair[1]);
        loop.start();
        CallState st = new CallState();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment req = arena.allocate(vduse_dev_request.layout());
            MemorySegment resp = arena.allocate(vduse_dev_response.layout());
            vduse_dev_request.type(req, Uapi.VDUSE_SET_STATUS());
            vduse_dev_request.request_id(req, 42);
            Poll poll = new Poll(1);
            poll.add(pair[0], Poll.POLLIN);
            assertEquals(REQ, FileIo.writeRaw(st, pair[0], req, 0, REQ));
            assertTrue(poll.poll(5000) > 0, "answered");
            assertEquals(RESP, FileIo.readRaw(st, pair[0], resp, 0, RESP));
            assertEquals(42, vduse_dev_response.request_id(resp));
            assertEquals(Uapi.VDUSE_REQ_RESULT_OK(), vduse_dev_response.result(resp));
            Thread stopper = Thread.ofPlatform().start(loop::stop);
            stopper.join(5000);
            assertFalse(stopper.isAlive(), "the loop stops when asked");
        } finally {
            FileIo.close(pair[0]);
            FileIo.close(pair[1]);
        }
    }

    @FuzzTest(maxDuration = "30s")
    void requests(FuzzedDataProvider data) {
        ModelDevice device = DEVICE;
        CallState st = new CallState();
        MemorySegment req = REQ_BUF, resp = RESP_BUF;
        Poll poll = POLL;
        int[] pair = PAIR;
        while (poll.poll(0) > 0) {   // what an earlier failed input left unread
            FileIo.readRaw(st, pair[0], resp, 0, RESP);
        }
        {
            int n = data.consumeInt(1, 32);
            for (int i = 0; i < n && data.remainingBytes() > 0; i++) {
                device.features = data.consumeBoolean() ? 1L << Uapi.VIRTIO_F_RING_PACKED() : data.consumeLong();
                device.answer = data.consumeBoolean();
                device.queues = data.consumeInt(0, 4);
                byte[] raw = data.consumeBytes((int) REQ);
                req.fill((byte) 0);
                MemorySegment.copy(raw, 0, req, ValueLayout.JAVA_BYTE, 0, raw.length);
                int type = switch (data.consumeInt(0, 4)) {
                    case 0 -> Uapi.VDUSE_SET_STATUS();
                    case 1 -> Uapi.VDUSE_GET_VQ_STATE();
                    case 2 -> Uapi.VDUSE_UPDATE_IOTLB();
                    case 3 -> data.consumeInt(0, 8);
                    default -> data.consumeInt();
                };
                vduse_dev_request.type(req, type);
                if (type == Uapi.VDUSE_GET_VQ_STATE() && data.consumeBoolean()) {
                    vduse_vq_state.index(vduse_dev_request.vq_state(req), data.consumeInt(-1, 5));
                }
                int id = vduse_dev_request.request_id(req);
                boolean packed = (device.features & (1L << Uapi.VIRTIO_F_RING_PACKED())) != 0;
                device.calls.clear();
                assertEquals(REQ, FileIo.writeRaw(st, pair[0], req, 0, REQ), "request written");
                assertTrue(poll.poll(5000) > 0, "no answer within 5 s to request type " + type);
                assertEquals(RESP, FileIo.readRaw(st, pair[0], resp, 0, RESP), "one whole response");
                assertEquals(id, vduse_dev_response.request_id(resp), "request_id echoed");
                int result = vduse_dev_response.result(resp);
                String call = device.calls.poll();
                assertNull(device.calls.poll(), "one device call per request");
                boolean ok;
                if (type == Uapi.VDUSE_SET_STATUS()) {
                    int status = Byte.toUnsignedInt(vduse_dev_status.status(vduse_dev_request.s(req)));
                    assertEquals("status " + status, call);
                    ok = device.answer;
                } else if (type == Uapi.VDUSE_GET_VQ_STATE()) {
                    int index = vduse_vq_state.index(vduse_dev_request.vq_state(req));
                    assertEquals("vq " + index, call);
                    ok = index >= 0 && index < device.queues;
                    if (ok) {
                        MemorySegment out = vduse_dev_response.vq_state(resp);
                        assertEquals(index, vduse_vq_state.index(out));
                        VduseDevice.QueueState s = ModelDevice.state(index);
                        if (packed) {
                            MemorySegment p = vduse_vq_state.packed(out);
                            assertEquals(s.availIndex(), vduse_vq_state_packed.last_avail_idx(p) & 0xFFFF);
                            assertEquals(s.availWrap() ? 1 : 0, vduse_vq_state_packed.last_avail_counter(p));
                            assertEquals(s.usedIndex(), vduse_vq_state_packed.last_used_idx(p) & 0xFFFF);
                            assertEquals(s.usedWrap() ? 1 : 0, vduse_vq_state_packed.last_used_counter(p));
                        } else {
                            assertEquals(s.availIndex(), vduse_vq_state_split.avail_index(vduse_vq_state.split(out)) & 0xFFFF);
                        }
                    }
                } else if (type == Uapi.VDUSE_UPDATE_IOTLB()) {
                    MemorySegment r = vduse_dev_request.iova(req);
                    assertEquals("iotlb " + vduse_iova_range.start(r) + " " + vduse_iova_range.last(r), call);
                    ok = device.answer;
                } else {
                    assertNull(call, "an unknown request reaches no device method");
                    ok = false;
                }
                assertEquals(ok ? Uapi.VDUSE_REQ_RESULT_OK() : Uapi.VDUSE_REQ_RESULT_FAILED(), result, "result");
            }
        }
    }
}
