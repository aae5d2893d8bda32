package io.github.vduse4j.blockdev.cli;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point of the {@code vduse4j} command line.
 *
 * <p>picocli builds a command's model from its annotations by reflection when the command is added (a dynamic proxy per
 * annotation; picocli's own classes are Java 5 class files, which the AOT cache skips), about two thirds of a CLI
 * start. So only the command named first is added ({@link #COMMANDS}); help, {@code --version}, a missing or
 * unknown command get all of them (the usage lists them all).
 */
@Command(name = "vduse4j", mixinStandardHelpOptions = true, version = "vduse4j 0.1.0",
        description = "Serve virtio-blk devices from userspace over VDUSE or vhost-user.")
public final class Main implements Runnable {

    /** The subcommands by name, in the order the usage lists them (each name is its class's {@code @Command} name). */
    static final Map<String, Supplier<Object>> COMMANDS = new LinkedHashMap<>();

    static {
        COMMANDS.put("export", ExportCommand::new);
        COMMANDS.put("list", ListCommand::new);
        COMMANDS.put("stats", StatsCommand::new);
        COMMANDS.put("resize", ResizeCommand::new);
        COMMANDS.put("stop", StopCommand::new);
        COMMANDS.put("bench", BenchCommand::new);
        COMMANDS.put("destroy", DestroyCommand::new);
    }

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command: use 'vduse4j export ...'");
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs the command line and returns the exit code. */
    public static int execute(String... args) {
        return execute(new PrintWriter(System.err, true), args);
    }

    /** Runs the command line with errors going to {@code err}; returns the exit code (tests call this). */
    public static int execute(PrintWriter err, String... args) {
        CommandLine cli = commandLine(args);
        cli.setErr(err);
        cli.setParameterExceptionHandler((ex, a) -> {
            ex.getCommandLine().getErr().println("vduse4j: " + ex.getMessage()
                    + " (see: " + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help)");
            return 2;
        });
        cli.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            cmd.getErr().println("vduse4j: " + oneLine(ex));
            return 1;
        });
        try {
            return cli.execute(args);
        } catch (OutOfMemoryError e) { // picocli hands Errors on; a heap or direct-memory limit at start-up
            err.println("vduse4j: out of memory: " + oneLine(e) + "; use fewer or smaller queues (--queues,"
                    + " --queue-size), or give the JVM more (JAVA_OPTS=-Xmx...)");
            return 1;
        }
    }

    /** The command line with the subcommand {@code args} name first, or with all of them when it names none. */
    static CommandLine commandLine(String... args) {
        CommandLine cli = new CommandLine(new Main());
        Supplier<Object> named = args.length > 0 ? COMMANDS.get(args[0]) : null;
        if (named != null) {
            cli.addSubcommand(args[0], named.get());
        } else {
            COMMANDS.forEach((name, command) -> cli.addSubcommand(name, command.get()));
        }
        return cli;
    }

    static String oneLine(Throwable t) {
        String m = t.getMessage();
        return (m == null ? t.toString() : m).replace('\n', ' ');
    }
}
