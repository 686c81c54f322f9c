package dev.silhouette.onnx;

import dev.silhouette.Tolerances;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphException;
import dev.silhouette.onnx.proto.Onnx.ModelProto;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.onnx.proto.Onnx.OperatorSetIdProto;
import dev.silhouette.onnx.proto.Onnx.TensorProto;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static dev.silhouette.onnx.TestModel.f;
import static dev.silhouette.onnx.TestModel.i;
import static dev.silhouette.onnx.TestModel.ints;
import static org.testng.Assert.assertEquals;
import static org.testng.Assert.expectThrows;
import static org.testng.Assert.assertTrue;

/** Broken or hostile ONNX files: each gives one OnnxException naming the problem, never a crash. */
public class OnnxBadInputTest {

    /** Conv, BatchNorm, Relu, GlobalAveragePool, Flatten, Gemm, Softmax on a 2 x 4 x 6 x 6 input. */
    static TestModel small() {
        Random r = new Random(3);
        return new TestModel(13).input("x", true, 2, 4, 6, 6)
                .weights("w", Tensor.uniform(Shape.of(5, 4, 3, 3), -1, 1, r.nextLong())).weights("b", Tensor.uniform(Shape.of(5), -1, 1, r.nextLong()))
                .node("Conv", List.of("x", "w", "b"), "c", ints("pads", 1, 1, 1, 1))
                .weights("g", Tensor.uniform(Shape.of(5), 0.5f, 1.5f, 1)).weights("beta", Tensor.uniform(Shape.of(5), -1, 1, 2))
                .weights("m", Tensor.uniform(Shape.of(5), -1, 1, 3)).weights("v", Tensor.uniform(Shape.of(5), 0.5f, 1.5f, 4))
                .node("BatchNormalization", List.of("c", "g", "beta", "m", "v"), "bn", f("epsilon", 1e-5f))
                .node("Relu", List.of("bn"), "r").node("GlobalAveragePool", List.of("r"), "p").node("Flatten", List.of("p"), "flat")
                .weights("fc", Tensor.uniform(Shape.of(3, 5), -1, 1, 5)).weights("fcb", Tensor.uniform(Shape.of(3), -1, 1, 6))
                .node("Gemm", List.of("flat", "fc", "fcb"), "logits", i("transB", 1)).node("Softmax", List.of("logits"), "y", i("axis", 1)).output("y");
    }

    static OnnxException rejected(byte[] bytes) {
        return expectThrows(OnnxException.class, () -> OnnxImporter.read(bytes, null, "model.onnx", OnnxImporter.Options.defaults()));
    }

    static void assertMentions(Exception e, String... parts) {
        for (String p : parts) assertTrue(e.getMessage().contains(p), "message '" + e.getMessage() + "' should mention '" + p + "'");
    }

    @Test
    public void truncatedAndCorruptProtobufs() {
        byte[] valid = small().bytes();
        for (int cut : new int[] {1, 7, valid.length / 3, valid.length / 2, valid.length - 5}) {
            OnnxException e = rejected(Arrays.copyOf(valid, cut));
            assertMentions(e, "model.onnx");
        }
        assertMentions(rejected(new byte[0]), "empty");
        assertMentions(rejected("this is not a protobuf, just text\n".getBytes()), "model.onnx");
        byte[] garbage = new byte[4096];
        new Random(1).nextBytes(garbage);
        rejected(garbage);
    }

    @Test
    public void missingInitializerIsNamed() {
        ModelProto m = small().model();
        var g = m.getGraph().toBuilder();
        for (int k = 0; k < g.getInitializerCount(); k++) {
            if (g.getInitializer(k).getName().equals("m")) g.removeInitializer(k);
        }
        OnnxException e = rejected(m.toBuilder().setGraph(g).build().toByteArray());
        assertMentions(e, "'m'", "BatchNormalization", "missing initializer");
    }

