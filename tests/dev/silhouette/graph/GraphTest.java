package dev.silhouette.graph;

import dev.silhouette.tensor.Window;
import dev.silhouette.Tolerances;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertThrows;
import static org.testng.Assert.assertTrue;

public class GraphTest {

    static String message(Runnable r) {
        try {
            r.run();
        } catch (IllegalArgumentException e) {
            return e.getMessage();
        }
        throw new AssertionError("expected an IllegalArgumentException");
    }

    @Test
    public void publishedResNetFigures() {
        GraphStats r18 = GraphStats.of(Models.build("resnet18", Models.defaults("resnet18")), 1);
        assertEquals(r18.parameters(), 11_689_512L, "ResNet-18 parameters (torchvision)");
        assertEquals(r18.macs() / 1e9, 1.82, 0.01, "ResNet-18 GMACs at 224x224 (published: 1.8)");
        GraphStats r50 = GraphStats.of(Models.build("resnet50", Models.defaults("resnet50")), 1);
        assertEquals(r50.parameters(), 25_557_032L, "ResNet-50 parameters (torchvision)");
        assertEquals(r50.macs() / 1e9, 4.09, 0.01, "ResNet-50 GMACs at 224x224");
        // CIFAR ResNets: 6n+2 weighted layers; with projection shortcuts ResNet-20 has 0.27M parameters.
        Graph r20 = Models.build("resnet20", Models.defaults("resnet20"));
        assertEquals(r20.nodes().stream().filter(n -> n.op() instanceof Op.Conv2d c && c.window().kernelH() == 3).count(), 19L, "3x3 convs of ResNet-20");
        assertEquals(GraphStats.of(r20, 1).parameters() / 1e6, 0.27, 0.01);
        assertEquals(Models.build("resnet56", Models.defaults("resnet56")).nodes().stream().filter(n -> n.op() instanceof Op.Conv2d c && c.window().kernelH() == 3).count(), 55L);
    }

    @Test
    public void silhouetteBranchAfterAnyBlock() {
        for (String after : List.of("stem", "layer1", "layer2.0", "layer3")) {
            Graph g = Models.build("resnet20", new Models.Options(10, 32, after, 1));
            assertTrue(g.outputs().contains(Models.SILHOUETTE), after + ": silhouette output");
            Shape s = g.inferShapes(2).get(Models.SILHOUETTE);
            int size = after.startsWith("layer2") ? 16 : after.equals("layer3") ? 8 : 32;
            assertEquals(s, Shape.of(2, 1, size, size), "silhouette after " + after);
            Map<String, Tensor> out = new CpuBackend().run(g, Map.of("input", Tensor.uniform(Shape.of(2, 3, 32, 32), 0, 1, 3)));
            for (float v : out.get(Models.SILHOUETTE).data()) assertTrue(v >= 0 && v <= 1, "silhouette value " + v + " outside [0, 1] (float sigmoid saturates)");
        }
        String msg = message(() -> Models.build("resnet18", new Models.Options(1000, 224, "layer9", 0)));
        assertTrue(msg.contains("layer9") && msg.contains("layer4.1"), msg);
        assertFalse(Models.build("resnet18", Models.defaults("resnet18")).outputs().contains(Models.SILHOUETTE));
    }

    @Test
    public void shapeErrorsNameNodeAndMismatch() {
        GraphBuilder b = new GraphBuilder(0);
        String x = b.input("input", 3, 8, 8);
        String msg = message(() -> b.add("conv", new Op.Conv2d(4, 8, Window.square(3, 1, 1), 1, false), x));
        assertTrue(msg.contains("'conv'") && msg.contains("4 input channels") && msg.contains("[1, 3, 8, 8]"), msg);
        String y = b.conv("c1", x, 6, Window.square(3, 2, 1), 1, false);
        msg = message(() -> b.add("sum", new Op.Add(), x, y));
        assertTrue(msg.contains("'sum'") && msg.contains("[1, 3, 8, 8]") && msg.contains("[1, 6, 4, 4]"), msg);
        msg = message(() -> b.add("pool", new Op.MaxPool(Window.square(9, 1, 0)), x));
        assertTrue(msg.contains("'pool'") && msg.contains("does not fit"), msg);
        msg = message(() -> b.add("fc", new Op.Linear(10, 2, true), x));
        assertTrue(msg.contains("'fc'") && msg.contains("rank-2"), msg);
        msg = message(() -> b.add("cat", new Op.Concat(1), x, y));
        assertTrue(msg.contains("'cat'") && msg.contains("axis 2"), msg);
        assertThrows(IllegalArgumentException.class, () -> new Op.Conv2d(6, 4, Window.square(3, 1, 1), 4, false));
    }

