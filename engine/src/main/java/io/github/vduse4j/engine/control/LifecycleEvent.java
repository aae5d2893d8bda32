package io.github.vduse4j.engine.control;

import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/**
 * JFR event: something happened to a device (create, attach, driver-ok, reset, iotlb-update, resize, connect,
 * disconnect, stop). Control-path only; {@code jcmd PID JFR.start} shows an export's history.
 */
@Name("vduse4j.Lifecycle")
@Label("Device Lifecycle")
@Category({"vduse4j", "Control"})
@Description("A device lifecycle step: create, attach, driver-ok, reset, iotlb-update, resize, connect, disconnect, stop")
@StackTrace(false)
public final class LifecycleEvent extends Event {
    @Label("Device")
    public String device;

    @Label("Action")
    public String action;

    @Label("Detail")
    public String detail;

    /** Commits one event if a recording wants it. */
    public static void report(String device, String action, String detail) {
        LifecycleEvent e = new LifecycleEvent();
        if (!e.isEnabled()) {
            return;
        }
        e.device = device;
        e.action = action;
        e.detail = detail;
        e.commit();
    }
}
