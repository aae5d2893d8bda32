package io.github.vduse4j.engine.vhostuser;

import static io.github.vduse4j.engine.vhostuser.VhostUserProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.engine.vduse.VduseDevice;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SET_CONFIG (spec "VHOST_USER_SET_CONFIG") against a device with one writable config byte: the write reaches the
 * device only when it is well formed, lies inside the config space and the feature that makes the field writable was
 * negotiated; anything else is an error ack and leaves the config space as it was; GET_CONFIG reads back what was
 * written. The features that depend on config writes are offered over vhost-user and never over VDUSE.
 */
class VhostUserConfigWriteTest {
    private static final long WRITABLE = 1L << EchoDevice.WRITABLE_FEATURE;
    private static final long ALL_PROTOCOL = (1L << PF_MQ) | (1L << PF_REPLY_ACK) | (1L << PF_BACKEND_REQ)
            | (1L << PF_CONFIG) | (1L << PF_INFLIGHT_SHMFD) | (1L << PF_RESET_DEVICE) | (1L << PF_CONFIGURE_MEM_SLOTS);

    @TempDir
    Path dir;
    Path sock;
    VhostUserServer server;
    final EchoDevice device = new EchoDevice(true);

    @BeforeEach
    void start() {
        sock = dir.resolve("cfg.sock");
        server = VhostUserServer.start(sock, device, true);
    }

    @AfterEach
    void stop() {
        server.close();
    }

    /** Protocol features {@code pf} (REPLY_ACK is needed for the acks), SET_OWNER. */
    private TestFrontend connect(long pf) {
        TestFrontend f = new TestFrontend(sock);
        f.getU64(GET_FEATURES);
        f.send(SET_PROTOCOL_FEATURES, 0, U64_SIZE, m -> m.putU64(0, pf));
        f.send(SET_OWNER, 0, 0, m -> { });
        return f;
    }

    /** SET_CONFIG with NEED_REPLY: header fields as given, {@code payloadBytes} bytes of value {@code value}. */
    private static long setConfig(TestFrontend f, int offset, int size, int flags, int payloadBytes, int value) {
        return f.ack(SET_CONFIG, CONFIG_HEADER_SIZE + payloadBytes, m -> {
            m.putU32(CONFIG_OFFSET, offset).putU32(CONFIG_SIZE_FIELD, size).putU32(CONFIG_FLAGS, flags);
            for (int i = 0; i < payloadBytes; i++) {
                m.putU8(CONFIG_HEADER_SIZE + i, (byte) value);
            }
        });
    }

    private static long setByte(TestFrontend f, int offset, int value) {
        return setConfig(f, offset, 1, CONFIG_TYPE_FRONTEND, 1, value);
    }

    /** The whole config space through GET_CONFIG. */
    private static byte[] config(TestFrontend f) {
        f.send(GET_CONFIG, 0, CONFIG_HEADER_SIZE + 60, m -> m.putU32(0, 0).putU32(4, 60));
        VhostUserMessage r = f.reply(GET_CONFIG);
        assertEquals(CONFIG_HEADER_SIZE + 60, r.size());
        byte[] out = new byte[60];
        for (int i = 0; i < 60; i++) {
            out[i] = (byte) r.u8(CONFIG_HEADER_SIZE + i);
        }
        return out;
    }

    @Test
    void theWritableFeatureIsOfferedOverVhostUserButNotOverVduse() {
        try (TestFrontend f = new TestFrontend(sock)) {
            assertEquals(EchoDevice.FEATURES | WRITABLE | (1L << F_PROTOCOL_FEATURES), f.getU64(GET_FEATURES));
        }
        assertEquals(EchoDevice.FEATURES, VduseDevice.offeredFeatures(device));
        assertEquals(0, VduseDevice.offeredFeatures(device) & WRITABLE);
    }

