package dev.silhouette.train;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Models;
import dev.silhouette.io.Idx;
import dev.silhouette.pipeline.RegionQuantization;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.Map;
import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertNotEquals;
import static org.testng.Assert.assertTrue;

/** The catalog's model for 60x60 cluttered images: its shapes, where its silhouette sits, and that it trains. */
public class ClutteredResNetTest {

    /** A convolution's output side: floor((n + 2 pad - kernel) / stride) + 1. */
    private static int out(int n, int kernel, int stride, int pad) {
        return (n + 2 * pad - kernel) / stride + 1;
    }

    @Test
    public void buildsForSixtyPixelsWithTheSilhouetteAfterTheFirstStage() {
        Graph g = Models.build("cluttered-resnet", Models.defaults("cluttered-resnet"));
        assertEquals(g.inputs().getFirst().sampleShape(), Shape.of(1, 60, 60));
        int stem = out(60, 3, 2, 1), stage2 = out(stem, 3, 2, 1), stage3 = out(stage2, 3, 2, 1);
        assertEquals(new int[] {stem, stage2, stage3}, new int[] {30, 15, 8});
        Map<String, Shape> s = g.inferShapes(2);
        assertEquals(s.get("conv1"), Shape.of(2, 16, stem, stem));
        assertEquals(s.get("layer1.0.relu"), Shape.of(2, 16, stem, stem));
        assertEquals(s.get("layer2.0.relu"), Shape.of(2, 32, stage2, stage2));
        assertEquals(s.get("layer3.0.relu"), Shape.of(2, 64, stage3, stage3));
        assertEquals(s.get(Models.SILHOUETTE), Shape.of(2, 1, stem, stem), "the silhouette has layer1's resolution");
        assertEquals(s.get(Models.LOGITS), Shape.of(2, 10));
        assertEquals(RegionQuantization.branchPoint(g), "layer1.0.relu");
        // Same parameters as fmnist-resnet: a stride changes no weight's shape.
        Graph small = Models.build("fmnist-resnet", Models.defaults("fmnist-resnet"));
        assertEquals(g.parameters().keySet(), small.parameters().keySet());
        g.parameters().forEach((name, t) -> assertEquals(t.shape(), small.parameters().get(name).shape(), name));
        assertEquals(RegionQuantization.layers(g).receiving().size(), RegionQuantization.layers(small).receiving().size());
    }

    @Test
    public void trainsOnSixtyPixelImages() {
        Graph g = Models.build("cluttered-resnet", Models.defaults("cluttered-resnet"));
        int n = 4;
        SplittableRandom rnd = new SplittableRandom(4);
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) labels[i] = rnd.nextInt(10);
        Idx.Dataset data = new Idx.Dataset(Tensor.uniform(Shape.of(n, 1, 60, 60), 0, 1, 4), labels);
        Network net = new Network(g);
        Tensor before = net.parameters().get("layer2.0.conv1.weight").copy();
        Trainer t = new Trainer(net, new Optimizer.Sgd(0.9, true, 0), new Schedule.Constant(0.05), data,
                new Trainer.Config(1, n, 0, Batches.Augmentation.NONE, Models.LOGITS));
        double first = t.trainStep(data.images(), data.labels()).loss();
        assertTrue(Double.isFinite(first) && first > 0, "loss " + first);
        assertNotEquals(net.parameters().get("layer2.0.conv1.weight").data(), before.data(), "one step moves the weights");
        double last = first;
        for (int i = 0; i < 5; i++) last = t.trainStep(data.images(), data.labels()).loss();
        assertTrue(last < first, "six steps on one batch lower its loss: " + first + " -> " + last);
    }
}
