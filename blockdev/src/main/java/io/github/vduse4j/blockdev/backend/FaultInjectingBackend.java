package io.github.vduse4j.blockdev.backend;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * A test tool: wraps a backend and injects failures into the requests it passes on, so that the whole stack (queue
 * handler, transport, guest driver, fio) can be seen to handle them. Rules ({@link #parse}):
 * <ul>
 *   <li>{@code eio} — complete the request with an I/O error (the guest sees VIRTIO_BLK_S_IOERR, i.e. EIO) without
 *       touching the storage;</li>
 *   <li>{@code short} — a short transfer: only the first half of the request's buffers (at least one sector short of
 *       the whole) is read or written, and the request completes with an I/O error. virtio-blk has no way to report
 *       a partial transfer (§5.2.6: the used length counts bytes written to the driver, the status is all-or-nothing),
 *       so a short transfer is never passed off as success;</li>
 *   <li>{@code delay} — hold the submitting poller thread for a fixed or random time before passing the request on
 *       (a stalled synchronous backend; long values model stalls past the VDUSE msg_timeout of 30 s).</li>
 * </ul>
 * Each rule applies to some ops ({@code read}, {@code write}, {@code flush}, {@code discard} — DISCARD and
 * WRITE_ZEROES — or {@code all}), optionally only to requests overlapping a byte range, at a rate (probability per
 * matching request), and at most {@code count} times. The first matching error rule wins; delays add up.
 * Counters say what was injected. Randomness is seeded ({@code seed=}), per queue.
 */
public final class FaultInjectingBackend implements BlockBackend {
    /**
     * Op bits of {@link Rule#ops()}: READ, WRITE, FLUSH (matches any range), DISCARD (DISCARD and WRITE_ZEROES,
     * matched on their first range), and all of them.
     */
    public static final int OP_READ = 1, OP_WRITE = 2, OP_FLUSH = 4, OP_DISCARD = 8, OP_ALL = 15;

    /** What a rule does. */
    public enum Kind {
        /** Complete the request with an I/O error without passing it on. */
        EIO,
        /** Transfer only the first half of the buffers, then complete with an I/O error (reads and writes only). */
        SHORT,
        /** Hold the submitting thread for a while, then pass the request on. */
        DELAY
    }

    /**
     * One rule: {@code kind} on {@code ops} for requests overlapping {@code [rangeStart, rangeEnd)} with probability
     * {@code rate}, at most {@code count} times (-1: no limit); DELAY waits {@code minNanos..maxNanos}.
     *
     * @param kind       what the rule does
     * @param ops        the ops it applies to: {@code OP_*} bits, at least one
     * @param rangeStart first byte of the range, inclusive
     * @param rangeEnd   end of the range, exclusive ({@code Long.MAX_VALUE}: to the end of the device)
     * @param rate       probability in [0, 1] that a matching request is hit
     * @param count      the most times the rule fires; negative: no limit
     * @param minNanos   shortest delay in nanoseconds (DELAY only; 0 otherwise)
     * @param maxNanos   longest delay in nanoseconds, inclusive, at least {@code minNanos} (equal: a fixed delay)
     */
    public record Rule(Kind kind, int ops, long rangeStart, long rangeEnd, double rate, long count,
                       long minNanos, long maxNanos) {
        /**
         * Checks the rule.
         *
         * @throws IllegalArgumentException if {@code ops} is empty or has unknown bits, the range is empty or
         *         negative, {@code rate} is outside [0, 1], or the delay bounds are negative or reversed
         */
        public Rule {
            if (ops == 0 || (ops & ~OP_ALL) != 0) throw new IllegalArgumentException("no ops");
            if (rangeStart < 0 || rangeEnd <= rangeStart) throw new IllegalArgumentException("empty range");
            if (!(rate >= 0 && rate <= 1)) throw new IllegalArgumentException("rate must be in [0, 1]: " + rate);
            if (minNanos < 0 || maxNanos < minNanos) throw new IllegalArgumentException("bad delay");
        }

        boolean matches(int opBit, long offset, long length) {
            if ((ops & opBit) == 0) return false;
            if (opBit == OP_FLUSH) return true;   // a flush covers the whole device
            return offset < rangeEnd && offset + Math.max(length, 1) > rangeStart;
        }
    }

    private final BlockBackend inner;
    private final List<Rule> rules;
    private final long seed;
    private final AtomicLong[] remaining;
    private final AtomicLong errorsInjected = new AtomicLong();
    private final AtomicLong shortTransfers = new AtomicLong();
    private final AtomicLong delaysInjected = new AtomicLong();
    private final AtomicLong delayNanos = new AtomicLong();
    private final AtomicLong requestsSeen = new AtomicLong();

    /**
     * Wraps a backend.
     *
     * @param inner the backend requests are passed on to; everything but {@link #openQueue} and
     *              {@link #describe()} is delegated to it unchanged
     * @param rules the rules, in order (copied; the first matching error rule wins)
     * @param seed  seed of the random choices; each queue derives its own generator from it
     */
    public FaultInjectingBackend(BlockBackend inner, List<Rule> rules, long seed) {
        this.inner = inner;
        this.rules = List.copyOf(rules);
        this.seed = seed;
        this.remaining = new AtomicLong[this.rules.size()];
        for (int i = 0; i < remaining.length; i++) remaining[i] = new AtomicLong(this.rules.get(i).count());
    }

    /**
     * Errors injected ({@code eio} rules).
     *
     * @return requests completed with an I/O error without reaching the inner backend
     */
    public long errorsInjected() { return errorsInjected.get(); }

    /**
     * Short transfers injected (each completed with an I/O error).
     *
     * @return requests truncated by a {@code short} rule
     */
    public long shortTransfers() { return shortTransfers.get(); }

    /**
     * Delays injected.
     *
     * @return how many times a {@code delay} rule held a request
     */
    public long delaysInjected() { return delaysInjected.get(); }

    /**
     * Total length of the delays injected.
     *
     * @return the sum of all delays, in nanoseconds
     */
    public long delayNanos() { return delayNanos.get(); }

    /**
     * Requests that passed through the wrapper.
     *
     * @return requests submitted to any queue of this backend, faulty or not
     */
    public long requestsSeen() { return requestsSeen.get(); }

    @Override public long capacity() { return inner.capacity(); }
    @Override public long refreshCapacity() { return inner.refreshCapacity(); }
    /**
     * Resizes the wrapped backend (a memory or null export with injected faults resizes as it would without them).
     * Runs on the caller's thread and takes no lock a stalled {@code delay} holds, so a resize during a stall takes
     * effect at once.
     */
    @Override public long resize(long bytes) { return inner.resize(bytes); }
    @Override public int discardGranularity() { return inner.discardGranularity(); }
    @Override public boolean isReadOnly() { return inner.isReadOnly(); }
    @Override public boolean supportsDiscard() { return inner.supportsDiscard(); }
    @Override public boolean supportsWriteZeroes() { return inner.supportsWriteZeroes(); }
    @Override public boolean supportsFlush() { return inner.supportsFlush(); }
    @Override public void flush() { inner.flush(); }
    @Override public void close() { inner.close(); }

    @Override
    public String identity() {
        return inner.identity();
    }

    @Override
    public String describe() {
        return inner.describe() + " with injected faults " + rules.size() + " rule" + (rules.size() == 1 ? "" : "s");
    }

    /**
     * A one-line account of what was injected, for logs at shutdown.
     *
     * @return the counters as one line
     */
    public String summary() {
        return String.format(Locale.ROOT, "faults injected: %d EIO, %d short transfers (EIO), %d delays (%.3f s) "
                + "in %d requests", errorsInjected(), shortTransfers(), delaysInjected(), delayNanos() / 1e9,
                requestsSeen());
    }

    @Override
    public BackendQueue openQueue(int queueIndex) {
        return new FaultyQueue(inner.openQueue(queueIndex), new SplittableRandom(seed + 0x9E37_79B9L * queueIndex));
    }

    private static int opBit(int op) {
        return switch (op) {
            case BlockRequest.READ -> OP_READ;
            case BlockRequest.WRITE -> OP_WRITE;
            case BlockRequest.FLUSH -> OP_FLUSH;
            default -> OP_DISCARD;   // DISCARD, WRITE_ZEROES
        };
    }

    private boolean fires(int i, SplittableRandom random) {
        Rule r = rules.get(i);
        if (r.rate() < 1 && random.nextDouble() >= r.rate()) return false;
        if (r.count() < 0) return true;
        return remaining[i].getAndUpdate(n -> n > 0 ? n - 1 : 0) > 0;
    }

    private final class FaultyQueue implements BackendQueue {
        private final BackendQueue q;
        private final SplittableRandom random;

        FaultyQueue(BackendQueue q, SplittableRandom random) {
            this.q = q;
            this.random = random;
        }

        @Override
        public void submit(BlockRequest request) {
            requestsSeen.incrementAndGet();
            int op = opBit(request.op());
            long offset = request.offset(), length = request.length();
            if (op == OP_DISCARD && request.rangeCount() > 0) {
                offset = request.rangeOffset(0);
                length = request.rangeLength(0);
            }
            Kind error = null;
            for (int i = 0; i < rules.size(); i++) {
                Rule r = rules.get(i);
                if (!r.matches(op, offset, length)) continue;
                if (r.kind() == Kind.DELAY) {
                    if (fires(i, random)) delay(r);
                } else if (error == null && (r.kind() == Kind.EIO || op == OP_READ || op == OP_WRITE)
                        && fires(i, random)) {
                    error = r.kind();
                }
            }
            if (error == Kind.EIO) {
                errorsInjected.incrementAndGet();
                request.complete(BlockRequest.STATUS_IOERR);
            } else if (error == Kind.SHORT) {
                shortTransfers.incrementAndGet();
                shortTransfer(request);
            } else {
                q.submit(request);
            }
        }

        private void delay(Rule r) {
            long nanos = r.minNanos() == r.maxNanos() ? r.minNanos() : random.nextLong(r.minNanos(), r.maxNanos() + 1);
            delaysInjected.incrementAndGet();
            delayNanos.addAndGet(nanos);
            long end = System.nanoTime() + nanos;
            for (long left = nanos; left > 0; left = end - System.nanoTime()) LockSupport.parkNanos(left);
        }

        /** Transfers the first half of the buffers (at least a sector less than asked) and reports an I/O error. */
        private void shortTransfer(BlockRequest request) {
            long keep = (request.length() / 2) & -512L;
            if (keep == 0) {   // nothing to transfer: a zero-length short transfer is a plain error
                request.complete(BlockRequest.STATUS_IOERR);
                return;
            }
            request.truncate(keep);
            request.failAfterTransfer();
            q.submit(request);
        }

        @Override public int poll() { return q.poll(); }
        @Override public int inflight() { return q.inflight(); }
        @Override public int completionFd() { return q.completionFd(); }
        @Override public void close() { q.close(); }
    }

    // ---- SPEC parsing (the CLI's --inject-faults) ----

    /**
     * Parses {@code RULE[,RULE...]}; RULE = {@code KIND:OPS[:KEY=VALUE...]} with KIND {@code eio|short|delay},
     * OPS {@code read|write|flush|discard|all} joined by {@code +}, keys {@code rate=P} (0..1, default 1),
     * {@code range=START-END} (bytes, K/M/G suffixes, END exclusive), {@code count=N}, and for delay
     * {@code time=DUR} or {@code time=MIN-MAX} (DUR: 5ms, 2s, 500us). Example:
     * {@code eio:read+write:range=1M-2M,delay:write:time=35s:count=1}.
     *
     * @param spec the rules as the CLI takes them
     * @return the rules, in the order given
     * @throws IllegalArgumentException with a one-line reason
     */
    public static List<Rule> parse(String spec) {
        if (spec == null || spec.isBlank()) throw new IllegalArgumentException("empty fault spec");
        List<Rule> out = new ArrayList<>();
        for (String rule : spec.split(",")) {
            String[] parts = rule.trim().split(":");
            if (parts.length < 2) throw new IllegalArgumentException("rule '" + rule + "' needs KIND:OPS");
            Kind kind = switch (parts[0].toLowerCase(Locale.ROOT)) {
                case "eio" -> Kind.EIO;
                case "short" -> Kind.SHORT;
                case "delay" -> Kind.DELAY;
                default -> throw new IllegalArgumentException("unknown fault kind '" + parts[0] + "' (eio, short, delay)");
            };
            int ops = 0;
            for (String o : parts[1].split("\\+")) {
                ops |= switch (o.toLowerCase(Locale.ROOT)) {
                    case "read" -> OP_READ;
                    case "write" -> OP_WRITE;
                    case "flush" -> OP_FLUSH;
                    case "discard" -> OP_DISCARD;
                    case "all" -> OP_ALL;
                    default -> throw new IllegalArgumentException("unknown op '" + o + "' (read, write, flush, discard, all)");
                };
            }
            long start = 0, end = Long.MAX_VALUE, count = -1, min = 0, max = 0;
            double rate = 1;
            boolean time = false;
            for (int i = 2; i < parts.length; i++) {
                String[] kv = parts[i].split("=", 2);
                if (kv.length != 2) throw new IllegalArgumentException("'" + parts[i] + "' is not KEY=VALUE");
                String v = kv[1];
                switch (kv[0].toLowerCase(Locale.ROOT)) {
                    case "rate" -> rate = parseRate(v);
                    case "count" -> count = parseCount(v);
                    case "range" -> {
                        String[] se = v.split("-", 2);
                        if (se.length != 2) throw new IllegalArgumentException("range '" + v + "' is not START-END");
                        start = parseBytes(se[0]);
                        end = parseBytes(se[1]);
                        if (end <= start) throw new IllegalArgumentException("range '" + v + "' is empty");
                    }
                    case "time" -> {
                        String[] mm = v.split("-", 2);
                        min = parseDuration(mm[0]);
                        max = mm.length == 2 ? parseDuration(mm[1]) : min;
                        if (max < min) throw new IllegalArgumentException("time '" + v + "': MAX below MIN");
                        time = true;
                    }
                    default -> throw new IllegalArgumentException("unknown key '" + kv[0] + "' (rate, range, count, time)");
                }
            }
            if (kind == Kind.DELAY && !time) throw new IllegalArgumentException("delay rule '" + rule + "' needs time=DUR");
            if (kind != Kind.DELAY && time) throw new IllegalArgumentException("time= only applies to delay rules");
            out.add(new Rule(kind, ops, start, end, rate, count, min, max));
        }
        return out;
    }

    private static double parseRate(String v) {
        try {
            double r = Double.parseDouble(v);
            if (r >= 0 && r <= 1) return r;
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("rate '" + v + "' is not a probability in [0, 1]");
    }

    private static long parseCount(String v) {
        try {
            long n = Long.parseLong(v);
            if (n > 0) return n;
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("count '" + v + "' is not a positive number");
    }

    private static long parseBytes(String v) {
        String s = v.trim().toUpperCase(Locale.ROOT);
        long unit = 1;
        if (s.endsWith("K")) unit = 1L << 10;
        else if (s.endsWith("M")) unit = 1L << 20;
        else if (s.endsWith("G")) unit = 1L << 30;
        if (unit != 1) s = s.substring(0, s.length() - 1);
        try {
            long n = Long.parseLong(s);
            if (n >= 0 && n <= Long.MAX_VALUE / unit) return n * unit;
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("'" + v + "' is not a byte offset (e.g. 4096, 64K, 1M)");
    }

    private static long parseDuration(String v) {
        String s = v.trim().toLowerCase(Locale.ROOT);
        TimeUnit unit;
        if (s.endsWith("us")) { unit = TimeUnit.MICROSECONDS; s = s.substring(0, s.length() - 2); }
        else if (s.endsWith("ms")) { unit = TimeUnit.MILLISECONDS; s = s.substring(0, s.length() - 2); }
        else if (s.endsWith("s")) { unit = TimeUnit.SECONDS; s = s.substring(0, s.length() - 1); }
        else throw new IllegalArgumentException("duration '" + v + "' needs a unit (us, ms, s)");
        try {
            long n = Long.parseLong(s);
            if (n >= 0 && n <= 3600L * 1_000_000) return unit.toNanos(n);
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("'" + v + "' is not a duration (e.g. 500us, 5ms, 35s)");
    }
}
