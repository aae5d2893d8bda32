package io.github.vduse4j.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The hand-written constants, struct offsets and errno table against gcc and glibc (src/test/c/libc_constants.c). */
class LibcConstantsTest {
    static final Path SOURCE = Path.of("src/test/c/libc_constants.c");
    static final List<Class<?>> CLASSES = List.of(FileIo.class, MemoryMap.class, EventFd.class, Poll.class,
            UnixSocket.class, Ioctl.class, Syscall.class, VhostIoctl.class);

    @TempDir
    Path dir;

    @Test
    void matchTheCHeaders() throws Exception {
        List<String> lines = runCProgram();
        Map<String, Long> layouts = Map.ofEntries(
                Map.entry("POLLFD_SIZE", Poll.POLLFD.byteSize()),
                Map.entry("MSGHDR_SIZE", UnixSocket.MSGHDR_SIZE), Map.entry("MSG_IOV", UnixSocket.MSG_IOV),
                Map.entry("MSG_IOVLEN", UnixSocket.MSG_IOVLEN), Map.entry("MSG_CONTROL", UnixSocket.MSG_CONTROL),
                Map.entry("MSG_CONTROLLEN", UnixSocket.MSG_CONTROLLEN), Map.entry("MSG_FLAGS", UnixSocket.MSG_FLAGS),
                Map.entry("IOVEC_SIZE", UnixSocket.IOVEC_SIZE), Map.entry("CMSGHDR_SIZE", UnixSocket.CMSGHDR_SIZE),
                Map.entry("CMSG_LEVEL", UnixSocket.CMSG_LEVEL), Map.entry("CMSG_TYPE", UnixSocket.CMSG_TYPE),
                Map.entry("CMSG_SPACE_1_FD", UnixSocket.cmsgSpace(1)), Map.entry("CMSG_SPACE_3_FDS", UnixSocket.cmsgSpace(3)),
                Map.entry("SOCKADDR_UN_SIZE", UnixSocket.SOCKADDR_UN_SIZE), Map.entry("SUN_PATH", UnixSocket.SUN_PATH),
                Map.entry("IO_81_7F", Ioctl.io(0x81, 0x7f)), Map.entry("IOR_81_00_8", Ioctl.ior(0x81, 0x00, 8)),
                Map.entry("IOW_81_02_88", Ioctl.iow(0x81, 0x02, 0x88)), Map.entry("IOWR_81_10_38", Ioctl.iowr(0x81, 0x10, 0x38)),
                Map.entry("CPU_SET_BYTES", Affinity.CPU_SET_BYTES));
        Map<String, Long> constants = publicConstants();
        int errnos = 0;
        for (String line : lines) {
            String[] f = line.split(" ", 4);
            switch (f[0]) {
                case "const" -> {
                    assertNotNull(constants.get(f[1]), "no Java constant " + f[1]);
                    assertEquals(Long.parseLong(f[2]), constants.get(f[1]), f[1]);
                }
                case "layout" -> {
                    assertNotNull(layouts.get(f[1]), "no Java layout value " + f[1]);
                    assertEquals(Long.parseLong(f[2]), layouts.get(f[1]), f[1]);
                }
                case "errno" -> {
                    int n = Integer.parseInt(f[1]);
                    assertEquals(f[2], Errno.name(n), "name of errno " + n);
                    assertEquals(f[3], Errno.description(n), "strerror of " + f[2]);
                    errnos++;
                }
                default -> throw new AssertionError("unexpected line " + line);
            }
        }
        assertTrue(errnos > 130, "the whole errno table was checked");
        for (Field field : Errno.class.getFields()) {
            if (field.getType() == int.class && !field.getName().equals("ENOTSUPP")) {
                assertEquals(field.getName(), Errno.name(field.getInt(null)), "Errno." + field.getName());
            }
        }
    }

    private List<String> runCProgram() throws IOException, InterruptedException {
        assumeTrue(Files.exists(SOURCE), "run from the bindings module directory");
        Path binary = dir.resolve("libc_constants");
        Process gcc;
        try {
            gcc = new ProcessBuilder("gcc", "-Wall", "-o", binary.toString(), SOURCE.toString())
                    .redirectErrorStream(true).start();
        } catch (IOException e) {
            assumeTrue(false, "gcc is not installed: " + e.getMessage());
            throw e;
        }
        String gccOutput = new String(gcc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(gcc.waitFor(60, TimeUnit.SECONDS) && gcc.exitValue() == 0, "gcc failed:\n" + gccOutput);
        Process run = new ProcessBuilder(binary.toString()).redirectErrorStream(true).start();
        String output = new String(run.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(run.waitFor(10, TimeUnit.SECONDS) && run.exitValue() == 0, output);
        return output.lines().toList();
    }

    private static Map<String, Long> publicConstants() throws IllegalAccessException {
        Map<String, Long> constants = new HashMap<>();
        for (Class<?> c : CLASSES) {
            for (Field field : c.getFields()) {
                int m = field.getModifiers();
                if (Modifier.isStatic(m) && Modifier.isFinal(m) && (field.getType() == int.class || field.getType() == long.class)) {
                    Long previous = constants.put(field.getName(), ((Number) field.get(null)).longValue());
                    assertTrue(previous == null, "duplicate constant " + field.getName());
                }
            }
        }
        return constants;
    }
}
