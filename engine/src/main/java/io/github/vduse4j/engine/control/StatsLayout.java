package io.github.vduse4j.engine.control;

import java.util.List;

/**
 * Layout of the live stats file ({@code /run/vduse4j/NAME/stats}): a self-describing header, then one fixed-size
 * record of 64-bit counters and a latency histogram per queue. All values are native-order (little-endian) longs at
 * 8-byte aligned offsets, so an aligned 64-bit load never sees a torn value.
 *
 * <pre>
 * header (HEADER_SIZE bytes)
 *   0  long  magic "VD4JSTAT" (written last, with a release store: a reader that sees it sees the rest)
 *   8  int   layout version (1)        12 int  header size
 *  16  int   record size               20 int  record count (queues)
 *  24  long  offset of the first record
 *  32  int   counter count (slots before the histogram)   36 int histogram bucket count
 *  40  int   histogram sub-bucket bits  44 int  closed (1 once the writer has stopped)
 *  48  long  writer pid                 56 long start time (epoch ms)
 *  64  64 bytes export name (UTF-8, NUL-padded)
 * 128  COUNTER_SLOTS x 24 bytes: the name of each counter slot (UTF-8, NUL-padded; empty = reserved)
 * record i at recordsOffset + i * recordSize: COUNTER_SLOTS longs, then HISTOGRAM_BUCKETS longs
 * </pre>
 *
 * <p>Latency histogram: log-linear buckets of nanoseconds, the scheme HdrHistogram uses, fixed at
 * {@value #SUB_BUCKET_BITS} sub-bucket bits: values below 16 have a bucket each; above, every power of two is split
 * into 16 equal buckets, so a bucket's width is at most 1/16 (6.25 %) of its lower bound. Values from
 * 2^{@value #MAX_VALUE_BITS} ns (about 69 s) on land in the last bucket. The poller increments one plain long per
 * request; readers subtract two snapshots and compute percentiles from the counts. (HdrHistogram itself keeps its
 * counts in a Java array and encodes snapshots compressed, so it cannot be incremented in place in shared memory.)
 */
public final class StatsLayout {
    public static final long MAGIC = 0x5441545334454456L; // "VD4JSTAT" read as a little-endian long
    public static final int VERSION = 1;
    public static final int HEADER_SIZE = 1024;
    public static final int COUNTER_SLOTS = 32;
    public static final int NAME_BYTES = 64;
    public static final int COUNTER_NAME_BYTES = 24;
    public static final int SUB_BUCKET_BITS = 4;
    public static final int SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
    public static final int MAX_VALUE_BITS = 36;
    public static final int HISTOGRAM_BUCKETS = SUB_BUCKETS + (MAX_VALUE_BITS - SUB_BUCKET_BITS) * SUB_BUCKETS;
    public static final int RECORD_SIZE = (COUNTER_SLOTS + HISTOGRAM_BUCKETS) * 8;

    // header offsets
    static final long H_MAGIC = 0;
    static final long H_VERSION = 8;
    static final long H_HEADER_SIZE = 12;
    static final long H_RECORD_SIZE = 16;
    static final long H_RECORD_COUNT = 20;
    static final long H_RECORDS_OFFSET = 24;
    static final long H_COUNTER_COUNT = 32;
    static final long H_BUCKETS = 36;
    static final long H_SUB_BUCKET_BITS = 40;
    static final long H_CLOSED = 44;
    static final long H_PID = 48;
    static final long H_START_MILLIS = 56;
    static final long H_NAME = 64;
    static final long H_COUNTER_NAMES = 128;

