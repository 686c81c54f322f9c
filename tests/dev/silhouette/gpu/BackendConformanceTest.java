package dev.silhouette.gpu;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cuda.CudaBackend;
import dev.silhouette.conformance.Conformance;
import dev.silhouette.conformance.ConformanceCase;
import dev.silhouette.conformance.Problems;
import dev.silhouette.conformance.Target;
import dev.silhouette.conformance.Tolerance;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static dev.silhouette.conformance.ConformanceAssert.assertConforms;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.fail;

/**
 * The CUDA backend against the CPU backend: the conformance suite's every case through its case runner
 * (what {@code silhouette conformance --backend cuda} runs), then fused epilogues and whole networks.
 */
@Test(groups = "gpu")
public class BackendConformanceTest {
    private Backend cuda;
    private Target target;

    @BeforeClass
    public void open() {
        GpuGuard.requireCuda();
        cuda = new CudaBackend(0);
        target = Target.cuda(cuda);
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (cuda != null) cuda.close();
    }

    /** The suite's whole case list: float and low-bit convolutions, linear layers and every op as a one-node graph. */
    @DataProvider
    public Object[][] cases() {
        return Conformance.cases().stream().map(c -> new Object[] {c}).toArray(Object[][]::new);
    }

    @Test(dataProvider = "cases")
    public void caseMatchesCpu(ConformanceCase c) {
        assertConforms(c, target);
    }

    static final double ACCUMULATION_RELATIVE = Tolerance.DEVICE_ACCUMULATION.bound();

    static void compare(String what, float[] actual, float[] expected, double relative) {
        double scale = 0;
        for (float v : expected) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < actual.length; i++) {
            if (!Float.isFinite(actual[i]) && Float.isFinite(expected[i])) fail(what + ": element " + i + " is " + actual[i] + ", CPU " + expected[i]);
        }
        for (int i = 0; i < actual.length; i++) {
            double diff = Math.abs(actual[i] - expected[i]);
            if (diff > relative * Math.max(1, scale)) fail(what + ": element " + i + " is " + actual[i] + ", CPU " + expected[i] + " (|diff| " + diff + ")");
        }
    }

    /** A ReLU after a convolution runs in the convolution's epilogue on the GPU; with and without bias, and unfused when the conv output is also read. */
    @Test
    public void convolutionFollowedByReluMatchesCpu() {
        for (boolean bias : new boolean[] {true, false}) {
            GraphBuilder b = new GraphBuilder(bias ? 1 : 2);
            String x = b.input("x", 6, 9, 11);
            String conv = b.add("conv", new Op.Conv2d(6, 10, Window.square(3, 2, 1), 1, bias), x);
            b.output(b.add("relu", new Op.Relu(), conv));
            Graph g = Problems.randomParameters(b.build());
            Map<String, Tensor> in = Map.of(x, Tensor.uniform(Shape.of(3, 6, 9, 11), -2, 2, 5));
            for (List<String> requested : List.of(List.of("relu"), List.of("conv", "relu"))) {
                Map<String, Tensor> expected = new CpuBackend().run(g, in, requested), actual = cuda.run(g, in, requested);
                for (String r : requested) {
                    compare("conv+relu bias=" + bias + " requested " + requested + " value " + r, actual.get(r).data(), expected.get(r).data(),
                            ACCUMULATION_RELATIVE);
                }
            }
        }
    }

    @Test
    public void wholeNetworksMatchCpu() {
        for (String model : List.of("fmnist-resnet", "resnet20", "resnet18")) {
            Models.Options o = Models.defaults(model);
            Graph g = Passes.foldBatchNorm(Models.build(model, new Models.Options(o.numClasses(), o.inputSize(), "stem", 3)));
            int[] dims = {4, g.inputs().getFirst().sampleShape().dim(0), o.inputSize(), o.inputSize()};
            Map<String, Tensor> in = Map.of("input", Tensor.uniform(Shape.of(dims), 0, 1, 9));
            Map<String, Tensor> expected = new CpuBackend().run(g, in), actual = cuda.run(g, in);
            for (String out : g.outputs()) {
                compare(model + " output " + out, actual.get(out).data(), expected.get(out).data(), 1e-4);
            }
            assertTrue(actual.get(Models.SILHOUETTE).shape().rank() == 4);
        }
    }
}
