package io.github.vduse4j.engine;

import io.github.vduse4j.bindings.CallState;
import io.github.vduse4j.bindings.EventFd;
import io.github.vduse4j.bindings.FileIo;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import org.jctools.queues.atomic.MpscAtomicArrayQueue;

/**
 * Hands items (finished requests) from any number of threads to one consumer, a queue's poller, and wakes it
 * through an eventfd it sleeps on. Bounded and lock-free: JCTools' {@link MpscAtomicArrayQueue} (the
 * {@code AtomicReferenceArray}/field-updater flavour, which does not touch {@code sun.misc.Unsafe}) of preallocated
 * items, so a handoff allocates nothing; the capacity must cover every item that can be outstanding at once (a
 * queue's request slots), so {@link #offer} never finds it full unless an item is handed over twice.
 *
 * <p>Wake-ups are coalesced: a producer signals the eventfd only when it flips {@code signalled} from false to true
 * ({@code getAndSet}, a full barrier after its element store), and the consumer clears the flag (a volatile store)
 * before it drains. So an element is either seen by the drain that follows the clear, or its producer flipped the
 * flag after the clear and wrote the eventfd: the poller never sleeps past a completion, and a burst of completions
 * costs one {@code write(2)} per poller pass, not one per request.
 *
 * <p>Threads: {@link #offer} from any thread; {@link #poll}, {@link #beginDrain} and {@link #close} from the consumer.
 */
public final class CompletionHandoff<T> implements AutoCloseable {
    private static final VarHandle SIGNALLED;
    /** errno capture for producers' eventfd writes (one per producer thread, made on its first signal). */
    private static final ThreadLocal<CallState> PRODUCER_STATE = ThreadLocal.withInitial(CallState::new);

    static {
        try {
            SIGNALLED = MethodHandles.lookup().findVarHandle(CompletionHandoff.class, "signalled", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final MpscAtomicArrayQueue<T> queue;
    private final int fd;
    private final boolean ownsFd;
    /** Accessed through {@link #SIGNALLED}: true from a producer's flip until the consumer's next drain. */
    @SuppressWarnings("unused")
    private volatile boolean signalled;
    /** Whether anything ever arrived through the handoff (consumer thread only). */
    private boolean used;

    /**
     * @param capacity  the most items outstanding at once (rounded up to a power of two)
     * @param wakeFd    an eventfd the consumer already sleeps on (a backend's completion eventfd), or -1 to make one
     */
    public CompletionHandoff(int capacity, int wakeFd) {
        this.queue = new MpscAtomicArrayQueue<>(Math.max(2, capacity));
        if (wakeFd >= 0) {
            this.fd = wakeFd;
            this.ownsFd = false;
        } else {
            this.fd = EventFd.create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK);
            this.ownsFd = true;
        }
    }

    /** The eventfd producers signal. */
    public int fd() {
        return fd;
    }

    /** Consumer only: true once an item has been drained through this handoff. */
    public boolean used() {
        return used;
    }

    /**
     * Any thread: hands {@code item} to the consumer and wakes it if it may be asleep. No allocation, no lock.
     *
     * @throws IllegalStateException if the queue is full, which means an item was offered twice (a caller bug)
     */
    public void offer(T item) {
        if (!queue.offer(item)) {
            throw new IllegalStateException("completion handoff full: a request was completed twice");
        }
        // The getAndSet is a full fence: the element store above is visible before the flag is read.
        if (!(boolean) SIGNALLED.getAndSet(this, true)) {
            // A failed write (EBADF during teardown) changes nothing: the consumer is gone.
            EventFd.signalRaw(PRODUCER_STATE.get(), fd, 1);
        }
    }


    /**
     * Consumer only: returns true when producers may have handed something over since the last call, and clears
     * that mark, so drain with {@link #poll} until null afterwards. A plain volatile load when nothing came.
     */
    public boolean beginDrain() {
        if (!signalled) {
            return false;
        }
        // Clear before draining (a volatile store, ordered before the polls below): see the class comment.
        SIGNALLED.setVolatile(this, false);
        used = true;
        return true;
    }

    /** Consumer only: the next item handed over, or null. */
    public T poll() {
        return queue.relaxedPoll();
    }

    @Override
    public void close() {
        if (ownsFd) {
            FileIo.close(fd);
        }
    }
}
