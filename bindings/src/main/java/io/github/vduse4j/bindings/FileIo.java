package io.github.vduse4j.bindings;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.ref.Reference;

/**
 * File descriptors and file I/O: {@code open}, {@code close}, {@code read}, {@code write},
 * {@code pread}, {@code pwrite}, {@code ftruncate}, {@code fallocate}, {@code fdatasync},
 * {@code memfd_create}, memfd seals ({@code fcntl F_ADD_SEALS / F_GET_SEALS}), the file behind an fd
 * ({@code fstat}: device and inode).
 *
 * <p>Buffers are native segments addressed as {@code (segment, offset, length)}: no slice is made.
 * The throwing methods retry {@code EINTR} on read/write; the {@code ...Raw} methods return
 * {@code -errno} and allocate nothing. The caller keeps the buffer's memory mapped for the call.
 */
public final class FileIo {
    private FileIo() {}

    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 0x1;
    public static final int O_RDWR = 0x2;
    public static final int O_CREAT = 0x40;
    public static final int O_EXCL = 0x80;
    public static final int O_NOCTTY = 0x100;
    public static final int O_TRUNC = 0x200;
    public static final int O_APPEND = 0x400;
    public static final int O_NONBLOCK = 0x800;
    public static final int O_DSYNC = 0x1000;
    public static final int O_DIRECT = 0x4000;
    public static final int O_DIRECTORY = 0x10000;
    public static final int O_NOFOLLOW = 0x20000;
    public static final int O_NOATIME = 0x40000;
    public static final int O_CLOEXEC = 0x80000;
    public static final int O_SYNC = 0x101000;
    public static final int O_PATH = 0x200000;
    public static final int O_TMPFILE = 0x410000;

    public static final int MFD_CLOEXEC = 0x1;
    public static final int MFD_ALLOW_SEALING = 0x2;
    public static final int MFD_HUGETLB = 0x4;

    public static final int FALLOC_FL_KEEP_SIZE = 0x1;
    public static final int FALLOC_FL_PUNCH_HOLE = 0x2;
    public static final int FALLOC_FL_COLLAPSE_RANGE = 0x8;
    public static final int FALLOC_FL_ZERO_RANGE = 0x10;
    public static final int FALLOC_FL_INSERT_RANGE = 0x20;
    public static final int FALLOC_FL_UNSHARE_RANGE = 0x40;

    /** fcntl commands and seals of memfd_create(2) files (tmpfs; hugetlbfs since Linux 4.16). */
    public static final int F_ADD_SEALS = 1033;
    public static final int F_GET_SEALS = 1034;
    public static final int F_SEAL_SEAL = 0x1;
    public static final int F_SEAL_SHRINK = 0x2;
    public static final int F_SEAL_GROW = 0x4;
    public static final int F_SEAL_WRITE = 0x8;
    public static final int F_SEAL_FUTURE_WRITE = 0x10;

