package io.github.vduse4j.bindings;

import static io.github.vduse4j.bindings.Failures.expect;
import static io.github.vduse4j.bindings.Failures.expectOneOf;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class UnixSocketTest {
    @TempDir
    Path dir;

    static long openFds() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    static MemorySegment ascii(Arena arena, String s) {
        return arena.allocateFrom(s, StandardCharsets.US_ASCII).asSlice(0, s.length());
    }

    @Test
    void socketOfAnUnknownTypeFails() {
        expectOneOf(() -> UnixSocket.socket(99), "socket", List.of("ESOCKTNOSUPPORT", "EINVAL"), "AF_UNIX", "type=0x63");
    }

    @Test
    void bindToAnExistingPathFailsWithEaddrinuseAndToAMissingDirWithEnoent() throws IOException {
        String existing = Files.createFile(dir.resolve("taken")).toString();
        String missing = dir.resolve("no/such/dir").toString();
        int fd = UnixSocket.socket();
        try {
            expect(() -> UnixSocket.bind(fd, existing), "bind", "EADDRINUSE", "fd=" + fd, "path=\"" + existing + "\"");
            expect(() -> UnixSocket.bind(fd, missing), "bind", "ENOENT", "path=\"" + missing + "\"");
        } finally {
            FileIo.close(fd);
        }
    }

    @Test
    void listenOnAMemfdFailsWithEnotsock() {
        int fd = FileIo.memfdCreate("not-a-socket", FileIo.MFD_CLOEXEC);
        try {
            expect(() -> UnixSocket.listen(fd, 4), "listen", "ENOTSOCK", "fd=" + fd, "backlog=4");
        } finally {
            FileIo.close(fd);
        }
    }

    @Test
    void acceptOnANonListeningSocketFailsWithEinval() {
        int fd = UnixSocket.socket();
        try {
            expect(() -> UnixSocket.accept(fd), "accept4", "EINVAL", "fd=" + fd);
        } finally {
            FileIo.close(fd);
        }
    }

    @Test
    void connectToAMissingPathFailsWithEnoentAndToANonListenerWithEconnrefused() {
        String missing = dir.resolve("missing.sock").toString();
        expect(() -> UnixSocket.connect(missing), "connect", "ENOENT", "path=\"" + missing + "\"");
        String bound = dir.resolve("bound.sock").toString();
        int server = UnixSocket.socket();
        try {
            UnixSocket.bind(server, bound);
            expect(() -> UnixSocket.connect(bound), "connect", "ECONNREFUSED", "path=\"" + bound + "\"");
        } finally {
            FileIo.close(server);
        }
    }

    @Test
    void sendmsgToAClosedPeerFailsWithEpipeAndRecvmsgOnAMemfdWithEnotsock() {
        int[] pair = UnixSocket.socketPair();
        FileIo.close(pair[1]);
        int memfd = FileIo.memfdCreate("x", FileIo.MFD_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(4);
            expect(() -> UnixSocket.sendmsg(pair[0], data, memfd), "sendmsg", "EPIPE", "fd=" + pair[0], "length=4",
                    "fds=[" + memfd + "]");
            expect(() -> UnixSocket.recvmsg(memfd, data, 2), "recvmsg", "ENOTSOCK", "fd=" + memfd, "length=4", "maxFds=2");
        } finally {
            FileIo.close(memfd);
            FileIo.close(pair[0]);
        }
    }

    @Test
    void pathsMustFitSunPath() {
        assertThrows(IllegalArgumentException.class, () -> UnixSocket.connect("/" + "p".repeat(UnixSocket.MAX_PATH_BYTES)));
    }

    @Test
    void passesAnFdOverAListeningSocketAndTheReceiverWritesThroughIt() {
        String path = dir.resolve("vhost.sock").toString();
        int server = UnixSocket.listen(path, 1);
        int client = UnixSocket.connect(path);
        int accepted = UnixSocket.accept(server);
        int memfd = FileIo.memfdCreate("shared", FileIo.MFD_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            assertEquals(5, UnixSocket.sendmsg(client, ascii(arena, "hello"), memfd));
            MemorySegment buf = arena.allocate(64);
            UnixSocket.Received got = UnixSocket.recvmsg(accepted, buf, 4);
            assertEquals(5, got.bytes());
            assertFalse(got.truncated());
            assertEquals(1, got.fds().length);
            assertEquals("hello", new String(buf.asSlice(0, 5).toArray(JAVA_BYTE), StandardCharsets.US_ASCII));

            int received = got.fds()[0];
            assertTrue(received != memfd);
            FileIo.pwrite(received, ascii(arena, "via received fd"), 0, 15, 0);
            MemorySegment check = arena.allocate(15);
            FileIo.pread(memfd, check, 0, 15, 0);
            assertEquals("via received fd", new String(check.toArray(JAVA_BYTE), StandardCharsets.US_ASCII));
            FileIo.close(received);

            FileIo.close(client);
            client = -1;
            assertEquals(0, UnixSocket.recvmsg(accepted, buf, 4).bytes(), "0 bytes: the peer closed");
        } finally {
            FileIo.close(memfd);
            FileIo.close(accepted);
            if (client >= 0) {
                FileIo.close(client);
            }
            FileIo.close(server);
        }
    }

    @Test
    void socketPairCarriesSeveralFdsAndHeapBuffers() {
        int[] pair = UnixSocket.socketPair();
        int a = EventFd.create(0, EventFd.EFD_CLOEXEC), b = EventFd.create(0, EventFd.EFD_CLOEXEC);
        try {
            byte[] message = {1, 2, 3};
            assertEquals(3, UnixSocket.sendmsg(pair[0], MemorySegment.ofArray(message), a, b));
            byte[] into = new byte[8];
            UnixSocket.Received got = UnixSocket.recvmsg(pair[1], MemorySegment.ofArray(into), 2);
            assertEquals(3, got.bytes());
            assertArrayEquals(new byte[] {1, 2, 3, 0, 0, 0, 0, 0}, into);
            assertEquals(2, got.fds().length);
            EventFd.signal(got.fds()[1], 5); // the received fd is the same eventfd as b
            assertEquals(5, EventFd.consume(b));
            for (int fd : got.fds()) {
                FileIo.close(fd);
            }
        } finally {
            FileIo.close(a);
            FileIo.close(b);
            FileIo.close(pair[0]);
            FileIo.close(pair[1]);
        }
    }

    @Test
    void tooManyFdsAreReportedAsTruncatedAndClosed() throws IOException {
        int[] pair = UnixSocket.socketPair();
        int a = EventFd.create(0, EventFd.EFD_CLOEXEC), b = EventFd.create(0, EventFd.EFD_CLOEXEC),
                c = EventFd.create(0, EventFd.EFD_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            UnixSocket.sendmsg(pair[0], ascii(arena, "x"), a, b, c);
            long before = openFds();
            UnixSocket.Received got = UnixSocket.recvmsg(pair[1], arena.allocate(8), 1);
            assertTrue(got.truncated(), got.toString());
            assertEquals(1, got.bytes());
            assertEquals(0, got.fds().length);
            assertEquals(before, openFds(), "the fd that did arrive was closed");
        } finally {
            for (int fd : new int[] {a, b, c, pair[0], pair[1]}) {
                FileIo.close(fd);
            }
        }
    }
}
