package io.github.vduse4j.engine.control;

import io.github.vduse4j.engine.QueueStats;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A copy of one queue's record (or the sum of several) at one moment: counters and latency buckets, which two
 * snapshots subtract into an interval and from which percentiles are computed.
 */
public final class StatsSnapshot {
    private final long[] counters = new long[StatsLayout.COUNTER_SLOTS];
    private final long[] buckets = new long[StatsLayout.HISTOGRAM_BUCKETS];
    private final long nanoTime;

    private StatsSnapshot(long nanoTime) {
        this.nanoTime = nanoTime;
    }

    /** Reads {@code q} now (completions before pops, so in flight is never negative). */
    public static StatsSnapshot of(QueueStats q) {
        StatsSnapshot s = new StatsSnapshot(System.nanoTime());
        s.add(q);
        return s;
    }

    /** The sum of every queue. */
    public static StatsSnapshot sum(List<QueueStats> queues) {
        StatsSnapshot s = new StatsSnapshot(System.nanoTime());
        for (QueueStats q : queues) {
            s.add(q);
        }
        return s;
    }

    private void add(QueueStats q) {
        long requests = q.counter(StatsLayout.REQUESTS);
        for (int i = 0; i < counters.length; i++) {
            long v = i == StatsLayout.REQUESTS ? requests : q.counter(i);
            if (i == StatsLayout.LATENCY_MAX) {
                counters[i] = Math.max(counters[i], v);
            } else {
                counters[i] += v;
            }
        }
        for (int b = 0; b < buckets.length; b++) {
            buckets[b] += q.bucket(b);
        }
    }

    /** What happened between {@code earlier} and this snapshot (the maximum stays the all-time one). */
    public StatsSnapshot minus(StatsSnapshot earlier) {
        StatsSnapshot d = new StatsSnapshot(nanoTime);
        for (int i = 0; i < counters.length; i++) {
            d.counters[i] = i == StatsLayout.LATENCY_MAX ? counters[i] : counters[i] - earlier.counters[i];
        }
        for (int b = 0; b < buckets.length; b++) {
            d.buckets[b] = buckets[b] - earlier.buckets[b];
        }
        return d;
    }

    public long nanoTime() {
        return nanoTime;
    }

    public long get(int slot) {
        return counters[slot];
    }

    public long requests() {
        return counters[StatsLayout.REQUESTS];
    }

    public long inflight() {
        return Math.max(0, counters[StatsLayout.POPPED] - counters[StatsLayout.REQUESTS]);
    }

    public long bucket(int b) {
        return buckets[b];
    }

    /** Requests in the histogram. */
    public long latencyCount() {
        long n = 0;
        for (long c : buckets) {
            n += c;
        }
        return n;
    }

    /**
     * The latency (ns) at quantile {@code q} (0..1): the highest value of the bucket that holds it, as HdrHistogram
     * reports, so within 6.25 % above the true value; never above the largest latency recorded. 0 with no samples.
     */
    public long percentile(double q) {
        long total = latencyCount();
        if (total == 0) {
            return 0;
        }
        long rank = Math.max(1, (long) Math.ceil(q * total));
        long seen = 0;
        for (int b = 0; b < buckets.length; b++) {
            seen += buckets[b];
            if (seen >= rank) {
                return Math.min(StatsLayout.bucketUpperBound(b), counters[StatsLayout.LATENCY_MAX]);
            }
        }
        return counters[StatsLayout.LATENCY_MAX];
    }

    /** Every queue's snapshot and their total, as the control socket's {@code stats} reply and {@code stats --json}. */
    public static Map<String, Object> report(List<QueueStats> queues) {
        List<Object> per = new ArrayList<>();
        for (QueueStats q : queues) {
            per.add(of(q).toMap());
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("queues", per);
        m.put("total", sum(queues).toMap());
        return m;
    }

    /** This snapshot as a JSON object (docs/operations.md). */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("requests", requests());
        m.put("inflight", inflight());
        m.put("read_bytes", get(StatsLayout.READ_BYTES));
        m.put("written_bytes", get(StatsLayout.WRITTEN_BYTES));
        Map<String, Object> ops = new LinkedHashMap<>();
        for (int i = 0; i < StatsLayout.OPS; i++) {
            ops.put(StatsLayout.OP_NAMES.get(i), get(StatsLayout.OP_FIRST + i));
        }
        m.put("ops", ops);
        Map<String, Object> errors = new LinkedHashMap<>();
        for (int i = 0; i < StatsLayout.ERRORS; i++) {
            errors.put(StatsLayout.ERROR_NAMES.get(i), get(StatsLayout.ERR_FIRST + i));
        }
        m.put("errors", errors);
        m.put("flushes", get(StatsLayout.FLUSHES));
        m.put("write_through_flushes", get(StatsLayout.WRITE_THROUGH_FLUSHES));
        m.put("kicks", get(StatsLayout.KICKS));
        m.put("notifications", get(StatsLayout.NOTIFICATIONS));
        Map<String, Object> lat = new LinkedHashMap<>();
        lat.put("p50", percentile(0.50));
        lat.put("p99", percentile(0.99));
        lat.put("p999", percentile(0.999));
        lat.put("max", get(StatsLayout.LATENCY_MAX));
        m.put("latency_ns", lat);
        return m;
    }
}
