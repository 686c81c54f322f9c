package dev.silhouette.serve;

import dev.silhouette.api.Model;
import dev.silhouette.api.Session;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.AfterClass;
import org.testng.annotations.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** The dynamic batcher's semantics, reached by order of events through a held backend (no timed assertions). */
public class BatcherTest {
    static final Model MODEL = Model.load(ModelLoader.BUNDLED);
    static final Session REFERENCE = MODEL.session("cpu");
    final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();

    @AfterClass
    public void close() {
        timer.shutdownNow();
    }

    static Tensor images(int n, long seed) {
        return Tensor.uniform(Shape.of(n, 1, 28, 28), 0, 1, seed);
    }

    Batcher batcher(HeldBackend backend, BatchConfig config, Metrics.Model metrics) {
        return new Batcher("m", MODEL.session(backend), config, metrics, timer);
    }

    static InferenceError failure(CompletableFuture<?> f) {
        CompletionException e = expectThrows(CompletionException.class, f::join);
        return Server.unwrap(e);
    }

    @Test
    public void queuedRequestsShareOneBatchAndGetTheirOwnRowsBitForBit() throws Exception {
        HeldBackend backend = new HeldBackend();
        Metrics.Model metrics = new Metrics.Model(16);
        BatchConfig config = new BatchConfig(16, true, Duration.ofMillis(1), 64, Duration.ofMinutes(5), 1);
        try (Batcher b = batcher(backend, config, metrics)) {
            Set<String> outputs = Set.of("fc", "silhouette");
            CompletableFuture<Map<String, Tensor>> first = b.submit(Map.of("input", images(1, 0)), 1, outputs);
            backend.awaitEntered();
            // While the first batch is held, four requests of 1, 2, 3 and 1 samples queue up: together 7 <= 16.
            List<Tensor> inputs = List.of(images(1, 1), images(2, 2), images(3, 3), images(1, 4));
            List<CompletableFuture<Map<String, Tensor>>> later = new ArrayList<>();
            for (Tensor x : inputs) later.add(b.submit(Map.of("input", x), x.shape().dim(0), outputs));
            backend.open();
            first.join();
            for (int i = 0; i < inputs.size(); i++) {
                Map<String, Tensor> got = later.get(i).join();
                Map<String, Tensor> alone = REFERENCE.run(Map.of("input", inputs.get(i)));
                for (String o : outputs) {
                    assertEquals(got.get(o).shape(), alone.get(o).shape(), o);
                    assertEquals(got.get(o).data(), alone.get(o).data(), "request " + i + " output " + o);
                }
            }
            assertEquals(backend.calls.get(), 2, "the four queued requests ran as one batch");
            assertEquals(metrics.executions.sum(), 2);
            assertEquals(metrics.inferences.sum(), 8);
        }
    }

    @Test
    public void aBatchNeverExceedsTheMaxBatchSize() throws Exception {
        HeldBackend backend = new HeldBackend();
        Metrics.Model metrics = new Metrics.Model(4);
        try (Batcher b = batcher(backend, new BatchConfig(4, true, Duration.ZERO, 64, Duration.ofMinutes(5), 1), metrics)) {
            CompletableFuture<?> first = b.submit(Map.of("input", images(1, 0)), 1, Set.of("fc"));
            backend.awaitEntered();
            List<CompletableFuture<Map<String, Tensor>>> later = new ArrayList<>();
            for (int i = 0; i < 5; i++) later.add(b.submit(Map.of("input", images(3, 10 + i)), 3, Set.of("fc")));
            backend.open();
            first.join();
            for (CompletableFuture<Map<String, Tensor>> f : later) assertEquals(f.join().get("fc").shape(), Shape.of(3, 10));
            // 3 + 3 > 4: each request of 3 runs alone.
            assertEquals(metrics.executions.sum(), 6);
            InferenceError tooBig = expectThrows(InferenceError.class, () -> b.submit(Map.of("input", images(5, 0)), 5, Set.of("fc")));
            assertEquals(tooBig.reason(), InferenceError.Reason.INVALID);
            assertTrue(tooBig.getMessage().contains("max_batch_size 4"), tooBig.getMessage());
        }
    }

