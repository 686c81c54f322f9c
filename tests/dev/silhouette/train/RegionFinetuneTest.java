package dev.silhouette.train;

import dev.silhouette.pipeline.Plans;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.Plans.Receiving;
import dev.silhouette.pipeline.TestPlans;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.pipeline.RegionQuantization;
import dev.silhouette.tensor.Window;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** Straight-through rules of the region-quantization ops (hand-worked values) and the fine-tuning network. */
public class RegionFinetuneTest {
    private static final float[] DY = {1, 2, 3, 4, 5, 6, 7, 8};

    @Test
    public void pactPassesTheGradientInsideZeroToAlphaOnly() {
        Tensor x = new Tensor(Shape.of(1, 1, 2, 3), new float[] {-0.5f, 0f, 0.3f, 1.99f, 2f, 3f});
        Tensor dy = new Tensor(x.shape(), new float[] {1, 2, 3, 4, 5, 6});
        // alpha 2: -0.5 clipped below, 2 and 3 at or above alpha.
        assertEquals(OpGradients.pactQuantize(x, dy, new Op.PactQuantize(3, 2f)).input().data(), new float[] {0, 2, 3, 4, 0, 0});
    }

    /**
     * Silhouette [0.1, 0.9 / 0.5, 0.2] under 2:50,4:50: the cut at rank 2 puts pixels 0 and 3 (the two
     * lowest) in region 0 (alpha 1) and pixels 1 and 2 in region 1 (alpha 3).
     */
    private static final Tensor SILHOUETTE = new Tensor(Shape.of(1, 1, 2, 2), new float[] {0.1f, 0.9f, 0.5f, 0.2f});
    private static final Tensor X = new Tensor(Shape.of(1, 2, 2, 2), new float[] {1.5f, 1.5f, 0.5f, 0.5f, -0.1f, 3f, 2.9f, 0.99f});

    private static Op.RegionQuantize region(int onlyRegion) {
        return new Op.RegionQuantize(RegionPolicy.parse("2:50,4:50"), List.of(1f, 3f), Op.Interpolate.Mode.NEAREST,
                Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD, onlyRegion);
    }

    @Test
    public void regionQuantizeUsesEachPixelsRegionClipLevel() {
        assertEquals(RegionOps.regionMap(SILHOUETTE, X.shape(), region(-1)), new byte[] {0, 1, 1, 0});
        Tensor dy = new Tensor(X.shape(), DY);
        // channel 0: 1.5 >= alpha 1 in region 0 is clipped, 1.5 < 3 in region 1 passes; channel 1: -0.1 and 3 (= alpha 3) are clipped.
        assertEquals(OpGradients.regionQuantize(X, SILHOUETTE, dy, region(-1)).input().data(), new float[] {0, 2, 3, 4, 0, 0, 7, 8});
        // The one-region form zeroes (and so passes nothing to) the other region's pixels.
        assertEquals(OpGradients.regionQuantize(X, SILHOUETTE, dy, region(0)).input().data(), new float[] {0, 0, 0, 4, 0, 0, 0, 8});
        assertEquals(OpGradients.regionQuantize(X, SILHOUETTE, dy, region(1)).input().data(), new float[] {0, 2, 3, 0, 0, 0, 7, 0});
    }

    @Test
    public void theNetworkRunsRegionQuantizationAndGivesTheSilhouetteNoGradient() {
        GraphBuilder b = new GraphBuilder(1);
        String x = b.input("x", 2, 2, 2);
        String s = b.input("s", 1, 2, 2);
        b.output(b.add("q", region(-1), x, s));
        Network net = new Network(b.build());
        Network.Pass pass = net.forward(Map.of("x", X, "s", SILHOUETTE), true);
        assertEquals(pass.value("q").data(), RegionOps.regionQuantize(X, SILHOUETTE, region(-1)).data());
        Map<String, Tensor> grads = net.backward(pass, Map.of("q", new Tensor(X.shape(), DY)), true);
        assertEquals(grads.get("x").data(), new float[] {0, 2, 3, 4, 0, 0, 7, 8});
        assertFalse(grads.containsKey("s"), grads.keySet().toString());
    }

