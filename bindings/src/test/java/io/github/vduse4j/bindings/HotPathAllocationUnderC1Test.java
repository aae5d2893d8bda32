package io.github.vduse4j.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

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
    void successfulHotPathCallsDoNotAllocateUnderC1() throws Exception {
        String java = ProcessHandle.current().info().command().orElseThrow();
        String classPath = location(HotPathAllocationUnderC1Test.class) + File.pathSeparator + location(Libc.class);
        Process probe = new ProcessBuilder(java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "--enable-native-access=ALL-UNNAMED", "-cp", classPath, Probe.class.getName())
                .redirectErrorStream(true).start();
        String output = new String(probe.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertTrue(probe.waitFor(120, TimeUnit.SECONDS), "the C1 probe did not finish");
        assertEquals(0, probe.exitValue(), output);
        List<String> lines = output.lines().toList();
        long best = Long.parseLong(lines.getLast());
        assertTrue(best < ROUNDS / 10, best + " bytes allocated in " + ROUNDS + " rounds at best under C1:\n" + output);
    }

    private static String location(Class<?> c) throws Exception {
        return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }

    /** Runs in the C1-only JVM; prints the fewest bytes a window of rounds allocated. */
    static final class Probe {
        public static void main(String[] args) {
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
