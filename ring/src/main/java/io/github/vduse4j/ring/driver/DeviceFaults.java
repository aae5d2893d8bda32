package io.github.vduse4j.ring.driver;

/**
 * What a device wrote back wrong into a {@link DriverRing}: counts every fault and remembers the first one, as
 * numbers, so recording it allocates nothing; {@link #describe()} makes the text once somebody asks. One thread
 * only (the ring's).
 */
public final class DeviceFaults {
    /** A used element names a buffer id (split: head index) outside the ring. */
    public static final int ID_OUT_OF_RANGE = 1;
    /** A used element names a buffer id that is not in flight (never handed out, or already used). */
    public static final int ID_NOT_IN_FLIGHT = 2;
    /** A used element says more bytes were written than the buffer has device-writable bytes. */
    public static final int LENGTH_TOO_LONG = 3;
    /** Split: the used index moved past more elements than there are buffers in flight. */
    public static final int USED_INDEX_JUMP = 4;

    private final String ring;
    private long count;
    private int kind;
    private int id;
    private long value;
    private long limit;

    /** @param ring what the faults are in ("split ring", "packed ring"), for {@link #describe()} */
    public DeviceFaults(String ring) {
        this.ring = ring;
    }

    /**
     * Counts one fault; the first one's {@code kind}, buffer {@code id}, offending {@code value} (length or index
     * distance) and the {@code limit} it broke are kept for {@link #describe()}.
     */
    public void record(int kind, int id, long value, long limit) {
        if (count++ == 0) {
            this.kind = kind;
            this.id = id;
            this.value = value;
            this.limit = limit;
        }
    }

    public long count() {
        return count;
    }

    public void clear() {
        count = 0;
        kind = 0;
    }

    /** The first fault in words, or null if there was none. */
    public String describe() {
        if (count == 0) {
            return null;
        }
        String first = switch (kind) {
            case ID_OUT_OF_RANGE -> "used buffer id " + id + " is outside the ring of " + limit;
            case ID_NOT_IN_FLIGHT -> "used buffer id " + id + " is not in flight";
            case LENGTH_TOO_LONG -> "used buffer id " + id + " claims " + value + " bytes written, its writable part has "
                    + limit;
            case USED_INDEX_JUMP -> "used index moved by " + value + " with " + limit + " buffers in flight";
            default -> "fault " + kind;
        };
        return "the device broke the " + ring + ": " + first + (count > 1 ? " (" + count + " faults)" : "");
    }
}