    /**
     * Importance loss by hand: at x = 0.5 the 2-bit grid (alpha 1, step 1/3) gives 2/3 and the 4-bit grid (alpha
     * 3, step 0.2) gives 0.4 (2.5 steps, half to even), so every activation's change is 4/15 and a pixel's importance
     * is 4/15 times its summed |dy|. dy rising with the pixel index ranks the pixels 0, 1/3, 2/3, 1.
     */
    @Test
    public void theSilhouetteLearnsThePercentileRankOfEachPixelsImportance() {
        Tensor x = new Tensor(X.shape(), new float[] {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f});
        Tensor dy = new Tensor(X.shape(), new float[] {1, 2, 3, 4, -1, -2, -3, -4});
        float[] targets = {0, 1 / 3f, 2 / 3f, 1};
        float[] grad = OpGradients.silhouetteImportance(x, SILHOUETTE, dy, region(-1), 2f).data();
        for (int i = 0; i < 4; i++) assertEquals(grad[i], 2f * (SILHOUETTE.data()[i] - targets[i]) / 4, 1e-6f, "pixel " + i);
        // No gradient anywhere: every importance ties at 0, so every pixel aims at the middle rank.
        float[] tied = OpGradients.silhouetteImportance(x, SILHOUETTE, new Tensor(X.shape(), new float[8]), region(-1), 2f).data();
        for (int i = 0; i < 4; i++) assertEquals(tied[i], 2f * (SILHOUETTE.data()[i] - 0.5f) / 4, 1e-6f, "pixel " + i);
    }

    /** A 1 x 2 silhouette deciding a 2 x 4 layer (nearest): each silhouette pixel gets the importance of its 2 x 2 block. */
    @Test
    public void importanceReachesTheSilhouettePixelsThatDecideIt() {
        Tensor silhouette = new Tensor(Shape.of(1, 1, 1, 2), new float[] {0.3f, 0.6f});
        Tensor x = new Tensor(Shape.of(1, 1, 2, 4), new float[] {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f});
        // Left block |dy| sums to 1 + 1 + 1 + 1 = 4, right block to 0.5 + 0 + 0 + 3 = 3.5: the left one ranks higher,
        // although the single largest |dy| lies on the right.
        Tensor dy = new Tensor(x.shape(), new float[] {1, -1, 0.5f, 0, 1, 1, 0, 3});
        float[] grad = OpGradients.silhouetteImportance(x, silhouette, dy, region(-1), 1f).data();
        assertEquals(grad, new float[] {(0.3f - 1) / 2, (0.6f - 0) / 2}, 1e-6f);
    }

    @Test
    public void theNetworkPassesTheImportanceLossToALearnableSilhouetteOnly() {
        GraphBuilder b = new GraphBuilder(1);
        String x = b.input("x", 2, 2, 2);
        String logit = b.input("logit", 1, 2, 2);
        String s = b.add("s", new Op.Sigmoid(), logit);
        b.output(b.add("q", region(-1), x, s));
        Tensor logits = new Tensor(SILHOUETTE.shape(), new float[] {-2f, 2f, 0f, -1.5f});
        Map<String, Tensor> in = Map.of("x", X, "logit", logits);
        Tensor dy = new Tensor(X.shape(), DY);

        Network withLoss = new Network(b.build(), Map.of(), new Network.RegionTraining(3f, false));
        Network.Pass pass = withLoss.forward(in, true);
        Tensor silhouette = pass.value("s");
        Tensor expected = OpGradients.sigmoid(silhouette, OpGradients.silhouetteImportance(X, silhouette, dy, region(-1), 3f));
        assertEquals(withLoss.backward(pass, Map.of("q", dy), true).get("logit").data(), expected.data(), 1e-7f);

        Network withoutLoss = new Network(b.build());
        assertFalse(withoutLoss.backward(withoutLoss.forward(in, true), Map.of("q", dy), true).containsKey("logit"), "weight 0: no gradient");
        expectThrows(IllegalArgumentException.class, () -> new Network.RegionTraining(-1f, false));
        expectThrows(IllegalArgumentException.class, () -> new Network.RegionTraining(Float.NaN, false));
    }