    // counter slots of a record (index x 8 = byte offset)
    public static final int POPPED = 0;
    public static final int REQUESTS = 1;
    public static final int READ_BYTES = 2;
    public static final int WRITTEN_BYTES = 3;
    /** Completed requests by operation: OP_FIRST + one of the {@code OP_*} indexes. */
    public static final int OP_FIRST = 4;
    public static final int OP_READ = 0;
    public static final int OP_WRITE = 1;
    public static final int OP_FLUSH = 2;
    public static final int OP_DISCARD = 3;
    public static final int OP_WRITE_ZEROES = 4;
    /** Everything else: GET_ID and requests rejected before their type was known. */
    public static final int OP_OTHER = 5;
    public static final int OPS = 6;
    /** Failed requests by kind: ERR_FIRST + one of the {@code ERR_*} indexes. */
    public static final int ERR_FIRST = OP_FIRST + OPS;
    public static final int ERR_IO = 0;
    public static final int ERR_UNSUPPORTED = 1;
    public static final int ERR_CHAIN = 2;
    public static final int ERRORS = 3;
    public static final int FLUSHES = ERR_FIRST + ERRORS;
    public static final int WRITE_THROUGH_FLUSHES = FLUSHES + 1;
    public static final int KICKS = FLUSHES + 2;
    public static final int NOTIFICATIONS = FLUSHES + 3;
    public static final int LATENCY_SUM = FLUSHES + 4;
    public static final int LATENCY_MAX = FLUSHES + 5;
    public static final int HISTOGRAM = COUNTER_SLOTS;

    /** Operation names, indexed by {@code OP_*} (also the Prometheus {@code op} label). */
    public static final List<String> OP_NAMES = List.of("read", "write", "flush", "discard", "write_zeroes", "other");
    /** Error kinds, indexed by {@code ERR_*}. */
    public static final List<String> ERROR_NAMES = List.of("io", "unsupported", "chain");

    /** The name of every counter slot, written into the header. */
    static String counterName(int slot) {
        if (slot >= OP_FIRST && slot < OP_FIRST + OPS) {
            return "ops." + OP_NAMES.get(slot - OP_FIRST);
        }
        if (slot >= ERR_FIRST && slot < ERR_FIRST + ERRORS) {
            return "errors." + ERROR_NAMES.get(slot - ERR_FIRST);
        }
        return switch (slot) {
            case POPPED -> "popped";
            case REQUESTS -> "requests";
            case READ_BYTES -> "read_bytes";
            case WRITTEN_BYTES -> "written_bytes";
            case FLUSHES -> "flushes";
            case WRITE_THROUGH_FLUSHES -> "write_through_flushes";
            case KICKS -> "kicks";
            case NOTIFICATIONS -> "notifications";
            case LATENCY_SUM -> "latency_sum_ns";
            case LATENCY_MAX -> "latency_max_ns";
            default -> "";
        };
    }

    private StatsLayout() {}

    /** The histogram bucket of a latency in nanoseconds (negative values count as 0). */
    public static int bucketOf(long nanos) {
        if (nanos < SUB_BUCKETS) {
            return nanos < 0 ? 0 : (int) nanos;
        }
        int msb = 63 - Long.numberOfLeadingZeros(nanos);
        if (msb >= MAX_VALUE_BITS) {
            return HISTOGRAM_BUCKETS - 1;
        }
        int shift = msb - SUB_BUCKET_BITS;
        return SUB_BUCKETS + shift * SUB_BUCKETS + (int) ((nanos >>> shift) - SUB_BUCKETS);
    }

    /** The smallest value that falls in {@code bucket}. */
    public static long bucketLowerBound(int bucket) {
        if (bucket < SUB_BUCKETS) {
            return bucket;
        }
        int shift = (bucket - SUB_BUCKETS) / SUB_BUCKETS;
        int sub = (bucket - SUB_BUCKETS) % SUB_BUCKETS;
        return (long) (SUB_BUCKETS + sub) << shift;
    }

    /** The largest value that falls in {@code bucket}. */
    public static long bucketUpperBound(int bucket) {
        return bucket == HISTOGRAM_BUCKETS - 1 ? Long.MAX_VALUE : bucketLowerBound(bucket + 1) - 1;
    }
}