    @Test
    public void initializerWhoseDataDoesNotFitItsDims() {
        TensorProto w = OnnxTensors.encode("w", Tensor.zeros(5, 4, 3, 3)).toBuilder().setDims(0, 6).build();
        ModelProto m = small().model();
        var g = m.getGraph().toBuilder();
        for (int k = 0; k < g.getInitializerCount(); k++) if (g.getInitializer(k).getName().equals("w")) g.setInitializer(k, w);
        assertMentions(rejected(m.toBuilder().setGraph(g).build().toByteArray()), "tensor 'w'", "raw_data holds 720 bytes");
        TensorProto stripped = OnnxTensors.encode("w", Tensor.zeros(5, 4, 3, 3)).toBuilder().clearRawData().build();
        for (int k = 0; k < g.getInitializerCount(); k++) if (g.getInitializer(k).getName().equals("w")) g.setInitializer(k, stripped);
        assertMentions(rejected(m.toBuilder().setGraph(g).build().toByteArray()), "tensor 'w'", "no raw_data");
    }

    @Test
    public void shapeMismatchesNameTheNode() {
        byte[] conv = new TestModel(13).input("x", 1, 3, 8, 8).weights("w", Tensor.zeros(4, 5, 3, 3))
                .node("Conv", List.of("x", "w"), "y").output("y").bytes();
        assertMentions(rejected(conv), "Conv node 'y_node'", "input channels", "[1, 3, 8, 8]");
        byte[] add = new TestModel(13).input("a", 1, 3, 8, 8).input("b", 1, 4, 8, 8).node("Add", List.of("a", "b"), "y").output("y").bytes();
        assertMentions(rejected(add), "y", "broadcast");
        byte[] gemm = new TestModel(13).input("x", 2, 7).weights("w", Tensor.zeros(3, 5)).node("Gemm", List.of("x", "w"), "y", i("transB", 1)).output("y").bytes();
        assertMentions(rejected(gemm), "Gemm node 'y_node'", "[2, 7]");
        byte[] reshape = new TestModel(13).input("x", 2, 3, 4, 4).int64s("s", 0, 5, -1).node("Reshape", List.of("x", "s"), "y").output("y").bytes();
        assertMentions(rejected(reshape), "Reshape", "-1");
    }

    @Test
    public void cyclesAreReportedWithTheirNodes() {
        byte[] cyclic = new TestModel(13).input("x", 1, 2, 4, 4)
                .node("Add", List.of("x", "b"), "a").node("Relu", List.of("a"), "b").node("Relu", List.of("x"), "y").output("y").bytes();
        assertMentions(rejected(cyclic), "cycle", "a_node", "b_node");
    }

