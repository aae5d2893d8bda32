package io.github.vduse4j.engine.vhostuser;

import static org.junit.jupiter.api.Assertions.*;

import io.github.vduse4j.ring.testkit.UsedBuffer;
import io.github.vduse4j.ring.testkit.VirtqueueDriver;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * Echo requests added through a ring-test-kit driver, and the check of what comes back: request {@code token} has
 * {@code descriptors - 1} readable buffers of 8 bytes derived from the token and one writable buffer for all of them;
 * every token must be used exactly once, with its own bytes echoed.
 */
public final class EchoRequests {
    private final VirtqueueDriver driver;
    private final Map<Long, long[]> out = new HashMap<>();   // token -> {writable address, length}
    private final Set<Long> done = new HashSet<>();
    private final Map<Long, Integer> ids = new HashMap<>();   // token -> id the driver gave it (split head / packed id)
    private long nextToken;

    public EchoRequests(VirtqueueDriver driver) {
        this.driver = driver;
    }

    private static byte pattern(long token, int i) {
        return (byte) (token * 37 + i * 5 + 1);
    }

    /** Adds request number {@link #nextToken} as {@code descriptors} direct descriptors; returns its token, or -1 if no room. */
    public long add(int descriptors) {
        if (descriptors < 2) {
            throw new IllegalArgumentException("an echo request needs a readable and a writable descriptor");
        }
        long token = nextToken;
        int readable = descriptors - 1;
        var c = driver.chain().indirect(false);
        for (int k = 0; k < readable; k++) {
            long a = driver.memory().allocate(8);
            byte[] b = new byte[8];
            for (int i = 0; i < 8; i++) {
                b[i] = pattern(token, 8 * k + i);
            }
            driver.memory().write(a, b);
            c.readable(a, 8);
        }
        long w = driver.memory().allocate(8L * readable);
        driver.memory().fill(w, 8L * readable, (byte) 0);
        c.writable(w, 8 * readable);
        int id = c.add(token);
        if (id < 0) {
            return -1;
        }
        ids.put(token, id);
        out.put(token, new long[] {w, 8L * readable});
        nextToken++;
        return token;
    }

    public long add() {
        return add(2);
    }

    /** Reaps every used element, checking each: used once, its own bytes, the right length. Returns how many. */
    public int reap() {
        UsedBuffer u = new UsedBuffer();
        int n = 0;
        while (driver.reap(u)) {
            assertTrue(done.add(u.token), "request " + u.token + " used twice");
            long[] o = out.get(u.token);
            assertNotNull(o, "unknown token " + u.token);
            assertEquals(o[1], u.len, "request " + u.token + " length");
            byte[] got = driver.memory().read(o[0], (int) o[1]);
            for (int i = 0; i < got.length; i++) {
                assertEquals(pattern(u.token, i), got[i], "request " + u.token + " byte " + i);
            }
            n++;
        }
        return n;
    }

    /** Zeroes the writable buffer of every request not used yet (what a device that crashed before writing left). */
    void forgetOutputs() {
        for (Map.Entry<Long, long[]> e : out.entrySet()) {
            if (!done.contains(e.getKey())) {
                driver.memory().fill(e.getValue()[0], e.getValue()[1], (byte) 0);
            }
        }
    }

    /** The id (split: head, packed: buffer id) request {@code token} was added with. */
    int id(long token) {
        return ids.get(token);
    }

    /** Tokens used so far. */
    public Set<Long> done() {
        return done;
    }

    /** Tokens added so far. */
    public long added() {
        return nextToken;
    }
}