    @Test
    public void graphValidationRejectsBrokenGraphs() {
        Graph good = Models.build("resnet20", Models.defaults("resnet20"));
        Map<String, Tensor> params = new HashMap<>(good.parameters());
        params.remove("layer1.0.conv1.weight");
        String msg = message(() -> good.withParameters(params));
        assertTrue(msg.contains("layer1.0.conv1.weight") && msg.contains("missing"), msg);
        params.put("layer1.0.conv1.weight", Tensor.zeros(16, 16, 3, 1));
        msg = message(() -> good.withParameters(params));
        assertTrue(msg.contains("[16, 16, 3, 1]") && msg.contains("[16, 16, 3, 3]"), msg);
        List<Node> cyclic = List.of(new Node("a", new Op.Relu(), List.of("b")), new Node("b", new Op.Relu(), List.of("a")));
        msg = message(() -> new Graph(List.of(new Graph.Input("x", Shape.of(1, 2, 2))), cyclic, List.of("b"), Map.of()));
        assertTrue(msg.contains("'a'") && msg.contains("cycle"), msg);
        msg = message(() -> good.withOutputs(List.of("nope")));
        assertTrue(msg.contains("nope"), msg);
    }

    @Test
    public void batchNormFoldingKeepsOutputs() {
        Graph g = Models.build("resnet20", new Models.Options(10, 32, "layer1", 7));
        // Non-trivial BatchNorm statistics, so folding has something to get wrong.
        Map<String, Tensor> params = new HashMap<>(g.parameters());
        long seed = 11;
        for (Node n : g.nodes()) {
            if (n.op() instanceof Op.BatchNorm bn) {
                params.put(n.name() + ".weight", Tensor.uniform(Shape.of(bn.channels()), 0.5f, 1.5f, seed++));
                params.put(n.name() + ".bias", Tensor.uniform(Shape.of(bn.channels()), -0.5f, 0.5f, seed++));
                params.put(n.name() + ".running_mean", Tensor.uniform(Shape.of(bn.channels()), -0.5f, 0.5f, seed++));
                params.put(n.name() + ".running_var", Tensor.uniform(Shape.of(bn.channels()), 0.5f, 2f, seed++));
            }
        }
        g = g.withParameters(params);
        Graph folded = Passes.foldBatchNorm(g);
        assertEquals(folded.nodes().stream().filter(n -> n.op() instanceof Op.BatchNorm).count(), 0L, "every BatchNorm follows a conv with no other reader");
        assertEquals(folded.outputs(), g.outputs(), "outputs keep their names");
        Tensor x = Tensor.uniform(Shape.of(3, 3, 32, 32), 0, 1, 5);
        Map<String, Tensor> before = new CpuBackend().run(g, Map.of("input", x));
        Map<String, Tensor> after = new CpuBackend().run(folded, Map.of("input", x));
        float[] a = before.get(Models.LOGITS).data(), b = after.get(Models.LOGITS).data();
        double scale = 0;
        for (float v : a) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < a.length; i++) {
            assertEquals(b[i], a[i], Tolerances.NETWORK_RELATIVE * scale, "logit " + i);
        }
    }

    @Test
    public void foldingLeavesSharedConvOutputsAlone() {
        GraphBuilder b = new GraphBuilder(0);
        String x = b.input("input", 2, 4, 4);
        String c = b.conv("conv", x, 2, Window.square(1, 1, 0), 1, false);
        String bn = b.batchNorm("bn", c);
        b.output(b.add("sum", new Op.Add(), bn, c));
        Graph folded = Passes.foldBatchNorm(b.build());
        assertTrue(folded.nodes().stream().anyMatch(n -> n.op() instanceof Op.BatchNorm), "the conv output is read twice: BatchNorm stays");
    }
}
