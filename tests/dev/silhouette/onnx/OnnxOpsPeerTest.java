package dev.silhouette.onnx;

import dev.silhouette.Tolerances;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;

import static dev.silhouette.onnx.TestModel.f;
import static dev.silhouette.onnx.TestModel.floats;
import static dev.silhouette.onnx.TestModel.i;
import static dev.silhouette.onnx.TestModel.ints;
import static dev.silhouette.onnx.TestModel.s;
import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/**
 * Every op the importer maps, in one-op (or short-chain) models on random shapes, run by ONNX Runtime
 * and by Silhouette's CPU backend on the same inputs; outputs agree within {@link Tolerances#PEER_OP_RELATIVE}.
 */
public class OnnxOpsPeerTest {

    /** A test case: builds a model for random shapes drawn from the generator. */
    record Case(String name, Function<Random, TestModel> build) {
        @Override
        public String toString() {
            return name;
        }
    }

    static int between(Random r, int lo, int hi) {
        return lo + r.nextInt(hi - lo + 1);
    }

    static Tensor random(Random r, float lo, float hi, int... dims) {
        return Tensor.uniform(Shape.of(dims), lo, hi, r.nextLong());
    }

    /** N x C x H x W with N 1-3, C 1-6, H and W 5-12 unless given. */
    static int[] image(Random r, int channels) {
        return new int[] {between(r, 1, 3), channels, between(r, 5, 12), between(r, 5, 12)};
    }

