package io.github.vduse4j.bindings;

import static io.github.vduse4j.bindings.Failures.expect;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class AffinityTest {
    @Test
    void anImpossibleCpuFailsWithEinval() {
        assumeTrue(Runtime.getRuntime().availableProcessors() < 1023, "this host has a CPU 1023");
        expect(() -> Affinity.setCurrentThread(1023), "sched_setaffinity", "EINVAL", "pid=0", "cpus=[1023]");
        assertThrows(IllegalArgumentException.class, () -> Affinity.setCurrentThread(-1));
    }

    @Test
    void aMissingThreadFailsWithEsrch() {
        expect(() -> Affinity.get(Integer.MAX_VALUE), "sched_getaffinity", "ESRCH", "pid=2147483647");
        expect(() -> Affinity.set(Integer.MAX_VALUE, 0), "sched_setaffinity", "ESRCH", "pid=2147483647", "cpus=[0]");
    }

    @Test
    void pinsTheCallingThreadToCpu0() throws InterruptedException {
        AtomicReference<Object> result = new AtomicReference<>();
        Thread thread = Thread.ofPlatform().start(() -> {
            try {
                int[] original = Affinity.currentThread();
                Affinity.setCurrentThread(0);
                result.set(Affinity.currentThread());
                Affinity.setCurrentThread(original);
            } catch (Throwable t) {
                result.set(t);
            }
        });
        thread.join();
        assertEquals(int[].class, result.get().getClass(), String.valueOf(result.get()));
        assertArrayEquals(new int[] {0}, (int[]) result.get());
    }
}
