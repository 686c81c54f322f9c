package dev.silhouette.gpu;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cuda.CudaBackend;
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

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.fail;

/**
 * Every op on the CUDA backend against the CPU reference, one single-node graph per named problem:
 * awkward shapes first, then real ResNet layers. Outputs are checked for NaN/Inf before comparison.
 */
@Test(groups = "gpu")
public class BackendConformanceTest {
    /** Float paths that use the same formula as the CPU but another summation order (cuDNN, cuBLAS). */
    static final double ACCUMULATION_RELATIVE = 2e-5;
    /** Elementwise kernels written to round exactly as the CPU does. */
    static final double EXACT = 0;

    private Backend cuda;

    record Problem(String name, Op op, int[][] inputs, double tolerance) {
        @Override
        public String toString() {
            return name;
        }
    }

    @BeforeClass
    public void open() {
        GpuGuard.requireCuda();
        cuda = new CudaBackend(0);
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (cuda != null) cuda.close();
    }

    @DataProvider
    public Object[][] problems() {
        List<Problem> p = new ArrayList<>();
        double acc = ACCUMULATION_RELATIVE;
        p.add(new Problem("conv 1x1 single pixel", new Op.Conv2d(1, 1, Window.square(1, 1, 0), 1, false), new int[][] {{1, 1, 1, 1}}, acc));
        p.add(new Problem("conv 3x3 odd", new Op.Conv2d(3, 5, Window.square(3, 1, 1), 1, true), new int[][] {{2, 3, 7, 9}}, acc));
        p.add(new Problem("conv dilated grouped", new Op.Conv2d(8, 12, new Window(3, 3, 2, 1, 2, 1, 2, 1), 4, true), new int[][] {{1, 8, 13, 11}}, acc));
        p.add(new Problem("conv depthwise", new Op.Conv2d(32, 32, Window.square(3, 2, 1), 32, false), new int[][] {{2, 32, 15, 15}}, acc));
        p.add(new Problem("resnet18 conv1", new Op.Conv2d(3, 64, Window.square(7, 2, 3), 1, false), new int[][] {{2, 3, 224, 224}}, acc));
        p.add(new Problem("resnet18 layer3 3x3", new Op.Conv2d(256, 256, Window.square(3, 1, 1), 1, false), new int[][] {{4, 256, 14, 14}}, acc));
        p.add(new Problem("resnet50 1x1/2", new Op.Conv2d(512, 1024, Window.square(1, 2, 0), 1, true), new int[][] {{2, 512, 28, 28}}, acc));
        p.add(new Problem("batchnorm", new Op.BatchNorm(7, 1e-5f), new int[][] {{3, 7, 5, 9}}, EXACT));
        p.add(new Problem("relu", new Op.Relu(), new int[][] {{3, 5, 17, 19}}, EXACT));
        p.add(new Problem("clip", new Op.Clip(-0.25f, 0.5f), new int[][] {{1, 1, 1, 1031}}, EXACT));
        p.add(new Problem("sigmoid", new Op.Sigmoid(), new int[][] {{2, 1, 56, 56}}, EXACT));
        p.add(new Problem("add", new Op.Add(), new int[][] {{2, 64, 56, 56}, {2, 64, 56, 56}}, EXACT));
        p.add(new Problem("maxpool 3x3/2/1", new Op.MaxPool(Window.square(3, 2, 1)), new int[][] {{2, 64, 112, 112}}, EXACT));
        p.add(new Problem("maxpool odd", new Op.MaxPool(new Window(2, 3, 2, 1, 1, 1, 1, 1)), new int[][] {{1, 3, 7, 5}}, EXACT));
        p.add(new Problem("avgpool incl pad", new Op.AvgPool(Window.square(3, 2, 1), true), new int[][] {{1, 5, 9, 9}}, 1e-6));
        p.add(new Problem("avgpool excl pad", new Op.AvgPool(Window.square(3, 1, 1), false), new int[][] {{2, 3, 6, 7}}, 1e-6));
        p.add(new Problem("global avgpool", new Op.GlobalAvgPool(), new int[][] {{4, 512, 7, 7}}, 1e-6));
        p.add(new Problem("linear", new Op.Linear(512, 1000, true), new int[][] {{5, 512}}, acc));
        p.add(new Problem("linear odd", new Op.Linear(37, 11, false), new int[][] {{3, 37}}, acc));
        p.add(new Problem("flatten", new Op.Flatten(), new int[][] {{3, 4, 2, 2}}, EXACT));
        p.add(new Problem("softmax classes", new Op.Softmax(), new int[][] {{4, 1000}}, 1e-6));
        p.add(new Problem("softmax channels", new Op.Softmax(), new int[][] {{2, 10, 3, 5}}, 1e-6));
        p.add(new Problem("nearest up", new Op.Interpolate(Op.Interpolate.Mode.NEAREST, 56, 56), new int[][] {{2, 1, 28, 28}}, EXACT));
        p.add(new Problem("nearest odd", new Op.Interpolate(Op.Interpolate.Mode.NEAREST, 5, 9), new int[][] {{1, 2, 7, 4}}, EXACT));
        p.add(new Problem("bilinear up", new Op.Interpolate(Op.Interpolate.Mode.BILINEAR, 56, 40), new int[][] {{2, 1, 28, 28}}, 1e-6));
        p.add(new Problem("concat channels", new Op.Concat(1), new int[][] {{2, 3, 5, 5}, {2, 1, 5, 5}, {2, 4, 5, 5}}, EXACT));
        p.add(new Problem("broadcast mul per channel", new Op.Elementwise(Op.Arithmetic.MUL), new int[][] {{2, 16, 7, 9}, {2, 16, 1, 1}}, EXACT));
        p.add(new Problem("broadcast sub rows", new Op.Elementwise(Op.Arithmetic.SUB), new int[][] {{2, 3, 5, 6}, {2, 1, 5, 1}}, EXACT));
        p.add(new Problem("constant first div", new Op.ElementwiseConstant(Op.Arithmetic.DIV, Shape.of(3, 1, 1), true), new int[][] {{2, 3, 4, 5}}, EXACT));
        p.add(new Problem("constant add last axis", new Op.ElementwiseConstant(Op.Arithmetic.ADD, Shape.of(5), false), new int[][] {{2, 3, 4, 5}}, EXACT));
        p.add(new Problem("hard sigmoid", new Op.HardSigmoid(1f / 6, 0.5f), new int[][] {{2, 8, 9, 9}}, EXACT));
        p.add(new Problem("hard swish", new Op.HardSwish(), new int[][] {{2, 8, 9, 9}}, EXACT));
        p.add(new Problem("reshape", new Op.Reshape(Shape.of(36)), new int[][] {{2, 4, 3, 3}}, EXACT));
        p.add(new Problem("pad asymmetric", new Op.Pad(1, 0, 2, 1, -1.5f), new int[][] {{2, 3, 5, 7}}, EXACT));
        return p.stream().map(x -> new Object[] {x}).toArray(Object[][]::new);
    }