    /**
     * A trunk conv feeding a 1x1 branch and the region quantizer: the importance loss trains the branch and leaves
     * the trunk's gradient exactly what the task alone gives it. Once the branch also feeds the output (as the
     * attention branch feeds the prediction), the loss is not the branch's only gradient and flows on.
     */
    @Test
    public void theImportanceLossTrainsTheBranchAndStopsAtItsInput() {
        Tensor dy = new Tensor(X.shape(), DY);
        Map<String, Tensor> in = Map.of("x", X);
        Map<String, Tensor> task = trunkGrads(false, 0f, dy, in), withLoss = trunkGrads(false, 3f, dy, in);
        assertEquals(withLoss.get("t.weight").data(), task.get("t.weight").data());
        assertEquals(withLoss.get("t.bias").data(), task.get("t.bias").data());
        assertTrue(withLoss.containsKey("silhouette.conv.weight") && !task.containsKey("silhouette.conv.weight"), withLoss.keySet().toString());
        assertTrue(Math.abs(withLoss.get("silhouette.conv.weight").data()[0]) > 0, "the branch learns");

        Map<String, Tensor> alsoOutput = trunkGrads(true, 3f, dy, in), alsoOutputTask = trunkGrads(true, 0f, dy, in);
        assertFalse(Arrays.equals(alsoOutput.get("t.weight").data(), alsoOutputTask.get("t.weight").data()),
                "a branch that also feeds an output passes its gradient on");
    }

    private static Map<String, Tensor> trunkGrads(boolean branchAlsoFeedsAnOutput, float silhouetteWeight, Tensor dy, Map<String, Tensor> in) {
        GraphBuilder b = new GraphBuilder(3);
        String x = b.input("x", 2, 2, 2);
        String t = b.conv("t", x, 2, Window.square(1, 1, 0), 1, true);
        String logit = b.conv(Models.SILHOUETTE + ".conv", t, 1, Window.square(1, 1, 0), 1, false);
        String s = b.add(Models.SILHOUETTE, new Op.Sigmoid(), logit);
        b.output(b.add("q", region(-1), t, s));
        Map<String, Tensor> outputGrads = new HashMap<>(Map.of("q", dy));
        if (branchAlsoFeedsAnOutput) {
            b.output(b.add("aux", new Op.Relu(), s));
            outputGrads.put("aux", new Tensor(SILHOUETTE.shape(), new float[] {0, 0, 0, 0}));
        }
        Network net = new Network(b.build(), Map.of(), new Network.RegionTraining(silhouetteWeight, false));
        return net.backward(net.forward(in, true), outputGrads);
    }

    /**
     * PACT's clip-level gradient by hand. Under 2:50,4:50 (alphas 1 and 3) region 0's pixels 0 and 3 hold 1.5 (at
     * or above 1: dy 1), 0.5, -0.1 and 0.99; region 1's pixels 1 and 2 hold 1.5, 0.5, 3 (at or above 3: dy 6) and 2.9.
     */
    @Test
    public void clipLevelsCollectTheGradientWhereTheInputIsClipped() {
        Tensor dy = new Tensor(X.shape(), DY);
        assertEquals(OpGradients.regionQuantize(X, SILHOUETTE, dy, region(-1)).clipLevels().data(), new float[] {1, 6});
        Tensor x = new Tensor(Shape.of(1, 1, 2, 3), new float[] {-0.5f, 0f, 0.3f, 1.99f, 2f, 3f});
        assertEquals(OpGradients.pactQuantize(x, new Tensor(x.shape(), new float[] {1, 2, 3, 4, 5, 6}), new Op.PactQuantize(3, 2f)).clipLevels().data(),
                new float[] {11});
    }