    @Test
    public void unknownDomainsAndOpsAreListedTogether() {
        ModelProto m = new TestModel(13).input("x", 1, 2, 4, 4).node("Relu", List.of("x"), "a")
                .node("LSTM", List.of("a"), "b").node("Einsum", List.of("b"), "c").output("c").model();
        var g = m.getGraph().toBuilder().addNode(NodeProto.newBuilder().setOpType("FusedConv").setDomain("com.microsoft").setName("fused")
                .addInput("c").addOutput("d"));
        OnnxException e = rejected(m.toBuilder().setGraph(g).build().toByteArray());
        assertMentions(e, "3 node(s)", "LSTM (node 'b_node')", "Einsum (node 'c_node')", "com.microsoft:FusedConv (node 'fused'", "not among the model's opset imports");

        ModelProto noDefault = small().model().toBuilder().clearOpsetImport()
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("com.example").setVersion(1)).build();
        assertMentions(rejected(noDefault.toByteArray()), "default ONNX operator set");
        ModelProto tooNew = small().model().toBuilder().setOpsetImport(0, OperatorSetIdProto.newBuilder().setDomain("").setVersion(99)).build();
        assertMentions(rejected(tooNew.toByteArray()), "opset 99", "7 to 21");
    }

    @Test
    public void hugeDeclaredDimensionsFailBeforeAllocating() {
        assertMentions(rejected(new TestModel(13).input("x", 1, 100_000, 100_000, 100_000).node("Relu", List.of("x"), "y").output("y").bytes()),
                "graph input 'x'", "more than");
        assertMentions(rejected(new TestModel(13).input("x", 1, 3, -5, 4).node("Relu", List.of("x"), "y").output("y").bytes()),
                "dimension -5");
        TensorProto huge = TensorProto.newBuilder().setName("w").setDataType(TensorProto.DataType.FLOAT_VALUE)
                .addDims(1L << 40).addDims(1L << 40).build();
        byte[] bytes = new TestModel(13).input("x", 1, 3, 4, 4).initializer(huge).node("Mul", List.of("x", "w"), "y").output("y").bytes();
        assertMentions(rejected(bytes), "tensor 'w'", "more than");
        byte[] hugeResize = new TestModel(13).input("x", 1, 1, 4, 4).int64s("sizes", 1, 1, 1L << 40, 4)
                .node("Resize", List.of("x", "", "", "sizes"), "y").output("y").bytes();
        assertMentions(rejected(hugeResize), "Resize", "output size", "Limit.IMAGE_SIDE");
        // Within every dimension limit, but 16000 x 16000 x 8 float32 values (8 GB) per sample exceed the heap.
        byte[] bigResize = new TestModel(13).input("x", 1, 8, 4, 4).int64s("sizes", 1, 8, 16_000, 16_000)
                .node("Resize", List.of("x", "", "", "sizes"), "y").output("y").bytes();
        assertMentions(rejected(bigResize), "per sample", "heap");
        // A folded constant as large as the heap: refused before it is allocated.
        byte[] bigConstant = new TestModel(13).input("x", 1, 4).int64s("dims", 1L << 20, 1L << 12)
                .node("ConstantOfShape", List.of("dims"), "k").node("Add", List.of("x", "k"), "y").output("y").bytes();
        assertMentions(rejected(bigConstant), "ConstantOfShape", "limit of one tensor at import");
    }

    @Test
    public void externalDataMustExistAndStayBesideTheModel() throws IOException {
        Path dir = Files.createTempDirectory("onnx-external");
        try {
            Path model = dir.resolve("m.onnx");
            TensorProto w = OnnxTensors.encode("w", Tensor.zeros(1, 3, 1, 1)).toBuilder().clearRawData()
                    .setDataLocation(TensorProto.DataLocation.EXTERNAL)
                    .addExternalData(dev.silhouette.onnx.proto.Onnx.StringStringEntryProto.newBuilder().setKey("location").setValue("weights.bin")).build();
            Files.write(model, new TestModel(13).input("x", 1, 3, 4, 4).initializer(w).node("Mul", List.of("x", "w"), "y").output("y").bytes());
            assertMentions(expectThrows(OnnxException.class, () -> OnnxImporter.read(model)), "weights.bin", "does not exist");
            Files.write(dir.resolve("weights.bin"), new byte[8]);
            assertMentions(expectThrows(OnnxException.class, () -> OnnxImporter.read(model)), "needs bytes [0, 12)", "which has 8");
            Files.write(dir.resolve("weights.bin"), new byte[12]);
            assertEquals(OnnxImporter.read(model).graph().nodes().size(), 1);
            TensorProto escaping = w.toBuilder().setExternalData(0, w.getExternalData(0).toBuilder().setValue("../../etc/passwd")).build();
            Files.write(model, new TestModel(13).input("x", 1, 3, 4, 4).initializer(escaping).node("Mul", List.of("x", "w"), "y").output("y").bytes());
            assertMentions(expectThrows(OnnxException.class, () -> OnnxImporter.read(model)), "outside the model's folder");
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) Files.delete(p);
            }
            Files.delete(dir);
        }
    }

    @Test
    public void unsupportedConfigurationsOfSupportedOps() {
        assertMentions(rejected(new TestModel(13).input("x", 1, 3, 4, 4).node("Flatten", List.of("x"), "y", i("axis", 2)).output("y").bytes()),
                "Flatten", "batch axis");
        assertMentions(rejected(new TestModel(13).input("x", 1, 3, 4, 4).int64s("sizes", 1, 3, 8, 8)
                .node("Resize", List.of("x", "", "", "sizes"), "y", TestModel.s("mode", "cubic")).output("y").bytes()), "cubic");
        assertMentions(rejected(new TestModel(13).input("x", 1, 3, 4, 4).int64s("sizes", 1, 3, 6, 6)
                .node("Resize", List.of("x", "", "", "sizes"), "y", TestModel.s("mode", "linear"), TestModel.s("coordinate_transformation_mode", "align_corners"))
                .output("y").bytes()), "align_corners");
        // Before opset 11 linear resizing is asymmetric, unlike PyTorch's align_corners=False and Silhouette's.
        assertMentions(rejected(new TestModel(10).input("x", 1, 3, 4, 4).typedFloats("scales", new long[] {4}, 1, 1, 2, 2)
                .node("Resize", List.of("x", "scales"), "y", TestModel.s("mode", "linear")).output("y").bytes()), "'asymmetric'");
        assertMentions(rejected(new TestModel(13).input("x", 3, 5).weights("w", Tensor.zeros(3, 4))
                .node("Gemm", List.of("x", "w"), "y", i("transA", 1)).output("y").bytes()), "transA");
    }

    /** Fuzzing findings, fixed (their inputs are in tests/fuzz/OnnxModelFuzz/ too). */
    @Test
    public void resizeFindings() {
        // Upsample before opset 9 without its scales attribute crashed the importer.
        assertMentions(rejected(new TestModel(8).input("x", 1, 2, 4, 4).node("Upsample", List.of("x"), "y").output("y").bytes()),
                "model.onnx", "Upsample", "no 'scales' attribute");
        // A scale within range on a large map asked for an output side the nearest-index check then walked.
        assertMentions(rejected(new TestModel(8).input("x", 1, 1, 2, 4000).node("Upsample", List.of("x"), "y", TestModel.floats("scales", 1, 1, 1, 5000))
                .output("y").bytes()), "model.onnx", "20000000", "Limit.IMAGE_SIDE");
    }

    @Test
    public void padAxesFindings() {
        // Pad (opset 18) with fewer pads than two per named axis read past the pads.
        assertMentions(rejected(new TestModel(18).input("x", 1, 2, 4, 4).int64s("pads", 1, 1).int64s("axes", 2, 3)
                .node("Pad", List.of("x", "pads", "", "axes"), "y").output("y").bytes()), "model.onnx", "Pad", "two per axis");
        // An axis named twice was silently overwritten.
        assertMentions(rejected(new TestModel(18).input("x", 1, 2, 4, 4).int64s("pads", 1, 1, 1, 1).int64s("axes", 3, -1)
                .node("Pad", List.of("x", "pads", "", "axes"), "y").output("y").bytes()), "model.onnx", "Pad", "axis 3 twice");
    }

    @Test
    public void concatWithoutInputsIsRefused() {
        // A Concat of no inputs crashed the importer (it read the first input's rank).
        assertMentions(rejected(new TestModel(13).input("x", 1, 2, 4, 4).node("Concat", List.of(), "c", i("axis", 1))
                .node("Relu", List.of("x"), "y").output("y").bytes()), "model.onnx", "Concat", "no inputs");
        // A Concat of constant scalars indexed the axis of a rank-0 shape.
        assertMentions(rejected(new TestModel(13).input("x", 1, 2, 4, 4).scalar("a", 3).scalar("b", 4).node("Concat", List.of("a", "b"), "c", i("axis", 0))
                .node("Relu", List.of("x"), "y").output("y").bytes()), "model.onnx", "Concat", "scalars");
    }

    /**
     * A few hundred seeded random mutations of a valid model (flipped bytes, truncations, inserted and
     * duplicated runs): each must import and run, matching ONNX Runtime where it too accepts the bytes,
     * or fail with an OnnxException (or a GraphException from running it) naming the problem.
     */
    static final int FUZZ_ITERATIONS = Integer.getInteger("silhouette.fuzz.iterations", 300);

    @org.testng.annotations.DataProvider
    public Object[][] fuzzCorpora() {
        byte[] mobile = OnnxExporter.toModel(OnnxModelsPeerTest.randomized(OnnxModelsPeerTest.mobileNetStyle(8), 9), 17, "mobile").toByteArray();
        return new Object[][] {{"conv-bn-gemm", small().bytes(), FUZZ_ITERATIONS}, {"mobilenet-style", mobile, FUZZ_ITERATIONS / 2}};
    }

    @Test(dataProvider = "fuzzCorpora")
    public void fuzzedModelsFailCleanlyOrRunCorrectly(String corpus, byte[] valid, int iterations) {
        Tensor input = Tensor.uniform(Shape.of(2, 4, 6, 6), -1, 1, 7);
        Random r = new Random(20261125 + corpus.hashCode());
        int ran = 0, rejectedCount = 0, compared = 0;
        for (int iteration = 0; iteration < iterations; iteration++) {
            byte[] bytes = mutate(valid, r);
            Graph graph;
            Map<String, Tensor> ours;
            OnnxImporter.Imported imported;
            try {
                imported = OnnxImporter.read(bytes, null, corpus + " mutant " + iteration, OnnxImporter.Options.defaults());
                graph = imported.graph();
                Graph.Input in = graph.inputs().getFirst();
                int[] dims = new int[in.sampleShape().rank() + 1];
                dims[0] = 2;
                System.arraycopy(in.sampleShape().dims(), 0, dims, 1, dims.length - 1);
                Tensor x = Shape.of(dims).equals(input.shape()) ? input : Tensor.uniform(Shape.of(dims), -1, 1, iteration);
                ours = new CpuBackend().run(graph, Map.of(in.name(), x));
                ran++;
                Map<String, Tensor> theirs = runOrNull(bytes, Map.of(in.name(), x));
                if (theirs != null) {
                    compared++;
                    for (Map.Entry<String, String> o : imported.outputNames().entrySet()) {
                        Tensor expected = theirs.get(o.getKey()), actual = ours.get(o.getValue());
                        if (expected == null || hasNonFinite(expected) || hasNonFinite(actual)) continue;
                        OnnxOpsPeerTest.assertClose(actual, expected, Tolerances.NETWORK_RELATIVE, "mutant " + iteration + " output " + o.getKey());
                    }
                }
            } catch (OnnxException | GraphException e) {
                rejectedCount++;
                assertTrue(e.getMessage() != null && !e.getMessage().isBlank(), "mutant " + iteration + ": empty message");
            } catch (RuntimeException | Error e) {
                throw new AssertionError("mutant " + iteration + " crashed the importer or the CPU backend: " + e, e);
            }
        }
        assertEquals(ran + rejectedCount, iterations);
        assertTrue(ran > 5 && rejectedCount > 5, corpus + ": mutations should both run and be refused: ran " + ran + ", refused " + rejectedCount);
        assertTrue(compared > 0, "some mutants run on both");
    }

    static byte[] mutate(byte[] valid, Random r) {
        byte[] b = valid.clone();
        switch (r.nextInt(5)) {
            case 0 -> {
                for (int k = 1 + r.nextInt(3); k > 0; k--) b[r.nextInt(b.length)] ^= (byte) (1 << r.nextInt(8));
            }
            case 1 -> b = Arrays.copyOf(b, r.nextInt(b.length));
            case 2 -> b[r.nextInt(b.length)] = (byte) r.nextInt(256);
            case 3 -> {
                int at = r.nextInt(b.length), len = 1 + r.nextInt(16);
                byte[] ins = new byte[len];
                r.nextBytes(ins);
                byte[] c = new byte[b.length + len];
                System.arraycopy(b, 0, c, 0, at);
                System.arraycopy(ins, 0, c, at, len);
                System.arraycopy(b, at, c, at + len, b.length - at);
                b = c;
            }
            default -> {
                int from = r.nextInt(b.length), len = Math.min(b.length - from, 1 + r.nextInt(64)), at = r.nextInt(b.length);
                byte[] c = new byte[b.length + len];
                System.arraycopy(b, 0, c, 0, at);
                System.arraycopy(b, from, c, at, len);
                System.arraycopy(b, at, c, at + len, b.length - at);
                b = c;
            }
        }
        return b;
    }

    private static Map<String, Tensor> runOrNull(byte[] bytes, Map<String, Tensor> inputs) {
        try (OrtPeer ort = OrtPeer.open(bytes)) {
            return ort.run(inputs);
        } catch (IllegalStateException e) {
            return null;  // ONNX Runtime refuses the mutant; nothing to compare
        }
    }

    private static boolean hasNonFinite(Tensor t) {
        for (float v : t.data()) if (!Float.isFinite(v)) return true;
        return false;
    }
}
