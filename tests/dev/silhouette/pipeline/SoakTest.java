package dev.silhouette.pipeline;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Op;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;
import org.testng.annotations.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;

/**
 * 10,000 inferences through the Java API on the CPU (a small network with the silhouette branch on 32 x 32 inputs,
 * alternately in FP32 and region-quantized by a plan): after warm-up neither the heap in use after GC nor
 * the JVM's native buffers grow. The same loop with a planted leak (a buffer kept per call, on the heap
 * or native) fails the same check, so the check can fail. The bundled model's longer soak is recorded in
 * docs/results/soak.txt (SoakRun).
 */
public class SoakTest {
    static final int INFERENCES = 10_000, EVERY = 1_000, WARM_UP_SAMPLES = 2;
    /**
     * Input side: large enough that a convolution's column buffer (about 70 KB) kept past its call shows as
     * growth; CpuOps.conv2d did that through a per-call ThreadLocal until 880ca72, and this soak failed on it.
     */
    static final int SIDE = 32;
    /** Growth allowed after warm-up: collection noise is some kilobytes; a kilobyte kept per call is 8 MB. */
    static final long ALLOWED_GROWTH = 2L << 20;
    /** The planted leaks need neither the large input nor all 10,000 calls to show (3,000 kilobytes past warm-up). */
    static final int LEAK_SIDE = 12, LEAK_INFERENCES = 5_000;

    /** Conv stem, the silhouette branch, two receiving convolutions, pooling and a classifier: every kind of region layer. */
    static Graph network() {
        return network(SIDE);
    }

    static Graph network(int side) {
        GraphBuilder b = new GraphBuilder(5);
        String x = b.relu("relu0", b.conv("conv0", b.input("input", 2, side, side), 6, Window.square(3, 1, 1), 1, true));
        b.add(Models.SILHOUETTE, new Op.Sigmoid(), b.conv(Models.SILHOUETTE + ".conv", x, 1, Window.square(1, 1, 0), 1, true));
        x = b.relu("relu1", b.conv("conv1", x, 8, Window.square(3, 2, 1), 1, true));
        x = b.relu("relu2", b.conv("conv2", x, 8, Window.square(3, 1, 1), 1, true));
        x = b.add("flatten", new Op.Flatten(), b.add("avgpool", new Op.GlobalAvgPool(), x));
        b.output(b.linear("fc", x, 4));
        b.output(Models.SILHOUETTE);
        return b.build();
    }

    static Graph regionQuantized(Graph g) {
        QuantPlan plan = Plans.of(g, "soak", "region", new QuantPlan.SilhouetteSource.Learned(),
                new Plans.Receiving.Region(RegionPolicy.parse("2:50,3:30,4:20"), false, 4, Op.Interpolate.Mode.NEAREST,
                        Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD), 8, (value, bits) -> 2f);
        assertFalse(plan.layers().isEmpty());
        // The packed path: the native kernels' thread-owned scratch is native memory the soak must see flat.
        return PlanRewrite.apply(g, plan, PlanRewrite.Execution.PACKED);
    }

    /** The soak; a planted leak keeps a kilobyte per call in {@code kept}. */
    private static List<Soak.Sample> soak(int side, int inferences, List<Object> kept, boolean nativeLeak) {
        Graph fp32 = network(side), quantized = regionQuantized(fp32);
        CpuBackend cpu = new CpuBackend();
        Tensor x = Tensor.uniform(Shape.of(1, 2, side, side), 0, 1, 3);
        return Soak.run(i -> {
            Map<String, Tensor> out = cpu.run(i % 2 == 0 ? fp32 : quantized, Map.of("input", x));
            if (kept != null) kept.add(nativeLeak ? ByteBuffer.allocateDirect(1024) : new byte[1024]);
            if (out.get("fc").size() != 4) throw new AssertionError("unexpected output " + out.get("fc").shape());
        }, inferences, EVERY);
    }

    @Test
    public void memoryStaysFlatAfterWarmUp() {
        List<Soak.Sample> samples = soak(SIDE, INFERENCES, null, false);
        long heap = Soak.heapGrowth(samples, WARM_UP_SAMPLES), buffers = Soak.bufferGrowth(samples, WARM_UP_SAMPLES);
        assertTrue(heap < ALLOWED_GROWTH && buffers < ALLOWED_GROWTH, "heap grew " + heap + " and buffers " + buffers + " bytes after warm-up:\n" + samples);
    }

    @Test
    public void aPlantedHeapLeakFailsTheSoak() {
        List<Object> kept = new ArrayList<>();
        List<Soak.Sample> samples = soak(LEAK_SIDE, LEAK_INFERENCES, kept, false);
        assertTrue(Soak.heapGrowth(samples, WARM_UP_SAMPLES) >= ALLOWED_GROWTH, "a kilobyte kept per call went unnoticed:\n" + samples);
    }

    @Test
    public void aPlantedNativeLeakFailsTheSoak() {
        List<Object> kept = new ArrayList<>();
        List<Soak.Sample> samples = soak(LEAK_SIDE, LEAK_INFERENCES, kept, true);
        assertTrue(Soak.bufferGrowth(samples, WARM_UP_SAMPLES) >= ALLOWED_GROWTH, "a native kilobyte kept per call went unnoticed:\n" + samples);
    }
}
