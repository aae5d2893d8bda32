package io.github.vduse4j.blockdev.cli;

import sun.misc.Signal;

/**
 * SIGINT/SIGTERM/SIGHUP handling for a long-running command. {@code sun.misc.Signal} (module jdk.unsupported,
 * no flags needed) replaces the JVM's default of exiting with 128+signal, so a stopped export can clean up
 * and exit 0. The only class that touches it.
 */
final class ProcessSignals {
    private ProcessSignals() {}

    /** Runs {@code onStop} on SIGINT and SIGTERM, {@code onHangup} on SIGHUP (on the JVM's signal thread). */
    static void install(Runnable onStop, Runnable onHangup) {
        Signal.handle(new Signal("INT"), s -> onStop.run());
        Signal.handle(new Signal("TERM"), s -> onStop.run());
        Signal.handle(new Signal("HUP"), s -> onHangup.run());
    }

    /** As {@link #install(Runnable, Runnable)}, plus {@code onUpgrade} on SIGUSR1 (VDUSE upgrade stop). */
    static void install(Runnable onStop, Runnable onHangup, Runnable onUpgrade) {
        install(onStop, onHangup);
        Signal.handle(new Signal("USR1"), s -> onUpgrade.run());
    }
}
