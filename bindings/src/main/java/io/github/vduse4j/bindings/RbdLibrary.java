package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import io.github.vduse4j.bindings.rbd.Rbd;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * librados and librbd: the control path through the jextract-generated {@link Rbd} (handles as {@code long}
 * addresses, errors as {@link ErrnoException} naming the call), and the datapath as hand-written downcalls that take
 * every pointer as a {@code long} (same x86_64 ABI as a pointer), so a request makes no {@link MemorySegment} wrapper
 * per call and per completion (the generated functions take and return segments). Every librados/librbd function
 * returns a negative errno itself: no errno capture. No upcalls: completions are collected with
 * {@code rbd_set_image_notification} + {@code rbd_poll_io_events}.
 *
 * <p>The libraries are loaded on first use by {@link #load()}; if {@code librbd.so.1} is absent, that throws one
 * {@link IllegalStateException} line saying which package to install.
 */
public final class RbdLibrary {
    public static final String LIBRBD = "librbd.so.1";
    public static final String LIBRADOS = "librados.so.2";

    private static volatile SymbolLookup lookup;

    private RbdLibrary() {}

    /** Loads librbd and librados (once); throws a one-line {@link IllegalStateException} if they are missing. */
    public static SymbolLookup load() {
        SymbolLookup l = lookup;
        if (l != null) {
            return l;
        }
        synchronized (RbdLibrary.class) {
            if (lookup == null) {
                try {
                    lookup = SymbolLookup.libraryLookup(LIBRBD, Arena.global())
                            .or(SymbolLookup.libraryLookup(LIBRADOS, Arena.global()));
                } catch (IllegalArgumentException e) {
                    throw new IllegalStateException(LIBRBD + " not found: install Ceph's client libraries"
                            + " (Debian: apt-get install librbd1)");
                }
            }
            return lookup;
        }
    }

    private static void check(String call, String args, int r) {
        if (r < 0) {
            throw new ErrnoException(call, args, -r);
        }
    }

    private static MemorySegment cString(Arena a, String s) {
        return s == null ? MemorySegment.NULL : a.allocateFrom(s);
    }

    // ---- control path (generated functions) ----

    /** {@code rados_create(&cluster, id)}: id is the client name without "client." (null = "admin"). */
    public static long radosCreate(String id) {
        load();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check("rados_create", String.valueOf(id), Rbd.rados_create(out, cString(a, id)));
            return out.get(JAVA_LONG, 0);
        }
    }

    /** {@code rados_conf_read_file}: null path = the default search ($CEPH_CONF, /etc/ceph/ceph.conf, ...). */
    public static void confReadFile(long cluster, String path) {
        try (Arena a = Arena.ofConfined()) {
            check("rados_conf_read_file", String.valueOf(path),
                    Rbd.rados_conf_read_file(MemorySegment.ofAddress(cluster), cString(a, path)));
        }
    }

    public static void confSet(long cluster, String option, String value) {
        try (Arena a = Arena.ofConfined()) {
            check("rados_conf_set", option + "=" + value,
                    Rbd.rados_conf_set(MemorySegment.ofAddress(cluster), a.allocateFrom(option), a.allocateFrom(value)));
        }
    }

    /** {@code rados_connect}: blocks up to {@code client_mount_timeout}. */
    public static void connect(long cluster) {
        check("rados_connect", "", Rbd.rados_connect(MemorySegment.ofAddress(cluster)));
    }

    public static void shutdown(long cluster) {
        Rbd.rados_shutdown(MemorySegment.ofAddress(cluster));
    }

    public static long ioctxCreate(long cluster, String pool) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check("rados_ioctx_create", pool,
                    Rbd.rados_ioctx_create(MemorySegment.ofAddress(cluster), a.allocateFrom(pool), out));
            return out.get(JAVA_LONG, 0);
        }
    }

    public static void ioctxDestroy(long ioctx) {
        Rbd.rados_ioctx_destroy(MemorySegment.ofAddress(ioctx));
    }

    /** {@code rbd_open} or {@code rbd_open_read_only} of {@code name} at {@code snapshot} (null = the head). */
    public static long open(long ioctx, String name, String snapshot, boolean readOnly) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            MemorySegment io = MemorySegment.ofAddress(ioctx);
            int r = readOnly
                    ? Rbd.rbd_open_read_only(io, a.allocateFrom(name), out, cString(a, snapshot))
                    : Rbd.rbd_open(io, a.allocateFrom(name), out, cString(a, snapshot));
            check(readOnly ? "rbd_open_read_only" : "rbd_open", name + (snapshot == null ? "" : "@" + snapshot), r);
            return out.get(JAVA_LONG, 0);
        }
    }

    public static void close(long image) {
        Rbd.rbd_close(MemorySegment.ofAddress(image));
    }

    /** {@code rbd_get_size}: the image's (or the open snapshot's) size in bytes. */
    public static long size(long image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_LONG);
            check("rbd_get_size", "", Rbd.rbd_get_size(MemorySegment.ofAddress(image), out));
            return out.get(JAVA_LONG, 0);
        }
    }

    /** Makes librbd write to eventfd {@code fd} whenever an aio completion is ready for {@link #pollIoEvents}. */
    public static void setImageNotification(long image, int fd) {
        check("rbd_set_image_notification", "fd=" + fd,
                Rbd.rbd_set_image_notification(MemorySegment.ofAddress(image), fd, Rbd.EVENT_TYPE_EVENTFD()));
    }

    // ---- datapath (hand-written: long addresses, no wrappers) ----

    private static final class Aio {
        static final Linker LINKER = Linker.nativeLinker();
        static final MethodHandle CREATE = handle("rbd_aio_create_completion",
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        static final MethodHandle READV = handle("rbd_aio_readv",
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG));
        static final MethodHandle WRITEV = handle("rbd_aio_writev",
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG));
        static final MethodHandle FLUSH = handle("rbd_aio_flush",
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        static final MethodHandle DISCARD = handle("rbd_aio_discard",
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        static final MethodHandle WRITE_ZEROES = handle("rbd_aio_write_zeroes",
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT));
        static final MethodHandle RETURN_VALUE = handle("rbd_aio_get_return_value",
                FunctionDescriptor.of(JAVA_LONG, JAVA_LONG));
        static final MethodHandle ARG = handle("rbd_aio_get_arg", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG));
        static final MethodHandle RELEASE = handle("rbd_aio_release", FunctionDescriptor.ofVoid(JAVA_LONG));
        static final MethodHandle POLL = handle("rbd_poll_io_events",
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));

        static MethodHandle handle(String name, FunctionDescriptor d) {
            return LINKER.downcallHandle(load().findOrThrow(name), d);
        }
    }

    private static RuntimeException unexpected(Throwable t) {
        if (t instanceof Error e) {
            throw e;
        }
        return t instanceof RuntimeException r ? r : new IllegalStateException(t);
    }

    /**
     * {@code rbd_aio_create_completion(arg, NULL, out)} without a callback: the completion is reaped by
     * {@link #pollIoEvents}. Writes the completion's address to native memory at {@code outAddress}; returns 0 or
     * a negative errno.
     */
    public static int aioCreateCompletion(long arg, long outAddress) {
        try {
            return (int) Aio.CREATE.invokeExact(arg, 0L, outAddress);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code rbd_aio_readv}: {@code iov} is the address of {@code iovcnt} {@code struct iovec}s, kept until completion. */
    public static int aioReadv(long image, long iov, int iovcnt, long offset, long completion) {
        try {
            return (int) Aio.READV.invokeExact(image, iov, iovcnt, offset, completion);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code rbd_aio_writev}: the iovec array is read during the call. */
    public static int aioWritev(long image, long iov, int iovcnt, long offset, long completion) {
        try {
            return (int) Aio.WRITEV.invokeExact(image, iov, iovcnt, offset, completion);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int aioFlush(long image, long completion) {
        try {
            return (int) Aio.FLUSH.invokeExact(image, completion);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int aioDiscard(long image, long offset, long length, long completion) {
        try {
            return (int) Aio.DISCARD.invokeExact(image, offset, length, completion);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int aioWriteZeroes(long image, long offset, long length, long completion) {
        try {
            return (int) Aio.WRITE_ZEROES.invokeExact(image, offset, length, completion, 0, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code rbd_aio_get_return_value}: bytes transferred, 0, or a negative errno. */
    public static long aioReturnValue(long completion) {
        try {
            return (long) Aio.RETURN_VALUE.invokeExact(completion);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code rbd_aio_get_arg}: the {@code arg} the completion was created with. */
    public static long aioArg(long completion) {
        try {
            return (long) Aio.ARG.invokeExact(completion);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static void aioRelease(long completion) {
        try {
            Aio.RELEASE.invokeExact(completion);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code rbd_poll_io_events}: writes up to {@code max} completion addresses at {@code out}; returns how many. */
    public static int pollIoEvents(long image, long out, int max) {
        try {
            return (int) Aio.POLL.invokeExact(image, out, max);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }
}
