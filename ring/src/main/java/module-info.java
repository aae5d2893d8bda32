/**
 * Split and packed virtqueues over {@code MemorySegment}s: the device side ({@code ring}) and the driver side
 * ({@code ring.driver}). Pure Java: it does not read the bindings module (the
 * virtio constants it needs are spec-stable and defined here).
 */
module io.github.vduse4j.ring {
    exports io.github.vduse4j.ring;
    exports io.github.vduse4j.ring.driver;
}
