package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * {@code AF_UNIX} stream sockets for the vhost-user control path: {@code socket}, {@code socketpair},
 * {@code bind}, {@code listen}, {@code accept4}, {@code connect} to a filesystem path, and
 * {@code sendmsg}/{@code recvmsg} carrying file descriptors as {@code SCM_RIGHTS}. New fds are
 * close-on-exec. Slow path: structs come from a confined arena per call.
 */
public final class UnixSocket {
    private UnixSocket() {}

    public static final int AF_UNIX = 1;
    public static final int SOCK_STREAM = 1;
    public static final int SOCK_DGRAM = 2;
    public static final int SOCK_SEQPACKET = 5;
    public static final int SOCK_NONBLOCK = 0x800;
    public static final int SOCK_CLOEXEC = 0x80000;
    public static final int SOL_SOCKET = 1;
    public static final int SCM_RIGHTS = 1;
    public static final int MSG_CTRUNC = 0x8;
    public static final int MSG_TRUNC = 0x20;
    public static final int MSG_DONTWAIT = 0x40;
    public static final int MSG_WAITALL = 0x100;
    public static final int MSG_NOSIGNAL = 0x4000;
    public static final int MSG_CMSG_CLOEXEC = 0x40000000;
    /** The longest socket path: {@code sizeof(sun_path) - 1} bytes of UTF-8. */
    public static final int MAX_PATH_BYTES = 107;

    /** What {@link #recvmsg} got: the byte count (0 = peer closed), the fds, and whether control data was cut. */
    public record Received(long bytes, int[] fds, boolean truncated) {
        /** {@code Received[bytes=.., fds=[..], truncated=..]}. */
        @Override
        public String toString() {
            return "Received[bytes=" + bytes + ", fds=" + Arrays.toString(fds) + ", truncated=" + truncated + "]";
        }
    }

    // struct sockaddr_un, struct msghdr, struct iovec, struct cmsghdr on x86_64 (checked by LibcConstantsTest)
    static final long SOCKADDR_UN_SIZE = 110, SUN_PATH = 2;
    static final long MSGHDR_SIZE = 56, MSG_IOV = 16, MSG_IOVLEN = 24, MSG_CONTROL = 32,
            MSG_CONTROLLEN = 40, MSG_FLAGS = 48;
    static final long IOVEC_SIZE = 16, CMSGHDR_SIZE = 16, CMSG_LEVEL = 8, CMSG_TYPE = 12;

