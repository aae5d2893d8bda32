/**
 * virtio-blk over the vduse4j transports: the library API ({@link io.github.vduse4j.blockdev.BlockExport}, the
 * {@link io.github.vduse4j.blockdev.backend.BlockBackend} SPI and the backends) and the {@code vduse4j} command line.
 * Only the API packages are exported; the device model, the bench frontend and the CLI are internal.
 */
@SuppressWarnings("requires-automatic") // HdrHistogram 2.2.2 has no module descriptor or Automatic-Module-Name
module io.github.vduse4j.blockdev {
    requires transitive io.github.vduse4j.engine;
    requires io.github.vduse4j.bindings;
    requires info.picocli;
    requires HdrHistogram;
    requires jdk.unsupported; // sun.misc.Signal: SIGTERM/SIGHUP (cli.ProcessSignals)

    exports io.github.vduse4j.blockdev;
    exports io.github.vduse4j.blockdev.backend;

    opens io.github.vduse4j.blockdev.cli to info.picocli; // picocli injects options by reflection
}
