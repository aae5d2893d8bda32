/**
 * Transports and the queue machinery: VDUSE ({@code engine.vduse}), vhost-user ({@code engine.vhostuser}), queue
 * pollers and the IOTLB map cache ({@code engine}), the driver side of vhost ({@code engine.frontend}), stats, control
 * socket and metrics ({@code engine.control}).
 */
module io.github.vduse4j.engine {
    requires transitive io.github.vduse4j.ring;
    requires io.github.vduse4j.bindings;
    requires org.jctools.core; // CompletionHandoff: MpscAtomicArrayQueue (no sun.misc.Unsafe)
    requires jdk.jfr;          // control.LifecycleEvent, control.SlowRequestEvent
    requires jdk.httpserver;   // control.MetricsEndpoint

    exports io.github.vduse4j.engine;
    exports io.github.vduse4j.engine.vduse;
    exports io.github.vduse4j.engine.vhostuser;
    exports io.github.vduse4j.engine.inflight;
    exports io.github.vduse4j.engine.frontend;
    exports io.github.vduse4j.engine.control;
}
