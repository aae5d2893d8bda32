package io.github.vduse4j.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class ErrnoTest {
    @Test
    void namesAndDescriptions() {
        assertEquals("ENOENT", Errno.name(2));
        assertEquals("ENOENT", Errno.name(-2));
        assertEquals("No such file or directory", Errno.description(Errno.ENOENT));
        assertEquals("EAGAIN", Errno.name(Errno.EAGAIN));
        assertEquals("EOPNOTSUPP", Errno.name(95));
        assertEquals("ENOTSUPP", Errno.name(Errno.ENOTSUPP));
        assertEquals("errno 600", Errno.name(600));
        assertEquals("Unknown error 600", Errno.description(600));
    }

    @Test
    void exceptionNamesCallArgumentsAndErrno() {
        ErrnoException e = new ErrnoException("ioctl", "fd=5, request=VDUSE_CREATE_DEV 0x41508102", -Errno.EEXIST);
        assertEquals("ioctl(fd=5, request=VDUSE_CREATE_DEV 0x41508102) failed: EEXIST (File exists)", e.getMessage());
        assertEquals("ioctl", e.call());
        assertEquals("fd=5, request=VDUSE_CREATE_DEV 0x41508102", e.arguments());
        assertEquals(Errno.EEXIST, e.errno());
        assertEquals("EEXIST", e.errnoName());
    }
}
