package dev.silhouette.serve;

import dev.silhouette.api.Session;
import dev.silhouette.tensor.Tensor;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One model's queue and dynamic batcher ({@link BatchConfig}): {@code instances} worker threads each take
 * the oldest requests that fit in one batch, concatenate their inputs along the batch axis, run the
 * session once and hand every request its own rows of the outputs. The CPU backend computes each sample
 * independently of the others in its batch, so a batched answer is bit for bit the unbatched one
 * (checked by the tests). Every accepted request is answered: with its result, or UNAVAILABLE when the
 * queue is full, its timeout expires in the queue, or the server stops before it ran.
 */
final class Batcher implements AutoCloseable {
    private static final int QUEUED = 0, TAKEN = 1, EXPIRED = 2;

    /** A request waiting for its batch. */
    private final class Pending {
        final Map<String, Tensor> inputs;
        final int samples;
        final Set<String> outputs;
        final long enqueued = System.nanoTime();
        final CompletableFuture<Map<String, Tensor>> result = new CompletableFuture<>();
        final AtomicInteger state = new AtomicInteger(QUEUED);
        volatile ScheduledFuture<?> timeout;

        Pending(Map<String, Tensor> inputs, int samples, Set<String> outputs) {
            this.inputs = inputs;
            this.samples = samples;
            this.outputs = outputs;
        }
    }

    private final String model;
    private final Session session;
    private final BatchConfig config;
    private final Metrics.Model metrics;
    private final ScheduledExecutorService timer;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final ArrayDeque<Pending> queue = new ArrayDeque<>();
    private int queuedSamples;
    private int running;
    private boolean accepting = true;
    private boolean stopped;
    private final List<Thread> workers = new ArrayList<>();

    Batcher(String model, Session session, BatchConfig config, Metrics.Model metrics, ScheduledExecutorService timer) {
        this.model = model;
        this.session = session;
        this.config = config;
        this.metrics = metrics;
        this.timer = timer;
        metrics.pending = this::pending;
        for (int i = 0; i < config.instances(); i++) {
            Thread t = Thread.ofPlatform().daemon().name("silhouette-batcher-" + model + "-" + i).start(this::work);
            workers.add(t);
        }
    }

    BatchConfig config() {
        return config;
    }

    /** False once draining or closed. */
    boolean accepting() {
        lock.lock();
        try {
            return accepting;
        } finally {
            lock.unlock();
        }
    }

