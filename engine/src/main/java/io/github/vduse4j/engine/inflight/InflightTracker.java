package io.github.vduse4j.engine.inflight;

/**
 * One queue's side of the inflight buffer (spec "Inflight I/O tracking") as a queue (vhost-user {@code VringQueue}, VDUSE {@code TrackedVirtqueue}) drives it on the
 * poller thread: every chain popped from the ring, every completion, every publication. Hot path: no allocation, no
 * exception, no lock, and no index read back from the shared buffer (the frontend can write it at any time), so
 * nothing it holds can make these methods fail or loop.
 */
public interface InflightTracker {
    /**
     * Receiving an available buffer: chain {@code id} (split: head index; packed: buffer id) was popped from ring
     * slots {@code [firstSlot, endSlot)} (packed: descriptor ring indexes, wrapping at the size; equal bounds mean the
     * whole ring). Not called for resubmitted chains: those are tracked already.
     */
    void popped(int id, int firstSlot, int endSlot);

    /** Supplying a used buffer: chain {@code id} was completed (staged, not yet visible to the driver). */
    void completed(int id);

    /**
     * Right before the ring publishes the staged completions; {@code usedIdx}/{@code usedWrap} is the ring's used
     * position after them (split: u16 used index; packed: descriptor index and wrap counter).
     */
    void publishing(int usedIdx, boolean usedWrap);

    /** Right after the ring published them (same arguments as {@link #publishing}). */
    void published(int usedIdx, boolean usedWrap);
}
