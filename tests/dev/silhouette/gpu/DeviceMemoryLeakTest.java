package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.CudaBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Passes;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/** 10,000 inferences: the caching allocator stops calling cuMemAlloc, and closing gives all memory back. */
@Test(groups = "gpu")
public class DeviceMemoryLeakTest {

    @Test
    public void tenThousandInferencesLeaveDeviceMemoryWhereItStarted() {
        GpuGuard.requireCuda();
        Graph graph = Passes.foldBatchNorm(ModelLoader.load(ModelLoader.BUNDLED).graph());
        Tensor[] inputs = {Tensor.uniform(Shape.of(1, 1, 28, 28), 0, 1, 1), Tensor.uniform(Shape.of(4, 1, 28, 28), 0, 1, 2)};
        long freeBefore;
        long allocationsAfterWarmup, allocationsAtEnd;
        try (CudaBackend warm = new CudaBackend(0)) {
            freeBefore = warm.freeDeviceMemory();
        }
        try (CudaBackend backend = new CudaBackend(0)) {
            for (int i = 0; i < 10; i++) backend.run(graph, Map.of("input", inputs[i % 2]));
            allocationsAfterWarmup = backend.allocator().driverAllocations();
            for (int i = 0; i < 10_000; i++) backend.run(graph, Map.of("input", inputs[i % 2]));
            allocationsAtEnd = backend.allocator().driverAllocations();
            assertEquals(backend.allocator().bytesInUse(), backend.retainedBytes(), "only cached weights and workspace stay in use between runs");
        }
        assertEquals(allocationsAtEnd, allocationsAfterWarmup, "steady-state inference must not call cuMemAlloc");
        try (CudaBackend after = new CudaBackend(0)) {
            long freeAfter = after.freeDeviceMemory();
            // The driver allocates at 2 MiB granularity; anything more is a leak.
            assertTrue(Math.abs(freeAfter - freeBefore) <= 2 << 20, "free device memory " + freeBefore + " before, " + freeAfter + " after");
        }
    }
}
