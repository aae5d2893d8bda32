package io.github.vduse4j.blockdev.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vduse4j.engine.control.RunDirectory;
import io.github.vduse4j.engine.control.StatsFile;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vduse4j list} on an export that has claimed its name and made its stats file but serves no control socket
 * yet: "starting" while the stats file's process lives and the file is not marked final (and its name cannot be
 * taken), "dead" once it is.
 */
class ListCommandTest {
    @TempDir
    Path root;

    @Test
    void anExportWithoutItsControlSocketYetIsStartingNotDead() throws Exception {
        Path dir = RunDirectory.claim(root, "early");
        StatsFile stats = StatsFile.create(dir.resolve(RunDirectory.STATS), "early", 1);
        assertEquals("starting", ListCommand.describe(dir).get("state"));
        IOException taken = assertThrows(IOException.class, () -> RunDirectory.claim(root, "early"));
        assertTrue(taken.getMessage().contains("is starting"), taken.getMessage());
        stats.close(); // marks the file final, as a stopping export does
        String state = (String) ListCommand.describe(dir).get("state");
        assertTrue(state.startsWith("dead (no control socket"), state);
    }
}
