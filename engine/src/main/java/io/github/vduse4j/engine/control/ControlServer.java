package io.github.vduse4j.engine.control;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The control socket of one export ({@code /run/vduse4j/NAME/control}, mode 0600): one JSON request object per line,
 * one JSON reply object per line (docs/operations.md). Requests are answered by a handler on a thread of their
 * own per connection, never on the datapath.
 */
public final class ControlServer implements AutoCloseable {
    private final Path path;
    private final ServerSocketChannel server;
    private final Function<Map<String, Object>, Map<String, Object>> handler;
    private final Consumer<Map<String, Object>> afterReply;
    private final Thread acceptor;
    private volatile boolean closed;

    private ControlServer(Path path, ServerSocketChannel server, Function<Map<String, Object>, Map<String, Object>> handler,
            Consumer<Map<String, Object>> afterReply) {
        this.path = path;
        this.server = server;
        this.handler = handler;
        this.afterReply = afterReply;
        this.acceptor = Thread.ofPlatform().name("vduse4j-control-socket").daemon(true).unstarted(this::accept);
    }

    /**
     * Listens on {@code path} (which must not exist; its directory should be private to the owner while this binds)
     * and answers each request with {@code handler}, whose reply gets {@code "ok": true} unless it set {@code ok};
     * an exception becomes {@code {"ok": false, "error": message}}. {@code afterReply} gets each request that succeeded
     * once its reply is written (e.g. to stop the export only after {@code stop} was acknowledged).
     */
    public static ControlServer start(Path path, Function<Map<String, Object>, Map<String, Object>> handler,
            Consumer<Map<String, Object>> afterReply) throws IOException {
        ServerSocketChannel ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        // bind(2) makes the file, listen(2) comes after it: bound under a temporary name and renamed once listening,
        // the socket never exists without answering (a client in between would take the export for dead)
        Path bound = path.resolveSibling(path.getFileName() + ".binding");
        try {
            Files.deleteIfExists(bound);
            ch.bind(UnixDomainSocketAddress.of(bound));
            Files.setPosixFilePermissions(bound, PosixFilePermissions.fromString("rw-------"));
            Files.move(bound, path, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException | RuntimeException e) {
            ch.close();
            Files.deleteIfExists(bound);
            throw e;
        }
        ControlServer s = new ControlServer(path, ch, handler, afterReply);
        s.acceptor.start();
        return s;
    }

    public Path path() {
        return path;
    }

    private void accept() {
        while (!closed) {
            try {
                SocketChannel c = server.accept();
                Thread.ofVirtual().name("vduse4j-control-client").start(() -> serve(c));
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (!closed) {
                    System.err.println("vduse4j: control socket " + path + ": " + e.getMessage());
                }
                return;
            }
        }
    }

    private void serve(SocketChannel c) {
        try (c) {
            ByteBuffer in = ByteBuffer.allocate(Json.MAX_LINE + 1);
            while (!closed) {
                int n = c.read(in);
                if (n < 0) {
                    return;
                }
                int end;
                while ((end = newline(in)) >= 0) {
                    String line = new String(in.array(), 0, end, StandardCharsets.UTF_8);
                    in.flip().position(end + 1);
                    in.compact();
                    Map<String, Object> request = new LinkedHashMap<>();
                    Map<String, Object> answer = answer(line, request);
                    ByteBuffer out = ByteBuffer.wrap((Json.write(answer) + "\n").getBytes(StandardCharsets.UTF_8));
                    while (out.hasRemaining()) {
                        c.write(out);
                    }
                    if (Boolean.TRUE.equals(answer.get("ok"))) {
                        afterReply.accept(request);
                    }
                }
                if (!in.hasRemaining()) {
                    String reply = Json.write(error("request longer than " + Json.MAX_LINE + " bytes")) + "\n";
                    c.write(ByteBuffer.wrap(reply.getBytes(StandardCharsets.UTF_8)));
                    return;
                }
            }
        } catch (IOException e) {
            // the client went away
        }
    }

    private static int newline(ByteBuffer in) {
        byte[] a = in.array();
        for (int i = 0; i < in.position(); i++) {
            if (a[i] == '\n') {
                return i;
            }
        }
        return -1;
    }

    private Map<String, Object> answer(String line, Map<String, Object> parsed) {
        Object req;
        try {
            req = Json.parse(line.strip());
        } catch (IllegalArgumentException e) {
            return error(e.getMessage());
        }
        if (!(req instanceof Map<?, ?> m) || !(m.get("command") instanceof String)) {
            return error("a request is an object with a \"command\" string: info, stats, resize or stop");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> request = (Map<String, Object>) m;
        parsed.putAll(request);
        try {
            Map<String, Object> reply = new LinkedHashMap<>();
            reply.put("ok", true);
            reply.putAll(handler.apply(request));
            return reply;
        } catch (RuntimeException e) {
            return error(e.getMessage() == null ? e.toString() : e.getMessage());
        }
    }

    private static Map<String, Object> error(String message) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ok", false);
        m.put("error", message);
        return m;
    }

    /** Stops listening and removes the socket file. */
    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException e) {
            // closing anyway
        }
        try {
            Files.deleteIfExists(path);
        } catch (IOException e) {
            // the directory goes with the export
        }
    }
}