    static List<Case> cases() {
        List<Case> c = new ArrayList<>();
        c.add(new Case("Conv 3x3 stride 2 pad 1 bias", r -> {
            int[] x = image(r, between(r, 1, 6));
            int out = between(r, 1, 8);
            return new TestModel(13).input("x", x).weights("w", random(r, -1, 1, out, x[1], 3, 3)).weights("b", random(r, -1, 1, out))
                    .node("Conv", List.of("x", "w", "b"), "y", ints("kernel_shape", 3, 3), ints("strides", 2, 2), ints("pads", 1, 1, 1, 1)).output("y");
        }));
        c.add(new Case("Conv depthwise dilation 2 no bias", r -> {
            int[] x = image(r, between(r, 2, 6));
            return new TestModel(17).input("x", true, x).weights("w", random(r, -1, 1, x[1], 1, 3, 3))
                    .node("Conv", List.of("x", "w"), "y", i("group", x[1]), ints("dilations", 2, 2), ints("pads", 2, 2, 2, 2)).output("y");
        }));
        c.add(new Case("Conv groups 2, rectangular kernel, asymmetric pads", r -> {
            int[] x = image(r, 4);
            return new TestModel(13).input("x", x).weights("w", random(r, -1, 1, 6, 2, 3, 2))
                    .node("Conv", List.of("x", "w"), "y", i("group", 2), ints("pads", 0, 1, 2, 0)).output("y");
        }));
        for (String autoPad : List.of("SAME_UPPER", "SAME_LOWER", "VALID")) {
            c.add(new Case("Conv auto_pad " + autoPad + " even kernel", r -> {
                int[] x = image(r, 3);
                int stride = between(r, 1, 2);
                return new TestModel(11).input("x", x).weights("w", random(r, -1, 1, 5, 3, 4, 4)).weights("b", random(r, -1, 1, 5))
                        .node("Conv", List.of("x", "w", "b"), "y", s("auto_pad", autoPad), ints("strides", stride, stride)).output("y");
            }));
        }
        c.add(new Case("BatchNormalization", r -> {
            int[] x = image(r, between(r, 1, 6));
            int ch = x[1];
            return new TestModel(15).input("x", x).weights("g", random(r, 0.5f, 2, ch)).weights("b", random(r, -1, 1, ch))
                    .weights("m", random(r, -1, 1, ch)).weights("v", random(r, 0.1f, 3, ch))
                    .node("BatchNormalization", List.of("x", "g", "b", "m", "v"), "y", f("epsilon", 1e-3f)).output("y");
        }));
        for (String op : List.of("Relu", "Sigmoid", "HardSwish")) {
            c.add(new Case(op, r -> new TestModel(14).input("x", image(r, 3)).node(op, List.of("x"), "y").output("y")));
        }
        c.add(new Case("HardSigmoid alpha beta", r -> new TestModel(13).input("x", image(r, 2))
                .node("HardSigmoid", List.of("x"), "y", f("alpha", 0.3f), f("beta", 0.4f)).output("y")));
        c.add(new Case("Clip inputs min and max", r -> new TestModel(13).input("x", image(r, 2))
                .typedFloats("lo", new long[0], -0.25f).typedFloats("hi", new long[0], 0.5f)
                .node("Clip", List.of("x", "lo", "hi"), "y").output("y")));
        c.add(new Case("Clip input min only (ReLU)", r -> new TestModel(12).input("x", image(r, 2))
                .typedFloats("lo", new long[0], 0f).node("Clip", List.of("x", "lo"), "y").output("y")));
        c.add(new Case("Clip attribute form (opset 10)", r -> new TestModel(10).input("x", image(r, 2))
                .node("Clip", List.of("x"), "y", f("min", 0f), f("max", 0.6f)).output("y")));
        for (String op : List.of("Add", "Sub", "Mul", "Div")) {
            c.add(new Case(op + " two values", r -> {
                int[] x = image(r, 3);
                return new TestModel(14).input("a", x).input("b", x).node(op, List.of("a", "b"), "y").output("y");
            }));
            c.add(new Case(op + " broadcast values [N,C,H,W] and [N,1,H,W]", r -> {
                int[] x = image(r, 3);
                return new TestModel(13).input("a", x).input("b", x[0], 1, x[2], x[3]).node(op, List.of("a", "b"), "y").output("y");
            }));
            c.add(new Case(op + " per-channel constant [C,1,1]", r -> {
                int[] x = image(r, between(r, 1, 5));
                return new TestModel(13).input("a", x).weights("k", random(r, 0.5f, 2, x[1], 1, 1)).node(op, List.of("a", "k"), "y").output("y");
            }));
            c.add(new Case(op + " constant first, [1,C,1,W] constant", r -> {
                int[] x = image(r, 2);
                return new TestModel(7 + 6).input("a", x).weights("k", random(r, 0.5f, 2, 1, 2, 1, x[3])).node(op, List.of("k", "a"), "y").output("y");
            }));
        }
        c.add(new Case("Mul by a Constant node scalar", r -> new TestModel(13).input("x", image(r, 2))
                .node("Constant", List.of(), "k", TestModel.tensor("value", OnnxTensors.encodeFloats("k", new long[0], 1.5f)))
                .node("Mul", List.of("x", "k"), "y").output("y")));
        c.add(new Case("MaxPool 3x3 stride 2 pad 1", r -> new TestModel(13).input("x", image(r, 3))
                .node("MaxPool", List.of("x"), "y", ints("kernel_shape", 3, 3), ints("strides", 2, 2), ints("pads", 1, 1, 1, 1)).output("y")));
        c.add(new Case("MaxPool ceil_mode", r -> new TestModel(13).input("x", image(r, 2))
                .node("MaxPool", List.of("x"), "y", ints("kernel_shape", 3, 3), ints("strides", 2, 2), i("ceil_mode", 1)).output("y")));
        c.add(new Case("MaxPool dilation 2 asymmetric pads", r -> new TestModel(12).input("x", image(r, 2))
                .node("MaxPool", List.of("x"), "y", ints("kernel_shape", 2, 3), ints("dilations", 2, 2), ints("pads", 1, 0, 0, 1)).output("y")));
        c.add(new Case("MaxPool auto_pad SAME_UPPER", r -> new TestModel(13).input("x", image(r, 2))
                .node("MaxPool", List.of("x"), "y", ints("kernel_shape", 2, 2), ints("strides", 2, 2), s("auto_pad", "SAME_UPPER")).output("y")));
        for (int include = 0; include <= 1; include++) {
            int inc = include;
            c.add(new Case("AveragePool pad 1 count_include_pad " + inc, r -> new TestModel(13).input("x", image(r, 2))
                    .node("AveragePool", List.of("x"), "y", ints("kernel_shape", 3, 3), ints("strides", 2, 2), ints("pads", 1, 1, 1, 1),
                            i("count_include_pad", inc)).output("y")));
        }
        c.add(new Case("AveragePool asymmetric pads count_include_pad 1", r -> new TestModel(11).input("x", image(r, 2))
                .node("AveragePool", List.of("x"), "y", ints("kernel_shape", 2, 2), ints("pads", 0, 0, 1, 1), i("count_include_pad", 1)).output("y")));
        c.add(new Case("GlobalAveragePool", r -> new TestModel(13).input("x", image(r, 4)).node("GlobalAveragePool", List.of("x"), "y").output("y")));
        c.add(new Case("Flatten axis 1", r -> new TestModel(13).input("x", image(r, 3)).node("Flatten", List.of("x"), "y", i("axis", 1)).output("y")));
        c.add(new Case("Flatten axis -3 of a rank-4 tensor", r -> new TestModel(13).input("x", image(r, 3)).node("Flatten", List.of("x"), "y", i("axis", -3)).output("y")));
        for (int transB = 0; transB <= 1; transB++) {
            int tb = transB;
            c.add(new Case("Gemm transB " + tb + " alpha beta bias", r -> {
                int n = between(r, 1, 4), k = between(r, 1, 40), m = between(r, 1, 20);
                return new TestModel(13).input("x", n, k).weights("w", tb == 1 ? random(r, -1, 1, m, k) : random(r, -1, 1, k, m))
                        .weights("c", random(r, -1, 1, m)).node("Gemm", List.of("x", "w", "c"), "y", i("transB", tb), f("alpha", 0.7f), f("beta", 1.3f)).output("y");
            }));
        }
        c.add(new Case("Gemm no bias", r -> new TestModel(11).input("x", 2, 9).weights("w", random(r, -1, 1, 9, 4)).node("Gemm", List.of("x", "w"), "y").output("y")));
        c.add(new Case("Gemm scalar C", r -> new TestModel(13).input("x", 3, 5).weights("w", random(r, -1, 1, 7, 5)).typedFloats("c", new long[] {1}, 0.25f)
                .node("Gemm", List.of("x", "w", "c"), "y", i("transB", 1)).output("y")));
        c.add(new Case("MatMul then Add bias", r -> {
            int n = between(r, 1, 4), k = between(r, 1, 30), m = between(r, 1, 12);
            return new TestModel(13).input("x", n, k).weights("w", random(r, -1, 1, k, m)).weights("b", random(r, -1, 1, m))
                    .node("MatMul", List.of("x", "w"), "xw").node("Add", List.of("xw", "b"), "y").output("y");
        }));
        c.add(new Case("Reshape [0, -1]", r -> new TestModel(13).input("x", image(r, 3)).int64s("shape", 0, -1)
                .node("Reshape", List.of("x", "shape"), "y").output("y")));
        c.add(new Case("Reshape by Shape-Gather-Unsqueeze-Concat (x.view(x.size(0), -1))", r -> new TestModel(13).input("x", true, image(r, 3))
                .node("Shape", List.of("x"), "s").scalar("zero", 0).node("Gather", List.of("s", "zero"), "n", i("axis", 0))
                .int64s("axes0", 0).node("Unsqueeze", List.of("n", "axes0"), "n1").int64s("minus1", -1)
                .node("Concat", List.of("n1", "minus1"), "target", i("axis", 0)).node("Reshape", List.of("x", "target"), "y").output("y")));
        c.add(new Case("Unsqueeze axes attribute (opset 11) then Squeeze", r -> new TestModel(11).input("x", 2, 5)
                .node("Unsqueeze", List.of("x"), "u", ints("axes", 2, 3)).node("Relu", List.of("u"), "v")
                .node("Squeeze", List.of("v"), "y", ints("axes", 3)).output("y")));
        c.add(new Case("Concat of computed values axis 1", r -> new TestModel(13).input("x", image(r, 2))
                .node("Relu", List.of("x"), "a").node("Sigmoid", List.of("x"), "b").node("Concat", List.of("a", "b", "x"), "y", i("axis", 1)).output("y")));
        c.add(new Case("Resize nearest asymmetric floor by sizes", r -> {
            int[] x = image(r, 2);
            return new TestModel(13).input("x", x).int64s("sizes", x[0], x[1], x[2] * 2, x[3] * 3)
                    .node("Resize", List.of("x", "", "", "sizes"), "y", s("mode", "nearest"), s("coordinate_transformation_mode", "asymmetric"),
                            s("nearest_mode", "floor")).output("y");
        }));
        c.add(new Case("Resize nearest default modes, scale 2", r -> new TestModel(13).input("x", image(r, 2))
                .typedFloats("scales", new long[] {4}, 1, 1, 2, 2).node("Resize", List.of("x", "", "scales"), "y").output("y")));
        c.add(new Case("Resize linear half_pixel scale 2 (opset 11 with roi)", r -> new TestModel(11).input("x", image(r, 2))
                .typedFloats("roi", new long[] {0}).typedFloats("scales", new long[] {4}, 1, 1, 2, 2)
                .node("Resize", List.of("x", "roi", "scales"), "y", s("mode", "linear")).output("y")));
        c.add(new Case("Resize linear pytorch_half_pixel to an uneven size", r -> {
            int[] x = image(r, 2);
            return new TestModel(18).input("x", x).int64s("sizes", x[0], x[1], x[2] + 3, 2 * x[3] - 1)
                    .node("Resize", List.of("x", "", "", "sizes"), "y", s("mode", "linear"), s("coordinate_transformation_mode", "pytorch_half_pixel")).output("y");
        }));
        c.add(new Case("Upsample nearest (opset 9)", r -> new TestModel(9).input("x", image(r, 2))
                .typedFloats("scales", new long[] {4}, 1, 1, 2, 2).node("Upsample", List.of("x", "scales"), "y", s("mode", "nearest")).output("y")));
        c.add(new Case("Upsample nearest, scales attribute (opset 8)", r -> new TestModel(8).input("x", image(r, 2))
                .node("Upsample", List.of("x"), "y", floats("scales", 1, 1, 2, 3)).output("y")));
        c.add(new Case("Resize nearest (opset 10)", r -> new TestModel(10).input("x", image(r, 2))
                .typedFloats("scales", new long[] {4}, 1, 1, 3, 2).node("Resize", List.of("x", "scales"), "y").output("y")));
        c.add(new Case("Softmax rank 2 (opset 13, axis -1)", r -> new TestModel(13).input("x", between(r, 1, 4), between(r, 2, 20))
                .node("Softmax", List.of("x"), "y").output("y")));
        c.add(new Case("Softmax over channels of NCHW (opset 13, axis 1)", r -> new TestModel(13).input("x", image(r, 4))
                .node("Softmax", List.of("x"), "y", i("axis", 1)).output("y")));
        c.add(new Case("Softmax opset 11 over C*H*W", r -> new TestModel(11).input("x", image(r, 3))
                .node("Softmax", List.of("x"), "y", i("axis", 1)).output("y")));
        c.add(new Case("MatMul with a Transpose of its weight (folded)", r -> new TestModel(13).input("x", 3, 6).weights("w", random(r, -1, 1, 4, 6))
                .node("Transpose", List.of("w"), "wt", ints("perm", 1, 0)).node("MatMul", List.of("x", "wt"), "y").output("y")));
        c.add(new Case("Reshape to a target sliced from Shape (x.shape[:2] + [-1])", r -> new TestModel(13).input("x", image(r, 3))
                .node("Shape", List.of("x"), "s").int64s("st", 0).int64s("en", 2).node("Slice", List.of("s", "st", "en"), "nc")
                .int64s("minus1", -1).node("Concat", List.of("nc", "minus1"), "target", i("axis", 0))
                .node("Reshape", List.of("x", "target"), "y").output("y")));
        c.add(new Case("Add a ConstantOfShape bias", r -> new TestModel(13).input("x", 2, 5).int64s("dims", 5)
                .node("ConstantOfShape", List.of("dims"), "k", TestModel.tensor("value", OnnxTensors.encodeFloats("v", new long[] {1}, 0.75f)))
                .node("Add", List.of("x", "k"), "y").output("y")));
        for (int keep = 0; keep <= 1; keep++) {
            int k = keep;
            c.add(new Case("ReduceMean over H and W keepdims " + k, r -> new TestModel(13).input("x", image(r, 3))
                    .node("ReduceMean", List.of("x"), "y", ints("axes", -1, -2), i("keepdims", k)).output("y")));
        }
        c.add(new Case("ReduceMean axes input (opset 18)", r -> new TestModel(18).input("x", image(r, 3)).int64s("axes", 2, 3)
                .node("ReduceMean", List.of("x", "axes"), "y").output("y")));
        c.add(new Case("Pad constant H and W", r -> new TestModel(13).input("x", image(r, 2)).int64s("pads", 0, 0, 1, 2, 0, 0, 3, 0)
                .typedFloats("v", new long[0], -0.5f).node("Pad", List.of("x", "pads", "v"), "y").output("y")));
        c.add(new Case("Pad with axes (opset 18)", r -> new TestModel(18).input("x", image(r, 2)).int64s("pads", 2, 1, 0, 1).int64s("axes", 2, 3)
                .node("Pad", List.of("x", "pads", "", "axes"), "y").output("y")));
        c.add(new Case("Identity and Dropout (inference)", r -> new TestModel(13).input("x", image(r, 2))
                .node("Identity", List.of("x"), "a").node("Dropout", List.of("a"), "b").node("Relu", List.of("b"), "y").output("y")));
        return c;
    }

