package io.github.vduse4j.blockdev.bench;

import java.util.Locale;

/**
 * The outcome of a run: operations, bytes, rates and completion latency percentiles (microseconds, from the moment
 * the device can see a request, its publish on a split ring and its add on a packed one, to its used element being
 * seen); {@code calls}: call eventfd wake-ups taken (used-buffer notifications the device sent, with
 * {@link BenchOptions#awaitCalls} only).
 */
public record BenchResult(String target, BenchOptions options, double seconds, long reads, long writes, long bytes,
                          long errors, long verifyErrors, long verified, double p50, double p90, double p99,
                          double p999, double max, double mean, long kicks, long deviceFaults,
                          String firstProblem, long remaps, long restarts, long vringBaseChecks, long calls) {

    /** A run without vhost-vdpa remaps, restarts or vring base checks. */
    public BenchResult(String target, BenchOptions options, double seconds, long reads, long writes, long bytes,
            long errors, long verifyErrors, long verified, double p50, double p90, double p99, double p999, double max,
            double mean, long kicks, long deviceFaults, String firstProblem) {
        this(target, options, seconds, reads, writes, bytes, errors, verifyErrors, verified, p50, p90, p99, p999, max,
                mean, kicks, deviceFaults, firstProblem, 0, 0, 0, 0);
    }

    public long ios() {
        return reads + writes;
    }

    public double iops() {
        return seconds > 0 ? ios() / seconds : 0;
    }

    /** Decimal megabytes per second. */
    public double mbPerSecond() {
        return seconds > 0 ? bytes / seconds / 1e6 : 0;
    }

    public boolean ok() {
        return errors == 0 && verifyErrors == 0 && deviceFaults == 0;
    }

    public String toJson() {
        return String.format(Locale.ROOT, "{\"target\":\"%s\",\"rw\":\"%s\",\"bs\":%d,\"iodepth\":%d,\"iodepth_batch\":%d,\"queues\":%d,"
                        + "\"ring\":\"%s\",\"rate_iops\":%d,\"runtime_s\":%.3f,\"ios\":%d,\"reads\":%d,\"writes\":%d,\"iops\":%.1f,"
                        + "\"mb_s\":%.2f,"
                        + "\"lat_us\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p99.9\":%.2f,\"max\":%.2f,\"mean\":%.2f},"
                        + "\"errors\":%d,\"verify\":%b,\"verified_blocks\":%d,\"verify_errors\":%d,\"kicks\":%d,"
                        + "\"device_faults\":%d,\"remaps\":%d,\"restarts\":%d,\"vring_base_checks\":%d,\"calls\":%d%s}",
                escape(target), options.pattern().fioName(), options.blockSize(), options.depth(), options.submitBatch(),
                options.queues(), options.ringKind(), options.rateIops(), seconds, ios(), reads, writes, iops(), mbPerSecond(), p50, p90,
                p99, p999, max, mean, errors, options.verify(), verified, verifyErrors, kicks, deviceFaults, remaps,
                restarts, vringBaseChecks, calls,
                firstProblem == null ? "" : ",\"first_problem\":\"" + escape(firstProblem) + "\"");
    }

    public String summary() {
        return String.format(Locale.ROOT, "%s: %s bs=%d qd=%d queues=%d ring=%s: %.0f IOPS, %.1f MB/s, lat us p50=%.1f"
                        + " p90=%.1f p99=%.1f p99.9=%.1f max=%.1f; %d ios in %.1f s, errors=%d%s%s",
                target, options.pattern().fioName(), options.blockSize(), options.depth(), options.queues(),
                options.ringKind(), iops(), mbPerSecond(), p50, p90, p99, p999, max, ios(), seconds, errors,
                options.verify() ? ", verified " + verified + " blocks, verify errors=" + verifyErrors : "",
                deviceFaults == 0 ? "" : ", device faults=" + deviceFaults)
                + (remaps + restarts + vringBaseChecks == 0 ? "" : String.format(Locale.ROOT,
                        ", remaps=%d, restarts=%d, vring bases checked=%d", remaps, restarts, vringBaseChecks))
                + (firstProblem == null ? "" : " (first problem: " + firstProblem + ")");
    }

    private static String escape(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"");
    }
}
