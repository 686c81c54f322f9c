package dev.silhouette.backend.cpu;

import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;
import org.testng.annotations.AfterMethod;
import org.testng.annotations.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** The CPU's worker pool: every task once, failures reach the caller, nesting runs inline, results independent of the thread count. */
public class WorkersTest {
    private final int configured = Workers.threads();

    @AfterMethod
    public void restore() {
        Workers.setThreads(configured);
    }

    @Test
    public void everyTaskRunsOnceAndNestedRegionsRunInlineOnTheirThread() {
        Workers.setThreads(3);
        AtomicIntegerArray outer = new AtomicIntegerArray(50), inner = new AtomicIntegerArray(50 * 7);
        Workers.run(50, (t, w) -> {
            outer.incrementAndGet(t);
            Thread self = Thread.currentThread();
            Workers.run(7, (u, w2) -> {
                assertEquals(Thread.currentThread(), self, "a nested region stays on its task's thread");
                assertEquals(w2, w, "and on its worker's scratch");
                inner.incrementAndGet(t * 7 + u);
            });
        });
        for (int i = 0; i < outer.length(); i++) assertEquals(outer.get(i), 1, "outer task " + i);
        for (int i = 0; i < inner.length(); i++) assertEquals(inner.get(i), 1, "inner task " + i);
    }

    @Test
    public void aFailingTaskFailsTheRegionAndThePoolStillWorks() {
        Workers.setThreads(2);
        IllegalStateException e = expectThrows(IllegalStateException.class, () -> Workers.run(40, (t, w) -> {
            if (t == 17) throw new IllegalStateException("task 17");
        }));
        assertEquals(e.getMessage(), "task 17");
        AtomicIntegerArray seen = new AtomicIntegerArray(40);
        Workers.run(40, (t, w) -> seen.incrementAndGet(t));
        for (int i = 0; i < 40; i++) assertEquals(seen.get(i), 1, "task " + i + " after a failure");
    }

    @Test
    public void aThreadCountOutsideOneTo1024IsRefusedByName() {
        IllegalArgumentException e = expectThrows(IllegalArgumentException.class, () -> Workers.setThreads(0));
        assertTrue(e.getMessage().contains("threads") && e.getMessage().contains("1024"), e.getMessage());
        assertEquals(Workers.threads(), configured, "a refused count changes nothing");
    }

    @Test
    public void convolutionGivesTheSameBitsOnOneTwoAndFiveThreads() {
        // Batch 1 splits pixels across tasks, batch 6 images; both must not depend on how many threads share them.
        for (int batch : new int[] {1, 6}) {
            Tensor x = Tensor.uniform(Shape.of(batch, 40, 23, 19), -1, 1, 3);
            Op.Conv2d op = new Op.Conv2d(40, 30, Window.square(3, 1, 1), 1, true);
            Tensor w = Tensor.uniform(Shape.of(30, 40, 3, 3), -1, 1, 4), b = Tensor.uniform(Shape.of(30), -1, 1, 5);
            Workers.setThreads(1);
            float[] one = CpuOps.conv2d(x, w, b, op).data();
            for (int threads : new int[] {2, 5}) {
                Workers.setThreads(threads);
                float[] many = CpuOps.conv2d(x, w, b, op).data();
                for (int i = 0; i < one.length; i++) {
                    assertEquals(Float.floatToRawIntBits(many[i]), Float.floatToRawIntBits(one[i]), "batch " + batch + ", " + threads + " threads, output " + i);
                }
            }
        }
    }
}
