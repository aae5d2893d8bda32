/**
 * Transports and the queue machinery: VDUSE ({@code engine.vduse}), vhost-user ({@code engine.vhostuser}), queue
 * pollers and the IOTLB map cache ({@code engine}).
 */
module io.github.vduse4j.engine {
    requires transitive io.github.vduse4j.ring;
    requires io.github.vduse4j.bindings;

    exports io.github.vduse4j.engine;
    exports io.github.vduse4j.engine.vduse;
    exports io.github.vduse4j.engine.vhostuser;
}
