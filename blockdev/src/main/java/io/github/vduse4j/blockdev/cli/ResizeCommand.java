package io.github.vduse4j.blockdev.cli;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/** {@code vduse4j resize NAME [SIZE]}: sets a null/memory export's size, or re-reads a file export's size. */
@Command(name = "resize", mixinStandardHelpOptions = true,
        description = "Resize a running export: SIZE for --null/--memory; without SIZE a --file export re-reads its"
                + " file's size (as SIGHUP does).")
final class ResizeCommand implements Callable<Integer> {
    @Mixin
    RunDirOption run;

    @Parameters(index = "0", paramLabel = "NAME", description = "the export")
    String name;

    @Parameters(index = "1", arity = "0..1", paramLabel = "SIZE", converter = SizeParser.class,
            description = "new size, e.g. 2G")
    Long size;

    @Override
    public Integer call() throws Exception {
        Map<String, Object> req = new LinkedHashMap<>();
        req.put("command", "resize");
        if (size != null) {
            req.put("size", size);
        }
        Map<String, Object> reply = run.command(name, req);
        System.out.println(name + ": " + reply.get("capacity") + " bytes");
        return 0;
    }
}
