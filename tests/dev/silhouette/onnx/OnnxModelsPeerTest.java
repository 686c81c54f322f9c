package dev.silhouette.onnx;

import dev.silhouette.Tolerances;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Set;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertNotNull;
import static org.testng.Assert.assertNull;
import static org.testng.Assert.assertTrue;

/**
 * Whole networks from the project's builders, with random weights (BatchNorm statistics included),
 * written to ONNX by the exporter, run by ONNX Runtime and by Silhouette after import.
 */
public class OnnxModelsPeerTest {

    /** A MobileNet-style network: depthwise separable blocks, ReLU6, h-swish, a squeeze-excite gate, a resize-and-concat head. */
    static Graph mobileNetStyle(long seed) {
        GraphBuilder b = new GraphBuilder(seed);
        String x = b.input("image", 3, 32, 32);
        x = b.add("stem.act", new Op.HardSwish(), b.batchNorm("stem.bn", b.conv("stem.conv", x, 16, Window.square(3, 2, 1), 1, false)));
        int[] widths = {16, 24, 24};
        for (int i = 0; i < widths.length; i++) {
            String in = x;
            String p = "block" + i;
            int channels = b.shape(in).c();
            String dw = b.add(p + ".dw.act", new Op.Clip(0, 6), b.batchNorm(p + ".dw.bn", b.conv(p + ".dw", in, channels, new Window(3, 3, i == 1 ? 2 : 1, i == 1 ? 2 : 1, 1, 1, 1, 1), channels, false)));
            String pw = b.batchNorm(p + ".pw.bn", b.conv(p + ".pw", dw, widths[i], Window.square(1, 1, 0), 1, false));
            // Squeeze-excite: a per-channel gate in (0, 1) multiplied onto the features (broadcast over H, W).
            String se = b.add(p + ".se.pool", new Op.GlobalAvgPool(), pw);
            se = b.relu(p + ".se.relu", b.conv(p + ".se.reduce", se, 8, Window.square(1, 1, 0), 1, true));
            se = b.add(p + ".se.gate", new Op.HardSigmoid(1f / 6, 0.5f), b.conv(p + ".se.expand", se, widths[i], Window.square(1, 1, 0), 1, true));
            x = b.add(p + ".se.scale", new Op.Elementwise(Op.Arithmetic.MUL), pw, se);
            if (channels == widths[i] && b.shape(in).equals(b.shape(x))) x = b.add(p + ".add", new Op.Add(), x, in);
        }
        String up = b.add("head.up", new Op.Interpolate(Op.Interpolate.Mode.BILINEAR, 16, 16), x);
        String near = b.add("head.near", new Op.Interpolate(Op.Interpolate.Mode.NEAREST, 16, 16), x);
        String cat = b.add("head.cat", new Op.Concat(1), up, near);
        String pooled = b.add("head.pool", new Op.AvgPool(Window.square(3, 2, 1), false), cat);
        String max = b.add("head.max", new Op.MaxPool(Window.square(2, 2, 0)), pooled);
        String flat = b.add("head.flatten", new Op.Flatten(), b.add("head.gap", new Op.GlobalAvgPool(), max));
        String logits = b.linear("classifier", flat, 10);
        b.output(b.add("probabilities", new Op.Softmax(), logits));
        return b.build();
    }

    /** Random but valid weights everywhere: BatchNorm scale, shift, mean and (positive) variance included. */
    static Graph randomized(Graph g, long seed) {
        Map<String, Tensor> p = new LinkedHashMap<>();
        long s = seed;
        for (Map.Entry<String, Tensor> e : g.parameters().entrySet()) {
            Shape shape = e.getValue().shape();
            String k = e.getKey();
            s++;
            if (k.endsWith(".running_var")) p.put(k, Tensor.uniform(shape, 0.5f, 1.5f, s));
            else if (k.endsWith(".running_mean") || k.endsWith(".bias")) p.put(k, Tensor.uniform(shape, -0.2f, 0.2f, s));
            else if (e.getValue().shape().rank() == 1) p.put(k, Tensor.uniform(shape, 0.5f, 1.5f, s));  // BatchNorm scale
            else p.put(k, e.getValue());  // convolution and linear weights: the builder's fan-scaled random init
        }
        return g.withParameters(p);
    }