    @Test
    void aValidWriteIsAppliedAndReadBack() {
        try (TestFrontend f = connect(ALL_PROTOCOL)) {
            assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, (1L << 32) | WRITABLE | (1L << F_PROTOCOL_FEATURES))));
            byte[] before = config(f);
            assertEquals(0, setByte(f, EchoDevice.WRITABLE_OFFSET, 0x5a));
            byte[] after = config(f);
            assertEquals(0x5a, after[EchoDevice.WRITABLE_OFFSET]);
            after[EchoDevice.WRITABLE_OFFSET] = before[EchoDevice.WRITABLE_OFFSET];
            assertArrayEquals(before, after, "nothing else changed");
            assertEquals(0, setByte(f, EchoDevice.WRITABLE_OFFSET, 0));
            assertEquals(0, config(f)[EchoDevice.WRITABLE_OFFSET]);
            // without NEED_REPLY: applied all the same, no reply (the next request's reply comes first)
            f.send(SET_CONFIG, 0, CONFIG_HEADER_SIZE + 1, m -> m.putU32(CONFIG_OFFSET, EchoDevice.WRITABLE_OFFSET)
                    .putU32(CONFIG_SIZE_FIELD, 1).putU8(CONFIG_HEADER_SIZE, (byte) 7));
            assertEquals(7, config(f)[EchoDevice.WRITABLE_OFFSET]);
            assertEquals(3, device.writesApplied);
        }
        assertEquals(0, server.refusedMessages());
    }

    @Test
    void malformedOrForbiddenWritesAreRefusedWhole() {
        try (TestFrontend f = connect(ALL_PROTOCOL)) {
            // before SET_FEATURES nothing was negotiated: the field is not writable yet
            assertNotEquals(0, setByte(f, EchoDevice.WRITABLE_OFFSET, 1));
            assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, (1L << 32) | WRITABLE | (1L << F_PROTOCOL_FEATURES))));
            byte[] before = config(f);
            int w = EchoDevice.WRITABLE_OFFSET;
            long[][] bad = { // offset, size, flags, payload bytes
                {60, 1, 0, 1},                   // just past the end of the 60-byte config space
                {59, 2, 0, 2},                   // straddles the end
                {0xffff_ffffL, 1, 0, 1},         // offset -1 (u32 wrap)
                {0x7fff_ffffL, 1, 0, 1},         // huge offset
                {0, 256, 0, 256},                // the maximum size, beyond this device's config space
                {w, 0, 0, 0},                    // empty
                {w, 0xffff_ffffL, 0, 1},         // size -1
                {w, 300, 0, 1},                  // size beyond 256
                {w, 1, 0, 4},                    // payload longer than its size field
                {w, 4, 0, 1},                    // payload shorter than its size field
                {w, 1, CONFIG_TYPE_MIGRATION, 1},// no live migration here
                {w, 1, 2, 1},                    // unknown flags
                {0, 1, 0, 1},                    // a read-only field
                {w - 1, 2, 0, 2},                // the writable byte and a read-only one: nothing is written
                {w, 2, 0, 2},
            };
            for (long[] b : bad) {
                assertNotEquals(0, setConfig(f, (int) b[0], (int) b[1], (int) b[2], (int) b[3], 0x77),
                        "offset " + b[0] + " size " + b[1] + " flags " + b[2] + " payload " + b[3]);
            }
            // a payload without the config header
            assertNotEquals(0, f.ack(SET_CONFIG, 8, m -> m.putU32(0, w).putU32(4, 1)));
            assertArrayEquals(before, config(f), "no refused write changed a byte");
            assertEquals(0, device.writesApplied);
            assertTrue(server.refusedMessages() >= bad.length + 2, "refused " + server.refusedMessages());
            // the connection goes on and a good write still works
            assertEquals(0, setByte(f, w, 9));
            assertEquals(9, config(f)[w]);
        }
    }

    @Test
    void withoutTheWritableFeatureNegotiatedWritesAreRefused() {
        try (TestFrontend f = connect(ALL_PROTOCOL)) {
            assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, (1L << 32) | (1L << F_PROTOCOL_FEATURES))));
            byte[] before = config(f);
            assertNotEquals(0, setByte(f, EchoDevice.WRITABLE_OFFSET, 1));
            assertArrayEquals(before, config(f));
            // RESET_DEVICE forgets the features: a write after it is refused even if they allowed it before
            assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, (1L << 32) | WRITABLE | (1L << F_PROTOCOL_FEATURES))));
            assertEquals(0, f.ack(RESET_DEVICE, 0, m -> { }));
            assertNotEquals(0, setByte(f, EchoDevice.WRITABLE_OFFSET, 1));
            assertArrayEquals(before, config(f));
        }
        assertEquals(0, device.writesApplied);
    }

    @Test
    void configWritesNeedTheConfigProtocolFeature() {
        try (TestFrontend f = connect(ALL_PROTOCOL & ~(1L << PF_CONFIG))) {
            // the writable-config feature cannot be negotiated without SET_CONFIG
            assertNotEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, (1L << 32) | WRITABLE | (1L << F_PROTOCOL_FEATURES))));
            assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, (1L << 32) | (1L << F_PROTOCOL_FEATURES))));
            assertNotEquals(0, setByte(f, EchoDevice.WRITABLE_OFFSET, 1));
        }
        assertEquals(0, device.writesApplied);
    }

    @Test
    void aDeviceWithoutWritableFieldsRefusesEveryWrite() {
        server.close();
        EchoDevice readOnly = new EchoDevice(false);
        server = VhostUserServer.start(sock, readOnly, true);
        try (TestFrontend f = connect(ALL_PROTOCOL)) {
            assertEquals(EchoDevice.FEATURES | (1L << F_PROTOCOL_FEATURES), f.getU64(GET_FEATURES));
            assertNotEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, (1L << 32) | WRITABLE | (1L << F_PROTOCOL_FEATURES))),
                    "a feature that was not offered");
            assertEquals(0, f.ack(SET_FEATURES, 8, m -> m.putU64(0, (1L << 32) | (1L << F_PROTOCOL_FEATURES))));
            assertNotEquals(0, setByte(f, EchoDevice.WRITABLE_OFFSET, 1));
        }
        assertEquals(0, readOnly.writesApplied);
    }
}
