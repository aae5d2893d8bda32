package io.github.vduse4j.blockdev.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs the {@code vduse4j} command line in-process and checks the one-line error contract of bad input. */
public final class CliRun {
    private CliRun() {}

    /** Exit code and what was printed on stderr (stripped). */
    public record Result(int code, String err) {}

    public static Result run(String... args) {
        StringWriter sw = new StringWriter();
        int code = Main.execute(new PrintWriter(sw, true), args);
        return new Result(code, sw.toString().strip());
    }

    /** Exit {@code code}, exactly one line starting with "vduse4j: ", containing every fragment. */
    public static void assertOneLine(Result r, int code, String... fragments) {
        assertEquals(code, r.code(), r.err());
        assertEquals(1, r.err().lines().count(), "one line: " + r.err());
        assertTrue(r.err().startsWith("vduse4j: "), r.err());
        for (String f : fragments) {
            assertTrue(r.err().contains(f), "'" + f + "' missing in: " + r.err());
        }
    }
}
