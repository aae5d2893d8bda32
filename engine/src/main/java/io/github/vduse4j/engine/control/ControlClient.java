package io.github.vduse4j.engine.control;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.Map;

/** Sends one request to an export's control socket and reads the one-line reply, within a timeout. */
public final class ControlClient {
    private ControlClient() {}

    /** Why a control socket did not answer: nobody listens (a dead export), or it did not answer in time. */
    public static final class Unreachable extends IOException {
        private final boolean stale;

        Unreachable(String message, boolean stale, Throwable cause) {
            super(message, cause);
            this.stale = stale;
        }

        /** True when the socket file exists but no process listens on it (the export died). */
        public boolean stale() {
            return stale;
        }
    }

    /**
     * Sends {@code request} and returns the reply object.
     *
     * @throws Unreachable when nothing listens on {@code socket} or no reply comes within {@code timeout}
     * @throws IOException for other I/O errors (e.g. permission denied)
     */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> request(java.nio.file.Path socket, Map<String, Object> request, Duration timeout)
            throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            try {
                ch.connect(UnixDomainSocketAddress.of(socket));
            } catch (java.net.ConnectException e) {
                throw new Unreachable(socket + ": no export listens (it is not running any more)", true, e);
            } catch (java.net.SocketException e) {
                if (String.valueOf(e.getMessage()).contains("ermission")) {
                    throw new IOException(socket + ": permission denied (the control socket is the exporting user's"
                            + " only: run as that user or root)", e);
                }
                throw new Unreachable(socket + ": " + e.getMessage(), !java.nio.file.Files.exists(socket), e);
            }
            ch.configureBlocking(false);
            ByteBuffer out = ByteBuffer.wrap((Json.write(request) + "\n").getBytes(StandardCharsets.UTF_8));
            ByteArrayOutputStream reply = new ByteArrayOutputStream();
            ByteBuffer in = ByteBuffer.allocate(64 * 1024);
            try (Selector sel = Selector.open()) {
                SelectionKey key = ch.register(sel, SelectionKey.OP_WRITE);
                while (true) {
                    long left = (deadline - System.nanoTime()) / 1_000_000;
                    if (left <= 0) {
                        throw new Unreachable(socket + ": the export did not answer within " + timeout.toMillis()
                                + " ms", false, null);
                    }
                    sel.select(left);
                    if (out.hasRemaining()) {
                        ch.write(out);
                        if (!out.hasRemaining()) {
                            key.interestOps(SelectionKey.OP_READ);
                        }
                        continue;
                    }
                    in.clear();
                    int n = ch.read(in);
                    if (n < 0) {
                        throw new IOException(socket + ": the export closed the connection without an answer");
                    }
                    for (int i = 0; i < n; i++) {
                        byte b = in.get(i);
                        if (b == '\n') {
                            Object v = Json.parse(reply.toString(StandardCharsets.UTF_8));
                            if (!(v instanceof Map<?, ?> m)) {
                                throw new IOException(socket + ": the reply is not a JSON object");
                            }
                            return (Map<String, Object>) m;
                        }
                        reply.write(b);
                    }
                    if (reply.size() > Json.MAX_LINE) {
                        throw new IOException(socket + ": reply too long");
                    }
                }
            }
        }
    }
}