    @Test
    public void learnedClipLevelsAreParametersTheForwardUses() {
        GraphBuilder b = new GraphBuilder(1);
        String x = b.input("x", 2, 2, 2);
        String s = b.input("s", 1, 2, 2);
        String p = b.add("p", new Op.PactQuantize(8, 4f), x);
        b.output(b.add("q", region(-1), p, s));
        Network net = new Network(b.build(), Map.of(), new Network.RegionTraining(0f, true));
        assertEquals(net.parameters().get("q.alpha").data(), new float[] {1, 3});
        assertEquals(net.clipLevels(), Map.of("x", Map.of(8, 4f), "p", Map.of(2, 1f, 4, 3f)));
        assertTrue(net.trainable().containsAll(List.of("p.alpha", "q.alpha")), net.trainable().toString());

        Map<String, Tensor> in = Map.of("x", X, "s", SILHOUETTE);
        Network.Pass pass = net.forward(in, true);
        Map<String, Tensor> grads = net.backward(pass, Map.of("q", new Tensor(X.shape(), DY)), true);
        assertEquals(grads.get("q.alpha").data(), OpGradients.regionQuantize(pass.value("p"), SILHOUETTE, new Tensor(X.shape(), DY), region(-1)).clipLevels().data());
        assertTrue(grads.containsKey("p.alpha"), grads.keySet().toString());

        // A step moves the levels, and the forward quantizes with the moved ones; a level pushed below zero stops at the minimum.
        net.parameters().get("q.alpha").data()[0] = 0.5f;
        net.parameters().get("q.alpha").data()[1] = -2f;
        Op.RegionQuantize moved = new Op.RegionQuantize(RegionPolicy.parse("2:50,4:50"), List.of(0.5f, Network.MIN_CLIP_LEVEL), Op.Interpolate.Mode.NEAREST,
                Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD, -1);
        Tensor p8 = RegionOps.pactQuantize(X, new Op.PactQuantize(8, 4f));
        assertEquals(net.forward(in, false).value("q").data(), RegionOps.regionQuantize(p8, SILHOUETTE, moved).data());
        assertEquals(net.clipLevels().get("p"), Map.of(2, 0.5f, 4, Network.MIN_CLIP_LEVEL));
        // Without learning, the ops' own levels stay and no parameter appears.
        assertFalse(new Network(b.build()).parameters().containsKey("q.alpha"));
    }

    private static final Plans.ClipLevels CLIPS = (value, bits) -> 0.5f + 0.25f * bits;

    private static final Receiving REGION = new Receiving.Region(RegionPolicy.parse("2:50,3:30,4:20"), false, 4, Op.Interpolate.Mode.NEAREST,
            Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD);

    private static QuantPlan plan(Graph g) {
        return TestPlans.plan(g, REGION, CLIPS);
    }

    private static Tensor images(int n) {
        SplittableRandom rnd = new SplittableRandom(5);
        float[] v = new float[n * 28 * 28];
        for (int i = 0; i < v.length; i++) v[i] = (float) rnd.nextDouble();
        return new Tensor(Shape.of(n, 1, 28, 28), v);
    }

