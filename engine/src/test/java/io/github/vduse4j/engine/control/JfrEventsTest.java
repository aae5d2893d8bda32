package io.github.vduse4j.engine.control;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.engine.QueueStats;
import java.nio.file.Path;
import java.util.List;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JfrEventsTest {
    @TempDir
    Path dir;

    @Test
    void slowRequestsAndLifecycleStepsAreRecordedOnlyWhileARecordingRuns() throws Exception {
        QueueStats q = new QueueStats(java.lang.foreign.Arena.ofAuto().allocate(StatsLayout.RECORD_SIZE, 64), "disk0", 3);
        q.slowRequestThreshold(1_000_000);
        q.completed(StatsLayout.OP_READ, -1, 4096, 5_000_000); // no recording: nothing
        Path out = dir.resolve("r.jfr");
        try (Recording r = new Recording()) {
            r.enable("vduse4j.SlowRequest");
            r.enable("vduse4j.Lifecycle");
            r.start();
            q.completed(StatsLayout.OP_READ, -1, 4096, 999_999);            // under the threshold
            q.completed(StatsLayout.OP_WRITE, StatsLayout.ERR_IO, 0, 2_000_000);
            LifecycleEvent.report("disk0", "resize", "2048 bytes");
            r.stop();
            r.dump(out);
        }
        List<RecordedEvent> events = RecordingFile.readAllEvents(out);
        List<RecordedEvent> slow = events.stream().filter(e -> e.getEventType().getName().equals("vduse4j.SlowRequest")).toList();
        assertEquals(1, slow.size(), events.toString());
        assertEquals("disk0", slow.get(0).getString("export"));
        assertEquals(3, slow.get(0).getInt("queue"));
        assertEquals("write", slow.get(0).getString("op"));
        assertEquals("io", slow.get(0).getString("error"));
        assertEquals(2_000_000, slow.get(0).getDuration("latency").toNanos());
        RecordedEvent life = events.stream().filter(e -> e.getEventType().getName().equals("vduse4j.Lifecycle"))
                .findFirst().orElseThrow();
        assertEquals("resize", life.getString("action"));
    }
}
