package io.github.vduse4j.blockdev.cli;

import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code vduse4j} command line. */
@Command(name = "vduse4j", mixinStandardHelpOptions = true, version = "vduse4j 0.1.0",
        description = "Serve virtio-blk devices from userspace over VDUSE or vhost-user.",
        subcommands = {ExportCommand.class, ListCommand.class, StatsCommand.class, ResizeCommand.class,
            StopCommand.class, BenchCommand.class, DestroyCommand.class})
public final class Main implements Runnable {

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
        CommandLine cli = new CommandLine(new Main());
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

    static String oneLine(Throwable t) {
        String m = t.getMessage();
        return (m == null ? t.toString() : m).replace('\n', ' ');
    }
}
