package io.github.vduse4j.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.io.File;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The per-request calls that succeed allocate nothing when C1 is the only compiler, as in the TCG guest
 * (scripts/vm/guest-jvm-opts). C2's escape analysis hides a per-call allocation that C1 keeps (the JDK's errno
 * capture slices its segment on every call), so {@link HotPathAllocationTest} alone does not see it; this test runs
 * the calls in a JVM started with {@code -XX:TieredStopAtLevel=1} (Libc.downcallRepeatedForErrno, docs/benchmarks.md
 * "No GC during I/O").
 */
class HotPathAllocationUnderC1Test {
    static final int ROUNDS = HotPathAllocationTest.ROUNDS;

    @Test
    void successfulHotPathCallsDoNotAllocateUnderC1(@TempDir Path dir) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String classPath = location(HotPathAllocationUnderC1Test.class) + File.pathSeparator + location(Libc.class);
        Path out = dir.resolve("probe.out");
        Process probe = new ProcessBuilder(java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "--enable-native-access=ALL-UNNAMED", "-cp", classPath, Probe.class.getName())
                .redirectErrorStream(true).redirectOutput(out.toFile()).start();
        if (!probe.waitFor(120, TimeUnit.SECONDS)) {
            probe.destroyForcibly();
            fail("the C1 probe did not finish in 120 s:\n" + Files.readString(out));
        }
        String output = Files.readString(out).strip();
        assertEquals(0, probe.exitValue(), output);
        String last = output.lines().reduce((a, b) -> b).orElse("");
        assumeFalse(last.equals(Probe.UNSUPPORTED), "this JVM does not count thread allocation");
        long best = Long.parseLong(last);
        assertTrue(best < ROUNDS / 10, best + " bytes allocated in " + ROUNDS + " rounds at best under C1:\n" + output);
    }

    private static String location(Class<?> c) throws Exception {
        return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }

    /** Runs in the C1-only JVM; prints the fewest bytes a window of rounds allocated. */
    static final class Probe {
        static final String UNSUPPORTED = "thread allocation counting unsupported";

        public static void main(String[] args) {
            com.sun.management.ThreadMXBean threads =
                    (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
            if (!threads.isThreadAllocatedMemorySupported() || !threads.isThreadAllocatedMemoryEnabled()) {
                System.out.println(UNSUPPORTED);
                return;
            }
            long expectedSum = ROUNDS * (512L + 512 + 0 + 1 + 3 + 0);
            System.out.println(HotPathAllocationTest.fewestBytesAllocated(Probe::rounds, expectedSum));
        }

        /** What a queue thread issues per request and per batch, all succeeding. */
        static long rounds(CallState st, int memfd, int efd, MemorySegment buf, MemorySegment count, Poll poll) {
            long sum = 0;
            for (int i = 0; i < ROUNDS; i++) {
                sum += FileIo.pwriteRaw(st, memfd, buf, 512, 512, (i & 255) * 4096L); // 512
                sum += FileIo.preadRaw(st, memfd, buf, 1024, 512, (i & 255) * 4096L); // 512
                sum += EventFd.signalRaw(st, efd, 3);                                  // 0
                sum += poll.pollRaw(st, 0);                                            // 1
                sum += EventFd.consumeRaw(st, efd);                                    // 3
                sum += Ioctl.ioctlRepeatableRaw(st, memfd, Ioctl.FIONREAD, count);     // 0
            }
            return sum;
        }
    }
}