    @Test(dataProvider = "problems")
    public void opMatchesCpu(Problem p) {
        GraphBuilder b = new GraphBuilder(p.name().hashCode());
        String[] names = new String[p.inputs().length];
        for (int i = 0; i < names.length; i++) {
            int[] sample = java.util.Arrays.copyOfRange(p.inputs()[i], 1, p.inputs()[i].length);
            names[i] = b.input("x" + i, sample);
        }
        b.output(b.add("op", p.op(), names));
        Graph g = randomizeBatchNorm(b.build());
        Map<String, Tensor> in = new java.util.HashMap<>();
        for (int i = 0; i < names.length; i++) in.put(names[i], Tensor.uniform(Shape.of(p.inputs()[i]), -2, 2, 100 + i));
        Tensor expected = new CpuBackend().run(g, in).get("op");
        Tensor actual = cuda.run(g, in).get("op");
        assertEquals(actual.shape(), expected.shape(), p + ": shape");
        compare(p.toString(), actual.data(), expected.data(), p.tolerance());
    }

    static void compare(String what, float[] actual, float[] expected, double relative) {
        double scale = 0;
        for (float v : expected) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < actual.length; i++) {
            if (!Float.isFinite(actual[i]) && Float.isFinite(expected[i])) fail(what + ": element " + i + " is " + actual[i] + ", CPU " + expected[i]);
        }
        for (int i = 0; i < actual.length; i++) {
            double diff = Math.abs(actual[i] - expected[i]);
            if (relative == EXACT ? Float.floatToRawIntBits(actual[i]) != Float.floatToRawIntBits(expected[i]) && diff != 0 : diff > relative * Math.max(1, scale)) {
                fail(what + ": element " + i + " is " + actual[i] + ", CPU " + expected[i] + " (|diff| " + diff + ")");
            }
        }
    }

    /** Gives BatchNorm statistics, biases and elementwise constants random values (builders start them at fixed ones). */
    private static Graph randomizeBatchNorm(Graph g) {
        Map<String, Tensor> params = new java.util.HashMap<>(g.parameters());
        params.replaceAll((k, v) -> k.endsWith("running_var") ? Tensor.uniform(v.shape(), 0.5f, 2f, k.hashCode())
                : k.endsWith("running_mean") || k.endsWith(".bias") ? Tensor.uniform(v.shape(), -0.5f, 0.5f, k.hashCode())
                : k.endsWith(".constant") ? Tensor.uniform(v.shape(), 0.5f, 2f, k.hashCode()) : v);
        return g.withParameters(params);
    }

    /** A ReLU after a convolution runs in the convolution's epilogue on the GPU; with and without bias, and unfused when the conv output is also read. */
    @Test
    public void convolutionFollowedByReluMatchesCpu() {
        for (boolean bias : new boolean[] {true, false}) {
            GraphBuilder b = new GraphBuilder(bias ? 1 : 2);
            String x = b.input("x", 6, 9, 11);
            String conv = b.add("conv", new Op.Conv2d(6, 10, Window.square(3, 2, 1), 1, bias), x);
            b.output(b.add("relu", new Op.Relu(), conv));
            Graph g = randomizeBatchNorm(b.build());
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