    /** Requests waiting (not yet running). */
    int pending() {
        lock.lock();
        try {
            return queue.size();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Queues a request whose inputs are checked ({@code samples} rows each); the future completes with its
     * outputs, or with an {@link InferenceError}.
     */
    CompletableFuture<Map<String, Tensor>> submit(Map<String, Tensor> inputs, int samples, Set<String> outputs) {
        if (samples > config.maxBatchSize()) {
            throw InferenceError.invalid("the request's batch of " + samples + " is larger than model " + model + "'s max_batch_size " + config.maxBatchSize());
        }
        Pending p = new Pending(inputs, samples, outputs);
        // Armed before the request is visible to the workers, who cancel it when they take the request.
        p.timeout = timer.schedule(() -> expire(p), config.timeout().toNanos(), TimeUnit.NANOSECONDS);
        lock.lock();
        try {
            String refusal = !accepting ? "model " + model + " is not accepting requests: the server is shutting down"
                    : queue.size() >= config.queueSize() ? "model " + model + "'s queue is full (queue_size " + config.queueSize() + "); try again later"
                    : null;
            if (refusal != null) {
                p.state.set(EXPIRED);
                p.timeout.cancel(false);
                throw InferenceError.unavailable(refusal);
            }
            queue.addLast(p);
            queuedSamples += samples;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        return p.result;
    }

    private void expire(Pending p) {
        if (!p.state.compareAndSet(QUEUED, EXPIRED)) return;
        lock.lock();
        try {
            if (queue.remove(p)) queuedSamples -= p.samples;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        p.result.completeExceptionally(InferenceError.unavailable("request to model " + model + " waited " + config.timeout().toMillis()
                + " ms (its timeout) in the queue without running"));
    }

    private void work() {
        while (true) {
            List<Pending> batch = next();
            if (batch == null) return;
            try {
                execute(batch);
            } finally {
                lock.lock();
                try {
                    running--;
                    changed.signalAll();
                } finally {
                    lock.unlock();
                }
            }
        }
    }

    /** Waits for a batch by the delay rule; null once stopped with nothing left. */
    private List<Pending> next() {
        lock.lock();
        try {
            while (true) {
                while (queue.isEmpty() && !stopped) changed.awaitUninterruptibly();
                if (queue.isEmpty()) return null;
                if (config.dynamicBatching() && !stopped) {
                    long leave = queue.peekFirst().enqueued + config.maxQueueDelay().toNanos();
                    // Wait for more requests while the batch is not full and its oldest request may still wait.
                    while (!queue.isEmpty() && queuedSamples < config.maxBatchSize() && accepting && !stopped) {
                        long left = leave - System.nanoTime();
                        if (left <= 0) break;
                        try {
                            changed.awaitNanos(left);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            break;
                        }
                        if (!queue.isEmpty()) leave = Math.min(leave, queue.peekFirst().enqueued + config.maxQueueDelay().toNanos());
                    }
                    if (queue.isEmpty()) continue;
                }
                List<Pending> batch = new ArrayList<>();
                int samples = 0;
                while (!queue.isEmpty()) {
                    Pending p = queue.peekFirst();
                    if (!batch.isEmpty() && (!config.dynamicBatching() || samples + p.samples > config.maxBatchSize())) break;
                    queue.pollFirst();
                    queuedSamples -= p.samples;
                    if (!p.state.compareAndSet(QUEUED, TAKEN)) continue;
                    batch.add(p);
                    samples += p.samples;
                }
                if (batch.isEmpty()) continue;
                running++;
                return batch;
            }
        } finally {
            lock.unlock();
        }
    }

    private void execute(List<Pending> batch) {
        long start = System.nanoTime();
        for (Pending p : batch) {
            p.timeout.cancel(false);
            metrics.queue.observe((start - p.enqueued) / 1e9);
        }
        Map<String, Tensor> outputs;
        Set<String> requested = new LinkedHashSet<>();
        int samples = 0;
        for (Pending p : batch) {
            requested.addAll(p.outputs);
            samples += p.samples;
        }
        try {
            outputs = session.run(batch.size() == 1 ? batch.getFirst().inputs : concatenate(batch, samples), requested);
        } catch (RuntimeException e) {
            InferenceError error = new InferenceError(InferenceError.Reason.INTERNAL, "model " + model + " failed on a batch of " + samples + ": " + e.getMessage());
            for (Pending p : batch) p.result.completeExceptionally(error);
            return;
        }
        long done = System.nanoTime();
        metrics.compute.observe((done - start) / 1e9);
        metrics.executions.increment();
        metrics.inferences.add(samples);
        metrics.batchSize.observe(samples);
        int row = 0;
        for (Pending p : batch) {
            Map<String, Tensor> mine = new LinkedHashMap<>();
            for (String o : p.outputs) {
                Tensor t = outputs.get(o);
                mine.put(o, batch.size() == 1 ? t : t.slice(row, row + p.samples));
            }
            row += p.samples;
            metrics.request.observe((done - p.enqueued) / 1e9);
            p.result.complete(mine);
        }
    }

    private static Map<String, Tensor> concatenate(List<Pending> batch, int samples) {
        Map<String, Tensor> feed = new LinkedHashMap<>();
        for (String name : batch.getFirst().inputs.keySet()) {
            Tensor first = batch.getFirst().inputs.get(name);
            int per = first.shape().sampleSize();
            float[] data = new float[samples * per];
            int at = 0;
            for (Pending p : batch) {
                float[] d = p.inputs.get(name).data();
                System.arraycopy(d, 0, data, at, d.length);
                at += d.length;
            }
            feed.put(name, new Tensor(first.shape().withDim(0, samples), data));
        }
        return feed;
    }

    /**
     * Stops taking requests and waits up to {@code bound} for the queued and running ones to finish;
     * whatever is still queued then is answered UNAVAILABLE. True when everything ran.
     */
    boolean drain(Duration bound) {
        long end = System.nanoTime() + bound.toNanos();
        lock.lock();
        try {
            accepting = false;
            changed.signalAll();
            while (!queue.isEmpty() || running > 0) {
                long left = end - System.nanoTime();
                if (left <= 0) break;
                try {
                    changed.awaitNanos(left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            return queue.isEmpty() && running == 0;
        } finally {
            lock.unlock();
        }
    }

    /** Stops the workers; requests still queued are answered UNAVAILABLE. */
    @Override
    public void close() {
        List<Pending> left;
        lock.lock();
        try {
            accepting = false;
            stopped = true;
            left = new ArrayList<>(queue);
            queue.clear();
            queuedSamples = 0;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        for (Pending p : left) {
            if (p.state.compareAndSet(QUEUED, EXPIRED)) {
                p.timeout.cancel(false);
                p.result.completeExceptionally(InferenceError.unavailable("model " + model + " was unloaded before the request ran"));
            }
        }
        for (Thread t : workers) {
            try {
                t.join(Duration.ofSeconds(30));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        session.close();
    }

}