    record Net(String name, Graph graph, boolean externalData) {
        @Override
        public String toString() {
            return name;
        }
    }

    @DataProvider
    public Object[][] networks() {
        Graph r18 = randomized(Models.build("resnet18", new Models.Options(100, 64, null, 1)), 11);
        Graph r50 = randomized(Models.build("resnet50", new Models.Options(100, 64, null, 2)), 12);
        Graph fm = randomized(Models.build("fmnist-resnet", Models.defaults("fmnist-resnet")), 13);
        Graph r20 = randomized(Models.build("resnet20", new Models.Options(10, 32, "layer2", 4)), 14);
        Graph mobile = randomized(mobileNetStyle(5), 15);
        return new Object[][] {
                {new Net("ResNet-18 64x64", r18, false)},
                {new Net("ResNet-18 64x64 BatchNorm folded, external data", Passes.foldBatchNorm(r18), true)},
                {new Net("ResNet-50 64x64", r50, false)},
                {new Net("fmnist-resnet with silhouette branch", fm, false)},
                {new Net("fmnist-resnet with silhouette branch, BatchNorm folded", Passes.foldBatchNorm(fm), false)},
                {new Net("ResNet-20 with silhouette after layer2", r20, true)},
                {new Net("MobileNet-style depthwise network", mobile, false)},
        };
    }

    @Test(dataProvider = "networks")
    public void importedNetworkMatchesOnnxRuntimeAndTheOriginal(Net net) throws IOException {
        Path dir = Files.createTempDirectory("onnx-models");
        Path file = dir.resolve("model.onnx");
        try {
            OnnxExporter.write(net.graph(), 17, file, net.externalData());
            if (net.externalData()) assertTrue(Files.size(dir.resolve("model.onnx.data")) > 0, "external weights written");
            OnnxImporter.Imported imported = OnnxImporter.read(file);

            // The round trip reproduces the graph: same nodes, ops, attributes and parameter values.
            assertEquals(imported.graph().nodes(), net.graph().nodes(), net + ": nodes after the round trip");
            assertEquals(imported.graph().outputs(), net.graph().outputs());
            for (Map.Entry<String, Tensor> e : net.graph().parameters().entrySet()) {
                assertEquals(imported.graph().parameters().get(e.getKey()).data(), e.getValue().data(), e.getKey());
            }
            boolean hasBranch = net.graph().outputs().contains(Models.SILHOUETTE);
            if (hasBranch) {
                assertEquals(imported.silhouette(), Models.SILHOUETTE, imported.note());
            } else {
                assertNull(imported.silhouette(), imported.note());
            }

            Graph.Input in = net.graph().inputs().getFirst();
            int[] sample = in.sampleShape().dims();
            int[] dims = new int[sample.length + 1];
            dims[0] = 2;
            System.arraycopy(sample, 0, dims, 1, sample.length);
            Map<String, Tensor> inputs = Map.of(in.name(), Tensor.uniform(Shape.of(dims), -1, 1, 99));
            Map<String, Tensor> expected;
            try (OrtPeer ort = OrtPeer.open(file)) {
                expected = ort.run(inputs);
            }
            Map<String, Tensor> actual = new CpuBackend().run(imported.graph(), inputs);
            assertEquals(expected.keySet(), Set.copyOf(net.graph().outputs()));
            for (String out : net.graph().outputs()) {
                assertNotNull(actual.get(out), out);
                OnnxOpsPeerTest.assertClose(actual.get(out), expected.get(out), Tolerances.NETWORK_RELATIVE, net + " output " + out);
            }
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) Files.delete(p);
            }
            Files.delete(dir);
        }
    }
}
