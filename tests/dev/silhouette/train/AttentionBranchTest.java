package dev.silhouette.train;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Op;
import dev.silhouette.pipeline.RegionQuantization;
import dev.silhouette.io.Idx;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertThrows;
import static org.testng.Assert.assertTrue;

/** The attention-branch (ABN) form of the silhouette branch: the blend op, the model, and that training reaches the branch. */
public class AttentionBranchTest {
    private static final Op.ChannelSqueeze MAX = new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MAX, 1);

    private static Graph abn(String model, String after, long seed) {
        Models.Options d = Models.defaults(model);
        return Models.build(model, new Models.Options(d.numClasses(), d.inputSize(), after, seed, MAX));
    }

    @Test
    public void blendForwardMatchesHandWorkedValues() {
        GraphBuilder b = new GraphBuilder(0);
        String main = b.input("main", 2), aux = b.input("aux", 2);
        b.output(b.add("y", new Op.LogitBlend(), main, aux));
        Graph g = b.build();
        assertEquals(g.parameters().get("y.gate").data()[0], 3.0f, "the gate starts at 3.0");
        // w = ln 3 gives g = 3 / (1 + 3) = 0.75: y = 0.75 main + 0.25 aux.
        g = g.withParameters(Map.of("y.gate", new Tensor(Shape.of(1), new float[] {(float) Math.log(3)})));
        Tensor y = new CpuBackend().run(g, Map.of("main", new Tensor(Shape.of(2, 2), new float[] {2, -4, 0, 1}),
                "aux", new Tensor(Shape.of(2, 2), new float[] {6, 8, 4, -3}))).get("y");
        float[] expected = {0.75f * 2 + 0.25f * 6, 0.75f * -4 + 0.25f * 8, 1, 0};
        for (int i = 0; i < 4; i++) assertEquals(y.data()[i], expected[i], 1e-6, "blended logit " + i);
        assertEquals(expected[0], 3.0f);
        assertEquals(expected[1], -1.0f);
    }

    @Test
    public void blendRefusesLogitsOfDifferentShapes() {
        GraphBuilder b = new GraphBuilder(0);
        String main = b.input("main", 3), aux = b.input("aux", 4);
        Exception e = org.testng.Assert.expectThrows(RuntimeException.class, () -> b.add("y", new Op.LogitBlend(), main, aux));
        assertTrue(e.getMessage().contains("different shapes"), e.getMessage());
    }

    @Test
    public void abnModelBuildsAndItsOutputsAreTheBlendAndTheSqueezedAttentionMap() {
        Graph g = abn("fmnist-resnet", "layer1", 0);
        assertEquals(g.outputs(), List.of(Models.BLENDED_LOGITS, Models.SILHOUETTE));
        assertEquals(Models.logits(g), Models.BLENDED_LOGITS);
        assertEquals(Models.logits(Models.build("fmnist-resnet", Models.defaults("fmnist-resnet"))), Models.LOGITS, "the 1x1 branch stays the default");
        assertEquals(g.parameters().get("silhouette.attention.weight").shape(), Shape.of(10, 16, 3, 3));
        // The branch is not main path: its conv stays unquantized and the branch point is the block it reads.
        assertEquals(RegionQuantization.branchPoint(g), "layer1.0.relu");
        assertFalse(RegionQuantization.layers(g).receiving().stream().anyMatch(n -> n.name().startsWith("silhouette")));
        assertEquals(RegionQuantization.layers(g).receiving().size(), RegionQuantization.layers(Models.build("fmnist-resnet", Models.defaults("fmnist-resnet"))).receiving().size());

        Tensor x = Tensor.uniform(Shape.of(2, 1, 28, 28), 0, 1, 5);
        Map<String, Tensor> out = new CpuBackend().run(g, Map.of("input", x),
                List.of(Models.BLENDED_LOGITS, Models.SILHOUETTE, Models.LOGITS, "silhouette.attention", "silhouette.logits"));
        Tensor blended = out.get(Models.BLENDED_LOGITS), fc = out.get(Models.LOGITS), aux = out.get("silhouette.logits"), map = out.get("silhouette.attention");
        assertEquals(blended.shape(), Shape.of(2, 10));
        double gate = 1 / (1 + Math.exp(-3.0));
        for (int i = 0; i < blended.size(); i++) assertEquals(blended.data()[i], gate * fc.data()[i] + (1 - gate) * aux.data()[i], 1e-5);
        // Auxiliary logits: the attention map's per-channel spatial mean; silhouette: its channel max, rescaled per image to [0, 1].
        Tensor sil = out.get(Models.SILHOUETTE);
        assertEquals(sil.shape(), Shape.of(2, 1, 28, 28));
        int plane = 28 * 28;
        for (int n = 0; n < 2; n++) {
            for (int c = 0; c < 10; c++) {
                double sum = 0;
                for (int p = 0; p < plane; p++) sum += map.data()[(n * 10 + c) * plane + p];
                assertEquals(aux.data()[n * 10 + c], sum / plane, 1e-4);
            }
            float[] max = new float[plane];
            float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY;
            for (int p = 0; p < plane; p++) {
                max[p] = Float.NEGATIVE_INFINITY;
                for (int c = 0; c < 10; c++) max[p] = Math.max(max[p], map.data()[(n * 10 + c) * plane + p]);
                lo = Math.min(lo, max[p]);
                hi = Math.max(hi, max[p]);
            }
            assertTrue(hi > lo);
            for (int p = 0; p < plane; p++) assertEquals(sil.data()[n * plane + p], (max[p] - lo) / (hi - lo), 1e-5);
        }
    }

    @Test
    public void cifarResNetTakesTheBranchAfterANamedBlock() {
        Graph g = abn("resnet20", "layer2", 1);
        Map<String, Tensor> out = new CpuBackend().run(g, Map.of("input", Tensor.uniform(Shape.of(1, 3, 32, 32), 0, 1, 2)));
        assertEquals(out.get(Models.BLENDED_LOGITS).shape(), Shape.of(1, 10));
        assertEquals(out.get(Models.SILHOUETTE).shape(), Shape.of(1, 1, 16, 16));
        assertThrows(IllegalArgumentException.class, () -> Models.parseBranch("attention-median"));
    }

    @Test
    public void trainingMovesTheBranchAndTheGateAndTheModelFileKeepsTheForm() throws Exception {
        Graph g = abn("fmnist-resnet", "layer1", 0);
        Network net = new Network(g);
        Tensor before = net.parameters().get("silhouette.attention.weight").copy();
        int[] labels = new int[16];
        for (int i = 0; i < labels.length; i++) labels[i] = i % 10;
        Idx.Dataset data = new Idx.Dataset(Tensor.uniform(Shape.of(16, 1, 28, 28), 0, 1, 3), labels);
        Trainer t = new Trainer(net, new Optimizer.Sgd(0.9, true, 0), new Schedule.Constant(0.05), data,
                new Trainer.Config(1, 16, 0, Batches.Augmentation.NONE, Models.logits(g)));
        for (int i = 0; i < 3; i++) t.trainStep(data.images(), data.labels());
        float[] w0 = before.data(), w1 = net.parameters().get("silhouette.attention.weight").data();
        double moved = 0;
        for (int i = 0; i < w0.length; i++) moved = Math.max(moved, Math.abs(w1[i] - w0[i]));
        assertTrue(moved > 1e-5, "the attention conv's weights moved by at most " + moved);
        assertTrue(net.parameters().get("silhouette.attention.bias").data()[0] != 0f, "the attention conv's bias moved");
        assertTrue(net.parameters().get("logits.gate").data()[0] != 3.0f, "the gate moved");

        // A gradient asked of the silhouette itself is refused: the squeeze is forward-only by design.
        Network.Pass pass = net.forward(Map.of("input", data.images()), true);
        Tensor s = pass.value(Models.SILHOUETTE);
        Exception e = org.testng.Assert.expectThrows(IllegalArgumentException.class,
                () -> net.backward(pass, Map.of(Models.SILHOUETTE, Tensor.zeros(s.shape().dims()))));
        assertTrue(e.getMessage().contains("not differentiated"), e.getMessage());

        Path dir = Files.createTempDirectory("abn");
        try {
            Path file = dir.resolve("abn.safetensors");
            Trainer.saveModel(net, file, Map.of(ModelLoader.META_MODEL, "fmnist-resnet", ModelLoader.META_SILHOUETTE_AFTER, "layer1",
                    ModelLoader.META_BRANCH, "attention-max"));
            Graph loaded = ModelLoader.load(file.toString()).graph();
            assertEquals(loaded.outputs(), List.of(Models.BLENDED_LOGITS, Models.SILHOUETTE));
            assertEquals(loaded.parameters().get("logits.gate").data()[0], net.parameters().get("logits.gate").data()[0]);
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) Files.delete(p);
            }
            Files.delete(dir);
        }
    }
}