    private static final MethodHandle OPEN = Libc.downcall("open",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), Libc.variadicFrom(2));
    private static final MethodHandle CLOSE = Libc.downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    /** {@code ssize_t read/write(int, void *, size_t)}. */
    private static final FunctionDescriptor TRANSFER = FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG);
    /** {@code ssize_t pread/pwrite(int, void *, size_t, off_t)}. */
    private static final FunctionDescriptor POSITIONED = TRANSFER.appendArgumentLayouts(JAVA_LONG);
    /*
     * Captured only when they fail (no allocation under C1; a failed transfer moved nothing, so its repeat is what a
     * caller would do): Libc.downcallRepeatedForErrno.
     */
    private static final MethodHandle READ = Libc.downcallRepeatedForErrno("read", TRANSFER);
    private static final MethodHandle WRITE = Libc.downcallRepeatedForErrno("write", TRANSFER);
    private static final MethodHandle PREAD = Libc.downcallRepeatedForErrno("pread", POSITIONED);
    private static final MethodHandle PWRITE = Libc.downcallRepeatedForErrno("pwrite", POSITIONED);
    private static final MethodHandle FTRUNCATE = Libc.downcall("ftruncate",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle FALLOCATE = Libc.downcall("fallocate",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle FDATASYNC = Libc.downcall("fdatasync", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle MEMFD_CREATE = Libc.downcall("memfd_create",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), Libc.CRITICAL);
    private static final MethodHandle FSTAT = Libc.downcall("fstat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    /** {@code struct stat}: size and the offsets of {@code st_dev} and {@code st_ino} (checked against gcc). */
    public static final long STAT_SIZE = 144;
    public static final long STAT_ST_DEV = 0;
    public static final long STAT_ST_INO = 8;
    private static final MethodHandle FCNTL_INT = Libc.downcall("fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), Libc.variadicFrom(2));

    // ---- throwing API ----

    /** {@code open(path, flags)}; returns the new fd. Add {@link #O_CLOEXEC} unless the fd must survive exec. */
    public static int open(String path, int flags) {
        return open(path, flags, 0);
    }

    /** {@code open(path, flags, mode)}; returns the new fd ({@code mode} matters with {@link #O_CREAT}). */
    public static int open(String path, int flags, int mode) {
        CallState st = CallState.current();
        int fd;
        try (Arena arena = Arena.ofConfined()) {
            fd = (int) OPEN.invokeExact(st.capture, arena.allocateFrom(path), flags, mode);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (fd < 0) {
            throw new ErrnoException("open", "path=\"" + path + "\", flags=" + Libc.hex(flags)
                    + (mode != 0 ? ", mode=0" + Integer.toOctalString(mode) : ""), st.errno());
        }
        return fd;
    }

    /** {@code close(fd)}. Never retried: after {@code EINTR} the fd is closed anyway on Linux. */
    public static void close(int fd) {
        CallState st = CallState.current();
        int r;
        try {
            r = (int) CLOSE.invokeExact(st.capture, fd);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (r < 0) {
            throw new ErrnoException("close", "fd=" + fd, st.errno());
        }
    }

    /** {@code read} into {@code buf[offset, offset + length)}; returns the bytes read (0 at end of file). */
    public static long read(int fd, MemorySegment buf, long offset, long length) {
        CallState st = CallState.current();
        long r;
        do {
            r = readRaw(st, fd, buf, offset, length);
        } while (r == -Errno.EINTR);
        if (r < 0) {
            throw new ErrnoException("read", "fd=" + fd + ", length=" + length, (int) r);
        }
        return r;
    }

    /** {@code write} from {@code buf[offset, offset + length)}; returns the bytes written. */
    public static long write(int fd, MemorySegment buf, long offset, long length) {
        CallState st = CallState.current();
        long r;
        do {
            r = writeRaw(st, fd, buf, offset, length);
        } while (r == -Errno.EINTR);
        if (r < 0) {
            throw new ErrnoException("write", "fd=" + fd + ", length=" + length, (int) r);
        }
        return r;
    }

    /** {@code pread} at file {@code position} into {@code buf[offset, offset + length)}; returns the bytes read. */
    public static long pread(int fd, MemorySegment buf, long offset, long length, long position) {
        CallState st = CallState.current();
        long r;
        do {
            r = preadRaw(st, fd, buf, offset, length, position);
        } while (r == -Errno.EINTR);
        if (r < 0) {
            throw new ErrnoException("pread", "fd=" + fd + ", length=" + length + ", position=" + position, (int) r);
        }
        return r;
    }

    /** {@code pwrite} at file {@code position} from {@code buf[offset, offset + length)}; returns the bytes written. */
    public static long pwrite(int fd, MemorySegment buf, long offset, long length, long position) {
        CallState st = CallState.current();
        long r;
        do {
            r = pwriteRaw(st, fd, buf, offset, length, position);
        } while (r == -Errno.EINTR);
        if (r < 0) {
            throw new ErrnoException("pwrite", "fd=" + fd + ", length=" + length + ", position=" + position, (int) r);
        }
        return r;
    }

    /** {@code ftruncate(fd, length)}. */
    public static void ftruncate(int fd, long length) {
        CallState st = CallState.current();
        int r;
        try {
            r = (int) FTRUNCATE.invokeExact(st.capture, fd, length);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (r < 0) {
            throw new ErrnoException("ftruncate", "fd=" + fd + ", length=" + length, st.errno());
        }
    }

    /** {@code fallocate(fd, mode, offset, length)}; {@code mode} is 0 or {@code FALLOC_FL_*} bits. */
    public static void fallocate(int fd, int mode, long offset, long length) {
        int r = fallocateRaw(CallState.current(), fd, mode, offset, length);
        if (r < 0) {
            throw new ErrnoException("fallocate", "fd=" + fd + ", mode=" + Libc.hex(mode)
                    + ", offset=" + offset + ", length=" + length, r);
        }
    }

    /** {@code fdatasync(fd)}. */
    public static void fdatasync(int fd) {
        int r = fdatasyncRaw(CallState.current(), fd);
        if (r < 0) {
            throw new ErrnoException("fdatasync", "fd=" + fd, r);
        }
    }

    /** The file an fd refers to, as {@code fstat} names it: two fds with equal ids share one inode (its pages). */
    public record FileId(long device, long inode) {}

    /** {@code fstat(fd)}: the device and inode of the file behind {@code fd}. */
    public static FileId fileId(int fd) {
        CallState st = CallState.current();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stat = arena.allocate(STAT_SIZE, 8);
            int r;
            try {
                r = (int) FSTAT.invokeExact(st.capture, fd, stat);
            } catch (Throwable t) {
                throw Libc.unexpected(t);
            }
            if (r < 0) {
                throw new ErrnoException("fstat", "fd=" + fd, st.errno());
            }
            return new FileId(stat.get(JAVA_LONG, STAT_ST_DEV), stat.get(JAVA_LONG, STAT_ST_INO));
        }
    }

    /** {@code memfd_create(name, flags)}; returns the new fd. {@code flags}: {@code MFD_*}. */
    public static int memfdCreate(String name, int flags) {
        CallState st = CallState.current();
        int fd;
        try (Arena arena = Arena.ofConfined()) {
            fd = (int) MEMFD_CREATE.invokeExact(st.capture, arena.allocateFrom(name), flags);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (fd < 0) {
            throw new ErrnoException("memfd_create", "name=\"" + name + "\", flags=" + Libc.hex(flags), st.errno());
        }
        return fd;
    }

    /** {@code fcntl(fd, F_ADD_SEALS, seals)}: adds {@code F_SEAL_*} bits to a memfd made with MFD_ALLOW_SEALING. */
    public static void addSeals(int fd, int seals) {
        CallState st = CallState.current();
        int r;
        try {
            r = (int) FCNTL_INT.invokeExact(st.capture, fd, F_ADD_SEALS, seals);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (r < 0) {
            throw new ErrnoException("fcntl(F_ADD_SEALS)", "fd=" + fd + ", seals=" + Libc.hex(seals), st.errno());
        }
    }

    /** {@code fcntl(fd, F_GET_SEALS)}: the file's {@code F_SEAL_*} bits. */
    public static int seals(int fd) {
        CallState st = CallState.current();
        int r;
        try {
            r = (int) FCNTL_INT.invokeExact(st.capture, fd, F_GET_SEALS, 0);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        if (r < 0) {
            throw new ErrnoException("fcntl(F_GET_SEALS)", "fd=" + fd, st.errno());
        }
        return r;
    }

    // ---- hot-path API: -errno, no allocation ----

    /** {@code read} into {@code buf[offset, offset + length)}: bytes read, or {@code -errno}. */
    public static long readRaw(CallState st, int fd, MemorySegment buf, long offset, long length) {
        long r = readAddress(st, fd, Libc.address(buf, offset, length), length);
        Reference.reachabilityFence(buf);
        return r;
    }

    /** {@code write} from {@code buf[offset, offset + length)}: bytes written, or {@code -errno}. */
    public static long writeRaw(CallState st, int fd, MemorySegment buf, long offset, long length) {
        long r = writeAddress(st, fd, Libc.address(buf, offset, length), length);
        Reference.reachabilityFence(buf);
        return r;
    }

    /** {@code pread} at {@code position} into {@code buf[offset, offset + length)}: bytes read, or {@code -errno}. */
    public static long preadRaw(CallState st, int fd, MemorySegment buf, long offset, long length, long position) {
        long address = Libc.address(buf, offset, length);
        long r;
        try {
            r = (long) PREAD.invokeExact(st.capture, fd, address, length, position);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        Reference.reachabilityFence(buf);
        return r < 0 ? -st.errno() : r;
    }

    /** {@code pwrite} at {@code position} from {@code buf[offset, offset + length)}: bytes written, or {@code -errno}. */
    public static long pwriteRaw(CallState st, int fd, MemorySegment buf, long offset, long length, long position) {
        long address = Libc.address(buf, offset, length);
        long r;
        try {
            r = (long) PWRITE.invokeExact(st.capture, fd, address, length, position);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        Reference.reachabilityFence(buf);
        return r < 0 ? -st.errno() : r;
    }

    /** {@code fallocate}: 0, or {@code -errno}. */
    public static int fallocateRaw(CallState st, int fd, int mode, long offset, long length) {
        int r;
        try {
            r = (int) FALLOCATE.invokeExact(st.capture, fd, mode, offset, length);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        return r < 0 ? -st.errno() : r;
    }

    /** {@code fdatasync}: 0, or {@code -errno}. */
    public static int fdatasyncRaw(CallState st, int fd) {
        int r;
        try {
            r = (int) FDATASYNC.invokeExact(st.capture, fd);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        return r < 0 ? -st.errno() : r;
    }

    /** {@code read} into a raw address the caller has validated (used by {@link EventFd}). */
    static long readAddress(CallState st, int fd, long address, long length) {
        long r;
        try {
            r = (long) READ.invokeExact(st.capture, fd, address, length);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        return r < 0 ? -st.errno() : r;
    }

    /** {@code write} from a raw address the caller has validated (used by {@link EventFd}). */
    static long writeAddress(CallState st, int fd, long address, long length) {
        long r;
        try {
            r = (long) WRITE.invokeExact(st.capture, fd, address, length);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
        return r < 0 ? -st.errno() : r;
    }
}
