package io.github.vduse4j.bindings;

/**
 * The one exception for a failed libc call. Its message names the call, the arguments that matter
 * and the errno, e.g. {@code open(path="/x", flags=0x80002) failed: ENOENT (No such file or directory)}.
 */
public final class ErrnoException extends RuntimeException {
    private final String call;
    private final String arguments;
    private final int errno;

    /**
     * @param call      the libc function or system call, e.g. {@code "ioctl"}
     * @param arguments the arguments that matter, e.g. {@code "fd=5, request=VDUSE_CREATE_DEV 0x41508102"}
     * @param errno     the error number; a {@code -errno} from a {@code ...Raw} method is accepted too
     */
    public ErrnoException(String call, String arguments, int errno) {
        super(call + "(" + arguments + ") failed: " + Errno.name(errno) + " (" + Errno.description(errno) + ")");
        this.call = call;
        this.arguments = arguments;
        this.errno = Math.abs(errno);
    }

    /** The failed call's name, e.g. {@code "pread"}. */
    public String call() {
        return call;
    }

    /** The arguments as shown in the message. */
    public String arguments() {
        return arguments;
    }

    /** The (positive) error number. */
    public int errno() {
        return errno;
    }

    /** The error's symbolic name, e.g. {@code "EBADF"}. */
    public String errnoName() {
        return Errno.name(errno);
    }
}
