package io.github.vduse4j.engine.control;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;
import jdk.jfr.Timespan;

/**
 * JFR event: a request that took longer than the export's slow-request threshold from pop to completion. Emitted
 * by the poller only when such a request completes and a recording has the event enabled; otherwise the check is
 * one comparison and no object is made.
 */
@Name("vduse4j.SlowRequest")
@Label("Slow Request")
@Category({"vduse4j", "Datapath"})
@Description("A virtio-blk request slower than the slow-request threshold (pop to completion)")
@StackTrace(false)
public final class SlowRequestEvent extends Event {
    /** Asks JFR whether the event is on without making one per request. */
    private static final SlowRequestEvent PROBE = new SlowRequestEvent();

    @Label("Export")
    public String export;

    @Label("Queue")
    public int queue;

    @Label("Operation")
    public String op;

    @Label("Bytes")
    @DataAmount
    public long bytes;

    @Label("Error")
    @Description("none, io, unsupported or chain")
    public String error;

    @Label("Latency")
    @Timespan(Timespan.NANOSECONDS)
    public long latency;

    /** Commits one event if a recording wants it. */
    public static void report(String export, int queue, int op, long bytes, int error, long latencyNanos) {
        if (!PROBE.isEnabled()) {
            return;
        }
        SlowRequestEvent e = new SlowRequestEvent();
        e.export = export;
        e.queue = queue;
        e.op = StatsLayout.OP_NAMES.get(op);
        e.bytes = bytes;
        e.error = error < 0 ? "none" : StatsLayout.ERROR_NAMES.get(error);
        e.latency = latencyNanos;
        e.commit();
    }
}