    @DataProvider
    public Object[][] casesAndSeeds() {
        List<Object[]> rows = new ArrayList<>();
        for (Case c : cases()) for (long seed = 1; seed <= 3; seed++) rows.add(new Object[] {c, seed});
        return rows.toArray(Object[][]::new);
    }

    @Test(dataProvider = "casesAndSeeds")
    public void agreesWithOnnxRuntime(Case c, long seed) {
        Random r = new Random(seed * 7919 + c.name().hashCode());
        TestModel m = c.build().apply(r);
        byte[] bytes = m.bytes();
        Map<String, Tensor> inputs = new LinkedHashMap<>();
        for (Map.Entry<String, Shape> in : m.inputs.entrySet()) inputs.put(in.getKey(), Tensor.uniform(in.getValue(), -2, 2, r.nextLong()));
        Map<String, Tensor> expected;
        try (OrtPeer ort = OrtPeer.open(bytes)) {
            expected = ort.run(inputs);
        }
        OnnxImporter.Imported imported = OnnxImporter.read(bytes, null, c.name(), OnnxImporter.Options.defaults());
        Map<String, Tensor> actual = new CpuBackend().run(imported.graph(), inputs, List.copyOf(imported.outputNames().values()));
        for (Map.Entry<String, Tensor> e : expected.entrySet()) {
            assertClose(actual.get(imported.outputNames().get(e.getKey())), e.getValue(), Tolerances.PEER_OP_RELATIVE, c + " seed " + seed + " output " + e.getKey());
        }
    }

    /** Same shape, and every element within tol times the expected output's largest magnitude (at least 1). */
    static void assertClose(Tensor actual, Tensor expected, double tol, String what) {
        assertClose(actual, expected, tol, 1, what);
    }

    /**
     * Same shape, and every element within tol times the expected output's largest magnitude (at least minScale).
     * @return the largest difference over that scale, for reports
     */
    static double assertClose(Tensor actual, Tensor expected, double tol, double minScale, String what) {
        assertEquals(actual.shape(), expected.shape(), what + ": shape");
        double scale = minScale, worst = 0;
        int at = -1;
        for (float v : expected.data()) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < expected.size(); i++) {
            double d = Math.abs((double) actual.data()[i] - expected.data()[i]);
            if (!(d <= worst)) {
                worst = d;
                at = i;
            }
        }
        assertTrue(worst <= tol * scale, what + ": largest difference " + worst + " at " + at + " (Silhouette " + (at < 0 ? "" : actual.data()[at])
                + ", expected " + (at < 0 ? "" : expected.data()[at]) + ") exceeds " + tol + " x " + scale);
        return worst / scale;
    }
}
