package io.github.vduse4j.engine.vhostuser;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vduse4j.engine.QueueHandler;
import io.github.vduse4j.engine.QueueStats;
import io.github.vduse4j.ring.Virtqueue;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class QueueQuiescenceTest {
    /** A handler with an asynchronous backend: requests in flight, completions signalled on an fd. */
    private static final class AsyncHandler implements QueueHandler {
        private final QueueStats stats = new QueueStats();

        @Override
        public int process(Virtqueue queue, int budget) {
            return 0;
        }

        @Override
        public int inflight() {
            return 3;
        }

        @Override
        public int completionFd() {
            return 42;
        }

        @Override
        public QueueStats stats() {
            return stats;
        }

        @Override
        public void close() {}
    }

    @Test
    void thePollerSeesTheBackendsCompletionFdThroughTheDecorator() {
        QueueQuiescence q = new QueueQuiescence(new AsyncHandler());
        assertEquals(42, q.completionFd(), "without it the poller spins while requests are in flight");
        assertEquals(3, q.inflight());
    }

    @Test
    void everyDefaultMethodOfQueueHandlerIsDelegated() {
        List<String> missing = new ArrayList<>();
        for (Method m : QueueHandler.class.getMethods()) {
            if (!m.isDefault() || Modifier.isStatic(m.getModifiers())) {
                continue;
            }
            try {
                Method own = QueueQuiescence.class.getDeclaredMethod(m.getName(), m.getParameterTypes());
                if (own.isSynthetic()) {
                    missing.add(m.getName());
                }
            } catch (NoSuchMethodException e) {
                missing.add(m.getName());
            }
        }
        assertTrue(missing.isEmpty(), "QueueQuiescence falls back to QueueHandler's defaults for " + missing);
    }
}
