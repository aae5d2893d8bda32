package io.github.vduse4j.blockdev.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@link Main} adds only the subcommand named first (a CLI start then builds one command's model, not seven), and all
 * of them when none is named: the usage still lists every command, and a misspelt one is still refused in one line.
 */
class MainTest {

    @Test
    void everyCommandIsFiledUnderItsOwnName() {
        for (var e : Main.COMMANDS.entrySet()) {
            Object command = e.getValue().get();
            assertEquals(e.getKey(), command.getClass().getAnnotation(CommandLine.Command.class).name(),
                    command.getClass().getName());
        }
        assertEquals(7, Main.COMMANDS.size());
    }

    @Test
    void aNamedCommandIsTheOnlyOneBuilt() {
        for (String name : Main.COMMANDS.keySet()) {
            assertEquals(Set.of(name), Main.commandLine(name, "--help").getSubcommands().keySet(), name);
        }
    }

    @Test
    void withoutACommandTheUsageListsThemAll() {
        for (String[] args : List.of(new String[0], new String[] {"--help"}, new String[] {"--version"},
                new String[] {"expor", "--null", "1G"})) {
            CommandLine cli = Main.commandLine(args);
            assertEquals(List.copyOf(Main.COMMANDS.keySet()), List.copyOf(cli.getSubcommands().keySet()));
            String usage = cli.getUsageMessage();
            for (String name : Main.COMMANDS.keySet()) {
                assertTrue(usage.contains("  " + name + " "), name + " missing in: " + usage);
            }
        }
    }

    @Test
    void aMisspeltCommandIsRefusedInOneLine() {
        CliRun.assertOneLine(CliRun.run("expor", "--null", "1G"), 2, "'expor'", "vduse4j --help");
    }

    @Test
    void aNamedCommandStillParsesAndRefusesAsBefore() {
        CliRun.assertOneLine(CliRun.run("stats", "--watch", "99999", "x"), 2, "--watch must be 0..3600");
        CliRun.assertOneLine(CliRun.run("resize"), 2, "vduse4j resize --help");
    }
}
