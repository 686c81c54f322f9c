package dev.silhouette.serve;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.tensor.Tensor;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The CPU backend behind a gate the test opens: a batch that enters waits until released, so queue
 * states (full, waiting, draining) are reached by order of events, not by timing.
 */
final class HeldBackend implements Backend {
    private final CpuBackend cpu = new CpuBackend();
    private final Semaphore gate = new Semaphore(0);
    final AtomicInteger calls = new AtomicInteger();
    volatile CountDownLatch entered = new CountDownLatch(1);
    volatile boolean holding = true;

    @Override
    public String name() {
        return "held-cpu";
    }

    @Override
    public Map<String, Tensor> run(Graph graph, Map<String, Tensor> inputs, List<String> requested) {
        calls.incrementAndGet();
        entered.countDown();
        if (holding) gate.acquireUninterruptibly();
        return cpu.run(graph, inputs, requested);
    }

    /** Lets one held batch through. */
    void release() {
        gate.release();
    }

    /** Stops holding: every batch runs at once from now on. */
    void open() {
        holding = false;
        gate.release(1000);
    }

    void awaitEntered() throws InterruptedException {
        entered.await();
    }
}
