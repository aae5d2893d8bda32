package io.github.vduse4j.blockdev.cli;

import io.github.vduse4j.engine.vduse.VdpaBus;
import io.github.vduse4j.engine.vduse.VduseControl;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code vduse4j destroy --name NAME}: removes a device left behind by a process that was killed. */
@Command(name = "destroy", mixinStandardHelpOptions = true,
        description = "Detach and destroy a VDUSE device left behind (e.g. after kill -9).")
final class DestroyCommand implements java.util.concurrent.Callable<Integer> {

    @Option(names = "--name", required = true, description = "VDUSE device name")
    String name;

    @Override
    public Integer call() {
        VdpaBus.detach(name);
        try (VduseControl control = VduseControl.open()) {
            if (!control.destroyDevice(name)) {
                System.err.println("vduse4j: no VDUSE device named '" + name + "'");
                return 1;
            }
        }
        System.err.println("vduse4j: destroyed " + name);
        return 0;
    }
}