    @Test
    public void aFullQueueRefusesAtOnceAndTheQueuedStillRun() throws Exception {
        HeldBackend backend = new HeldBackend();
        Metrics.Model metrics = new Metrics.Model(8);
        try (Batcher b = batcher(backend, new BatchConfig(8, true, Duration.ZERO, 2, Duration.ofMinutes(5), 1), metrics)) {
            CompletableFuture<Map<String, Tensor>> running = b.submit(Map.of("input", images(1, 0)), 1, Set.of("fc"));
            backend.awaitEntered();
            CompletableFuture<Map<String, Tensor>> q1 = b.submit(Map.of("input", images(1, 1)), 1, Set.of("fc"));
            CompletableFuture<Map<String, Tensor>> q2 = b.submit(Map.of("input", images(1, 2)), 1, Set.of("fc"));
            assertEquals(b.pending(), 2);
            InferenceError full = expectThrows(InferenceError.class, () -> b.submit(Map.of("input", images(1, 3)), 1, Set.of("fc")));
            assertEquals(full.reason(), InferenceError.Reason.UNAVAILABLE);
            assertTrue(full.getMessage().contains("queue is full (queue_size 2)"), full.getMessage());
            backend.open();
            assertEquals(running.join().get("fc").data(), REFERENCE.run(Map.of("input", images(1, 0))).get("fc").data());
            assertEquals(q1.join().get("fc").data(), REFERENCE.run(Map.of("input", images(1, 1))).get("fc").data());
            assertEquals(q2.join().get("fc").data(), REFERENCE.run(Map.of("input", images(1, 2))).get("fc").data());
        }
    }

    @Test
    public void aRequestWhoseTimeoutExpiresInTheQueueIsAnsweredUnavailable() throws Exception {
        HeldBackend backend = new HeldBackend();
        try (Batcher b = batcher(backend, new BatchConfig(8, true, Duration.ZERO, 8, Duration.ofMillis(20), 1), new Metrics.Model(8))) {
            CompletableFuture<Map<String, Tensor>> running = b.submit(Map.of("input", images(1, 0)), 1, Set.of("fc"));
            backend.awaitEntered();
            CompletableFuture<Map<String, Tensor>> waiting = b.submit(Map.of("input", images(1, 1)), 1, Set.of("fc"));
            // The worker is held: the waiting request can only end by its timeout.
            InferenceError e = failure(waiting);
            assertEquals(e.reason(), InferenceError.Reason.UNAVAILABLE);
            assertTrue(e.getMessage().contains("waited 20 ms"), e.getMessage());
            assertEquals(b.pending(), 0);
            backend.open();
            running.join();
        }
    }

    @Test
    public void withoutDynamicBatchingEachRequestRunsAlone() throws Exception {
        HeldBackend backend = new HeldBackend();
        Metrics.Model metrics = new Metrics.Model(8);
        try (Batcher b = batcher(backend, new BatchConfig(8, false, Duration.ofMillis(5), 64, Duration.ofMinutes(5), 1), metrics)) {
            CompletableFuture<?> first = b.submit(Map.of("input", images(1, 0)), 1, Set.of("fc"));
            backend.awaitEntered();
            List<CompletableFuture<Map<String, Tensor>>> later = new ArrayList<>();
            for (int i = 0; i < 3; i++) later.add(b.submit(Map.of("input", images(1, i)), 1, Set.of("fc")));
            backend.open();
            first.join();
            later.forEach(CompletableFuture::join);
            assertEquals(metrics.executions.sum(), 4);
        }
    }

    @Test
    public void drainRunsWhatWasAcceptedAndRefusesTheRest() throws Exception {
        HeldBackend backend = new HeldBackend();
        Batcher b = batcher(backend, new BatchConfig(8, true, Duration.ZERO, 8, Duration.ofMinutes(5), 1), new Metrics.Model(8));
        CompletableFuture<Map<String, Tensor>> running = b.submit(Map.of("input", images(1, 0)), 1, Set.of("fc"));
        backend.awaitEntered();
        CompletableFuture<Map<String, Tensor>> queued = b.submit(Map.of("input", images(1, 1)), 1, Set.of("fc"));
        AtomicBoolean drained = new AtomicBoolean();
        Thread drain = Thread.ofPlatform().start(() -> drained.set(b.drain(Duration.ofMinutes(1))));
        // Once draining, a new request is refused; the drain cannot end while the batch is held.
        while (b.accepting()) Thread.onSpinWait();
        InferenceError refused = expectThrows(InferenceError.class, () -> b.submit(Map.of("input", images(1, 2)), 1, Set.of("fc")));
        assertEquals(refused.reason(), InferenceError.Reason.UNAVAILABLE);
        assertTrue(refused.getMessage().contains("shutting down"), refused.getMessage());
        assertFalse(running.isDone());
        backend.open();
        drain.join();
        assertTrue(drained.get());
        assertEquals(running.join().get("fc").data(), REFERENCE.run(Map.of("input", images(1, 0))).get("fc").data());
        assertEquals(queued.join().get("fc").data(), REFERENCE.run(Map.of("input", images(1, 1))).get("fc").data());
        b.close();
    }
}
