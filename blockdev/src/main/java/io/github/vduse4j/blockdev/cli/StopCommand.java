package io.github.vduse4j.blockdev.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/** {@code vduse4j stop NAME}: stops a running export cleanly (as SIGTERM) and waits until it is gone. */
@Command(name = "stop", mixinStandardHelpOptions = true, description = "Stop a running export and wait until it is gone.")
final class StopCommand implements Callable<Integer> {
    @Mixin
    RunDirOption run;

    @Parameters(index = "0", paramLabel = "NAME", description = "the export")
    String name;

    @Override
    public Integer call() throws Exception {
        Path dir = run.exportDir(name);
        run.command(name, Map.of("command", "stop"));
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (Files.exists(dir)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("export '" + name + "' acknowledged stop but is still there after 60 s");
            }
            Thread.sleep(50);
        }
        System.out.println(name + ": stopped");
        return 0;
    }
}
