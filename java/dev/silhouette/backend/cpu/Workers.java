package dev.silhouette.backend.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The CPU backend's one pool of compute threads, persistent for the life of the JVM. A parallel region
 * runs tasks 0..n-1 on the calling thread and the workers; a region started from inside a task runs
 * inline on that thread, so parallelism is never nested. Regions from different caller threads take
 * turns (each one already uses every core). Every participant owns scratch buffers (packing panels,
 * column matrices) that live as long as the pool, instead of one allocation per call.
 *
 * <p>The thread count is {@link #setThreads}, else the system property {@code silhouette.threads}, else
 * the environment variable {@code SILHOUETTE_THREADS}, else the number of available processors.
 */
public final class Workers {
    private Workers() {}

    /** The body of a region: task {@code task} on participant {@code worker} (0 is the caller). */
    @FunctionalInterface
    public interface Body {
        void run(int task, int worker);
    }

    /** Kinds of per-participant scratch; a task and the GEMM it calls use different kinds. */
    public enum Scratch { PACK_A, PACK_B, TILE, COLUMNS, GRADIENT }

    private static final ReentrantLock REGION = new ReentrantLock();
    private static volatile Pool pool;
    /** The thread count asked for; 0 while the configured one is unreadable ({@link #misconfigured} says why). */
    private static volatile int requested;
    private static String misconfigured;

    static {
        String value = System.getProperty("silhouette.threads"), source = "system property silhouette.threads";
        if (value == null) {
            value = System.getenv("SILHOUETTE_THREADS");
            source = "environment variable SILHOUETTE_THREADS";
        }
        if (value == null || value.isBlank()) {
            requested = Runtime.getRuntime().availableProcessors();
        } else {
            try {
                requested = Integer.parseInt(value.trim());
            } catch (NumberFormatException e) {
                requested = 0;
            }
            if (requested < 1 || requested > 1024) {
                requested = 0;
                misconfigured = source + ": '" + value + "' is not a thread count between 1 and 1024";
            }
        }
    }

    /** Sets the number of compute threads (caller included) for regions started from now on. */
    public static void setThreads(int threads) {
        if (threads < 1 || threads > 1024) throw new IllegalArgumentException("threads: " + threads + " is not between 1 and 1024");
        requested = threads;
    }

    /** The number of compute threads regions use; a malformed setting fails here, naming where it came from. */
    public static int threads() {
        int n = requested;
        if (n == 0) throw new IllegalArgumentException(misconfigured);
        return n;
    }

    /** Runs {@code body} for tasks 0..tasks-1, spread over the pool; returns when all have finished. */
    public static void run(int tasks, Body body) {
        if (tasks <= 0) return;
        Thread self = Thread.currentThread();
        if (self instanceof Worker || REGION.isHeldByCurrentThread()) {
            int worker = self instanceof Worker w ? w.index : 0;
            for (int t = 0; t < tasks; t++) body.run(t, worker);
            return;
        }
        int threads = threads();
        REGION.lock();
        try {
            if (tasks == 1 || threads == 1) {
                for (int t = 0; t < tasks; t++) body.run(t, 0);
                return;
            }
            Pool p = pool;
            if (p == null || p.workers.length != threads - 1) {
                if (p != null) p.shutdown();
                pool = p = new Pool(threads - 1);
            }
            p.run(tasks, body);
        } finally {
            REGION.unlock();
        }
    }

    /** {@code body} for 0..n-1 in about four contiguous runs per thread (fewer tasks than items when n is large). */
    public static void forEach(int n, java.util.function.IntConsumer body) {
        int tasks = Math.min(n, 4 * threads());
        run(tasks, (t, w) -> {
            for (int i = (int) ((long) t * n / tasks), end = (int) ((long) (t + 1) * n / tasks); i < end; i++) body.accept(i);
        });
    }

    /**
     * This participant's scratch of the given kind, at least {@code floats} long (contents undefined).
     * Outside a region on a thread of its own, a fresh array.
     */
    public static float[] scratch(Scratch kind, int floats) {
        Thread self = Thread.currentThread();
        float[][] own;
        if (self instanceof Worker w) own = w.scratch;
        else if (REGION.isHeldByCurrentThread()) own = CALLER;
        else return new float[floats];
        float[] s = own[kind.ordinal()];
        if (s == null || s.length < floats) own[kind.ordinal()] = s = new float[Math.max(floats, s == null ? 0 : s.length + s.length / 2)];
        return s;
    }

    /** The caller's scratch, used only while it holds the region lock. */
    private static final float[][] CALLER = new float[Scratch.values().length][];

    private static final class Worker extends Thread {
        final int index;
        final Pool pool;
        final float[][] scratch = new float[Scratch.values().length][];
        int seen, idle;

        Worker(Pool pool, int index) {
            super("silhouette-cpu-" + index);
            this.pool = pool;
            this.index = index;
            setDaemon(true);
        }

        @Override
        public void run() {
            while (true) {
                int gen = pool.await(this);
                if (gen < 0) return;
                pool.work(index);
            }
        }
    }

    /** Spin iterations (about 20 ns each) a worker waits for the next region before it parks. */
    private static final int SPIN = 10_000;

    private static final class Pool {
        final Worker[] workers;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger active = new AtomicInteger();
        volatile int generation;
        volatile boolean stopped;
        volatile int tasks;
        volatile Body body;
        volatile Throwable failure;
        volatile Thread owner;

        Pool(int helpers) {
            workers = new Worker[helpers];
            for (int i = 0; i < helpers; i++) (workers[i] = new Worker(this, i + 1)).start();
        }

        void run(int n, Body b) {
            owner = Thread.currentThread();
            body = b;
            tasks = n;
            failure = null;
            next.set(0);
            int helpers = Math.min(workers.length, n - 1);
            active.set(helpers);
            generation++;
            for (int i = 0; i < helpers; i++) LockSupport.unpark(workers[i]);
            work(0);
            // Short spin first: the helpers usually finish within microseconds of the caller.
            for (int spin = 0; active.get() > 0; spin++) {
                if (spin < 2000) Thread.onSpinWait();
                else LockSupport.parkNanos(this, 50_000);
            }
            body = null;
            Throwable f = failure;
            if (f instanceof RuntimeException e) throw e;
            if (f instanceof Error e) throw e;
            if (f != null) throw new IllegalStateException(f);
        }

        /** Blocks until a region this worker takes part in starts; -1 when the pool stops. */
        int await(Worker w) {
            while (true) {
                if (stopped) return -1;
                int gen = generation;
                if (gen != w.seen && w.index <= Math.min(workers.length, tasks - 1)) {
                    w.seen = gen;
                    w.idle = 0;
                    return gen;
                }
                if (gen != w.seen) w.seen = gen;
                // Regions come back to back in a forward pass: spin a little before parking, since waking a
                // parked thread costs more than most regions' tasks on a busy machine.
                if (++w.idle < SPIN) {
                    Thread.onSpinWait();
                    continue;
                }
                w.idle = 0;
                LockSupport.park(this);
            }
        }

        void work(int worker) {
            try {
                Body b = body;
                int n = tasks;
                for (int t = next.getAndIncrement(); t < n; t = next.getAndIncrement()) b.run(t, worker);
            } catch (Throwable e) {
                if (failure == null) failure = e;
                next.set(Integer.MAX_VALUE / 2);
            } finally {
                if (worker != 0 && active.decrementAndGet() == 0) LockSupport.unpark(owner);
            }
        }

        void shutdown() {
            stopped = true;
            for (Worker w : workers) LockSupport.unpark(w);
        }
    }
}
