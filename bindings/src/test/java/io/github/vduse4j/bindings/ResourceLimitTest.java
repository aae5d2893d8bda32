package io.github.vduse4j.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ResourceLimitTest {

    @Test
    void memlockRoundTrips() {
        ResourceLimit.Limit before = ResourceLimit.get(ResourceLimit.MEMLOCK);
        try {
            long soft = before.hard() == ResourceLimit.INFINITY ? 64L << 20 : Math.min(before.hard(), 64L << 20);
            ResourceLimit.set(ResourceLimit.MEMLOCK, new ResourceLimit.Limit(soft, before.hard()));
            assertEquals(soft, ResourceLimit.get(ResourceLimit.MEMLOCK).soft());
            assertTrue(ResourceLimit.get(ResourceLimit.MEMLOCK).allows(soft));
        } finally {
            ResourceLimit.set(ResourceLimit.MEMLOCK, before);
        }
        assertEquals(before, ResourceLimit.get(ResourceLimit.MEMLOCK));
    }

    @Test
    void badResourceFailsWithEinval() {
        Failures.expect(() -> ResourceLimit.get(9999), "getrlimit", "EINVAL", "resource=9999");
        Failures.expect(() -> ResourceLimit.set(9999, new ResourceLimit.Limit(1, 1)), "setrlimit", "EINVAL",
                "resource=9999");
    }

    @Test
    void softAboveHardFailsWithEinval() {
        ResourceLimit.Limit now = ResourceLimit.get(ResourceLimit.MEMLOCK);
        if (now.hard() == ResourceLimit.INFINITY) {
            Failures.expect(() -> ResourceLimit.set(ResourceLimit.MEMLOCK, new ResourceLimit.Limit(ResourceLimit.INFINITY, 4096)),
                    "setrlimit", "EINVAL", "soft=-1", "hard=4096");
        } else {
            Failures.expect(() -> ResourceLimit.set(ResourceLimit.MEMLOCK, new ResourceLimit.Limit(now.hard() + 4096, now.hard())),
                    "setrlimit", "EINVAL", "resource=8");
        }
    }
}