    @Test
    public void theFinetuningNetworkKeepsFloatWeightsAndQuantizesThemAtThePlansWidths() {
        Graph model = ModelLoader.load(ModelLoader.BUNDLED).graph();
        Network net = RegionFinetune.network(model, plan(model), Network.RegionTraining.NONE);
        RegionQuantization.Layers layers = RegionQuantization.layers(model);
        for (Node n : layers.receiving()) {
            assertEquals(net.parameters().get(n.name() + ".weight").data(), model.parameters().get(n.name() + ".weight").data(), n.name());
        }
        String q = net.quantization();
        assertTrue(q.contains(layers.receiving().getFirst().name() + "=SymmetricWeights[bits=4]"), q);
        assertTrue(q.contains(layers.preBranch().getFirst().name() + "=SymmetricWeights[bits=8]"), q);
        assertTrue(net.graph().nodes().stream().anyMatch(n -> n.op() instanceof Op.RegionQuantize), "region quantizers in the loop");
    }

    /** On the folded graph the network's forward (STE quantizers on float weights) is the main job's graph (weights quantized by the pass). */
    @Test
    public void itsForwardIsTheMainJobsRegionQuantizedGraph() {
        Graph folded = Passes.foldBatchNorm(ModelLoader.load(ModelLoader.BUNDLED).graph());
        Tensor in = images(6);
        String input = folded.inputs().getFirst().name();
        Tensor expected = new CpuBackend().run(TestPlans.quantized(folded, REGION, CLIPS), Map.of(input, in), List.of(Models.LOGITS)).get(Models.LOGITS);
        Tensor actual = RegionFinetune.network(folded, plan(folded), Network.RegionTraining.NONE).forward(Map.of(input, in), false).value(Models.LOGITS);
        for (int i = 0; i < expected.size(); i++) assertEquals(actual.data()[i], expected.data()[i], 1e-4f, "logit " + i);
    }

    /** Unfolded (as trained): per-channel symmetric weights commute with BatchNorm's per-channel scale, so the predictions agree. */
    @Test
    public void unfoldedItPredictsAsTheFoldedMainJobGraph() {
        Graph model = ModelLoader.load(ModelLoader.BUNDLED).graph();
        Graph folded = Passes.foldBatchNorm(model);
        Tensor in = images(20);
        String input = folded.inputs().getFirst().name();
        Tensor expected = new CpuBackend().run(TestPlans.quantized(folded, REGION, CLIPS), Map.of(input, in), List.of(Models.LOGITS)).get(Models.LOGITS);
        Tensor actual = RegionFinetune.network(model, plan(model), Network.RegionTraining.NONE).forward(Map.of(input, in), false).value(Models.LOGITS);
        double maxDiff = 0;
        for (int i = 0; i < expected.size(); i++) maxDiff = Math.max(maxDiff, Math.abs(actual.data()[i] - expected.data()[i]));
        System.out.println("max logit difference unfolded vs folded: " + maxDiff);
        assertTrue(maxDiff < 1e-3, "max logit difference " + maxDiff);
    }

    @Test
    public void theSharedRegionAndTheUniformSchemesAreFinetunedThePerRegionFormIsNot() {
        Graph model = ModelLoader.load(ModelLoader.BUNDLED).graph();
        Network uniform = RegionFinetune.network(model, TestPlans.plan(model, new Receiving.Uniform(3, 4), CLIPS), Network.RegionTraining.NONE);
        String q = uniform.quantization();
        assertTrue(q.contains(RegionQuantization.layers(model).receiving().getFirst().name() + "=SymmetricWeights[bits=4]"), q);
        assertTrue(uniform.graph().nodes().stream().anyMatch(n -> n.op() instanceof Op.PactQuantize p && p.bits() == 3), "3-bit activations in the loop");
        QuantPlan perRegion = TestPlans.plan(model, new Receiving.Region(RegionPolicy.parse("2:50,3:30,4:20"), true, 4, Op.Interpolate.Mode.NEAREST,
                Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD), CLIPS);
        String message = org.testng.Assert.expectThrows(IllegalArgumentException.class,
                () -> RegionFinetune.network(model, perRegion, Network.RegionTraining.NONE)).getMessage();
        assertTrue(message.contains("PACT and shared-weight region activations"), message);
    }
}