    private static final MethodHandle SOCKET = Libc.downcall("socket",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), Libc.CRITICAL);
    private static final MethodHandle SOCKETPAIR = Libc.downcall("socketpair",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS), Libc.CRITICAL);
    private static final MethodHandle BIND = Libc.downcall("bind",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle LISTEN = Libc.downcall("listen",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle ACCEPT4 = Libc.downcall("accept4",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    private static final MethodHandle CONNECT = Libc.downcall("connect",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDMSG = Libc.downcall("sendmsg",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle RECVMSG = Libc.downcall("recvmsg",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));

    /** {@code socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)}. */
    public static int socket() {
        return socket(SOCK_STREAM | SOCK_CLOEXEC);
    }

    /** {@code socket(AF_UNIX, type, 0)}; {@code type} may include {@link #SOCK_CLOEXEC}/{@link #SOCK_NONBLOCK}. */
    public static int socket(int type) {
        CallState st = CallState.current();
        int fd;
        try {
            fd = (int) SOCKET.invokeExact(st.capture, AF_UNIX, type, 0);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (fd < 0) {
            throw new ErrnoException("socket", "AF_UNIX, type=" + Libc.hex(type), st.errno());
        }
        return fd;
    }

    /** {@code socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)}: two connected fds. */
    public static int[] socketPair() {
        CallState st = CallState.current();
        int r;
        int[] fds;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sv = arena.allocate(JAVA_INT, 2);
            r = (int) SOCKETPAIR.invokeExact(st.capture, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
            fds = sv.toArray(JAVA_INT);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (r < 0) {
            throw new ErrnoException("socketpair", "AF_UNIX, SOCK_STREAM", st.errno());
        }
        return fds;
    }

    /** {@code bind(fd, path)}; the path must not exist yet. */
    public static void bind(int fd, String path) {
        CallState st = CallState.current();
        int r;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = sockaddr(arena, path);
            r = (int) BIND.invokeExact(st.capture, fd, addr, (int) addr.byteSize());
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (r < 0) {
            throw new ErrnoException("bind", "fd=" + fd + ", path=\"" + path + "\"", st.errno());
        }
    }

    /** {@code listen(fd, backlog)}. */
    public static void listen(int fd, int backlog) {
        CallState st = CallState.current();
        int r;
        try {
            r = (int) LISTEN.invokeExact(st.capture, fd, backlog);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (r < 0) {
            throw new ErrnoException("listen", "fd=" + fd + ", backlog=" + backlog, st.errno());
        }
    }

    /** A listening socket at {@code path}: socket, bind, listen (the fd is closed if a step fails). */
    public static int listen(String path, int backlog) {
        int fd = socket();
        try {
            bind(fd, path);
            listen(fd, backlog);
            return fd;
        } catch (RuntimeException e) {
            closeQuietly(fd);
            throw e;
        }
    }

    /** {@code accept4(fd, NULL, NULL, SOCK_CLOEXEC)}: waits for a connection and returns its fd. EINTR is retried. */
    public static int accept(int fd) {
        CallState st = CallState.current();
        int r;
        try {
            do {
                r = (int) ACCEPT4.invokeExact(st.capture, fd, MemorySegment.NULL, MemorySegment.NULL, SOCK_CLOEXEC);
            } while (r < 0 && st.errno() == Errno.EINTR);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (r < 0) {
            throw new ErrnoException("accept4", "fd=" + fd, st.errno());
        }
        return r;
    }

    /** {@code connect(fd, path)}. */
    public static void connect(int fd, String path) {
        CallState st = CallState.current();
        int r;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = sockaddr(arena, path);
            r = (int) CONNECT.invokeExact(st.capture, fd, addr, (int) addr.byteSize());
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (r < 0) {
            throw new ErrnoException("connect", "fd=" + fd + ", path=\"" + path + "\"", st.errno());
        }
    }

    /** A stream socket connected to {@code path} (closed again if connecting fails). */
    public static int connect(String path) {
        int fd = socket();
        try {
            connect(fd, path);
            return fd;
        } catch (RuntimeException e) {
            closeQuietly(fd);
            throw e;
        }
    }

    /**
     * {@code sendmsg} of all of {@code data} with {@code fds} attached as {@code SCM_RIGHTS}; returns the bytes
     * sent (a stream socket may send fewer). {@code data} must not be empty when fds are sent. EINTR is retried.
     */
    public static long sendmsg(int fd, MemorySegment data, int... fds) {
        if (fds.length > 0 && data.byteSize() == 0) {
            throw new IllegalArgumentException("fds need at least one data byte to travel with");
        }
        CallState st = CallState.current();
        long r;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = data.isNative() ? data : arena.allocate(data.byteSize()).copyFrom(data);
            MemorySegment msg = msghdr(arena, buf);
            if (fds.length > 0) {
                long space = cmsgSpace(fds.length);
                MemorySegment control = arena.allocate(space, 8);
                control.set(JAVA_LONG, 0, CMSGHDR_SIZE + (long) Integer.BYTES * fds.length);
                control.set(JAVA_INT, CMSG_LEVEL, SOL_SOCKET);
                control.set(JAVA_INT, CMSG_TYPE, SCM_RIGHTS);
                MemorySegment.copy(fds, 0, control, JAVA_INT, CMSGHDR_SIZE, fds.length);
                msg.set(ADDRESS, MSG_CONTROL, control);
                msg.set(JAVA_LONG, MSG_CONTROLLEN, space);
            }
            do {
                r = (long) SENDMSG.invokeExact(st.capture, fd, msg, MSG_NOSIGNAL);
            } while (r < 0 && st.errno() == Errno.EINTR);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (r < 0) {
            throw new ErrnoException("sendmsg", "fd=" + fd + ", length=" + data.byteSize()
                    + ", fds=" + Arrays.toString(fds), st.errno());
        }
        return r;
    }

    /** {@link #recvmsg(int, MemorySegment, int, int)} without flags: blocks until data arrives. */
    public static Received recvmsg(int fd, MemorySegment buf, int maxFds) {
        return recvmsg(fd, buf, maxFds, 0);
    }

    /**
     * {@code recvmsg} into {@code buf} accepting up to {@code maxFds} fds (received close-on-exec). If the peer sent
     * more fds than fit ({@code MSG_CTRUNC}), every fd that did arrive is closed and the result says
     * {@code truncated} with no fds: treat it as a protocol error. EINTR is retried.
     */
    public static Received recvmsg(int fd, MemorySegment buf, int maxFds, int flags) {
        if (maxFds < 0) {
            throw new IllegalArgumentException("maxFds " + maxFds);
        }
        CallState st = CallState.current();
        long r;
        int msgFlags;
        int[] fds;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment target = buf.isNative() ? buf : arena.allocate(buf.byteSize());
            MemorySegment msg = msghdr(arena, target);
            MemorySegment control = MemorySegment.NULL;
            if (maxFds > 0) {
                control = arena.allocate(cmsgSpace(maxFds), 8);
                msg.set(ADDRESS, MSG_CONTROL, control);
                msg.set(JAVA_LONG, MSG_CONTROLLEN, control.byteSize());
            }
            do {
                r = (long) RECVMSG.invokeExact(st.capture, fd, msg, flags | MSG_CMSG_CLOEXEC);
            } while (r < 0 && st.errno() == Errno.EINTR);
            if (r < 0) {
                throw new ErrnoException("recvmsg", "fd=" + fd + ", length=" + buf.byteSize() + ", maxFds=" + maxFds,
                        st.errno());
            }
            if (target != buf) {
                MemorySegment.copy(target, 0, buf, 0, r);
            }
            msgFlags = msg.get(JAVA_INT, MSG_FLAGS);
            fds = maxFds == 0 ? new int[0] : receivedFds(control, msg.get(JAVA_LONG, MSG_CONTROLLEN));
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if ((msgFlags & MSG_CTRUNC) != 0) {
            for (int received : fds) {
                closeQuietly(received);
            }
            return new Received(r, new int[0], true);
        }
        return new Received(r, fds, false);
    }

    private static MemorySegment sockaddr(Arena arena, String path) {
        byte[] bytes = path.getBytes(StandardCharsets.UTF_8);
        if (bytes.length == 0 || bytes.length > MAX_PATH_BYTES) {
            throw new IllegalArgumentException("socket path must be 1.." + MAX_PATH_BYTES + " bytes: \"" + path + "\"");
        }
        MemorySegment addr = arena.allocate(SOCKADDR_UN_SIZE, 8);
        addr.set(JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(bytes, 0, addr, JAVA_BYTE, SUN_PATH, bytes.length);
        return addr.asSlice(0, SUN_PATH + bytes.length + 1); // family + path + NUL
    }

    private static MemorySegment msghdr(Arena arena, MemorySegment data) {
        MemorySegment iov = arena.allocate(IOVEC_SIZE, 8);
        iov.set(ADDRESS, 0, data);
        iov.set(JAVA_LONG, 8, data.byteSize());
        MemorySegment msg = arena.allocate(MSGHDR_SIZE, 8);
        msg.set(ADDRESS, MSG_IOV, iov);
        msg.set(JAVA_LONG, MSG_IOVLEN, 1);
        return msg;
    }

    /** {@code CMSG_SPACE(n * sizeof(int))}. */
    static long cmsgSpace(int fdCount) {
        return CMSGHDR_SIZE + ((Integer.BYTES * (long) fdCount + 7) & ~7L);
    }

    /** Walks the control messages (as {@code CMSG_NXTHDR} does) collecting every {@code SCM_RIGHTS} fd. */
    private static int[] receivedFds(MemorySegment control, long controlLength) {
        int[] fds = new int[0];
        long at = 0;
        while (at + CMSGHDR_SIZE <= controlLength) {
            long length = control.get(JAVA_LONG, at);
            if (length < CMSGHDR_SIZE || at + length > controlLength) {
                break;
            }
            if (control.get(JAVA_INT, at + CMSG_LEVEL) == SOL_SOCKET && control.get(JAVA_INT, at + CMSG_TYPE) == SCM_RIGHTS) {
                int n = (int) ((length - CMSGHDR_SIZE) / Integer.BYTES);
                int old = fds.length;
                fds = Arrays.copyOf(fds, old + n);
                MemorySegment.copy(control, JAVA_INT, at + CMSGHDR_SIZE, fds, old, n);
            }
            at += (length + 7) & ~7L;
        }
        return fds;
    }

    private static void closeQuietly(int fd) {
        try {
            FileIo.close(fd);
        } catch (ErrnoException ignored) {
            // nothing more to do with an fd we are abandoning
        }
    }
}
