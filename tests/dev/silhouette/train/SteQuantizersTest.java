package dev.silhouette.train;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.Op;
import dev.silhouette.io.Idx;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.HashMap;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertThrows;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** Forward values worked by hand from the formulas in SteQuantizers' documentation, and the STE gradients. */
public class SteQuantizersTest {

    private static Tensor t(float... v) {
        return new Tensor(Shape.of(1, v.length), v);
    }

    private static void assertValues(Tensor actual, float[] expected, String what) {
        for (int i = 0; i < expected.length; i++) assertEquals(actual.data()[i], expected[i], 1e-6, what + " element " + i);
    }

    @Test
    public void forwardIsTheInferenceLibrarysGridRoundingHalfToEven() {
        // Channel max 3 at 3 bits: scale 1, so the ties 0.5, 1.5, 2.5 and -0.5 go to the even 0, 2, 2 and 0.
        Tensor w = new Tensor(Shape.of(1, 5), new float[] {0.5f, 1.5f, 2.5f, -0.5f, 3f});
        assertValues(new SteQuantizers.SymmetricWeights(3).forward(w), new float[] {0, 2, 2, 0, 3}, "ties to even");
        Tensor library = dev.silhouette.quant.Quantizers.symmetric(w, 3, new float[] {3f}).dequantize();
        assertEquals(new SteQuantizers.SymmetricWeights(3).forward(w).data(), library.data());
    }

    @Test
    public void symmetricWeightsPerChannel() {
        // Channel 0: max 1.0, 3 bits -> 3 levels each side, step 1/3. Channel 1: max 4, step 4/3.
        Tensor w = new Tensor(Shape.of(2, 4), new float[] {0.3f, -1.0f, 0.55f, 0.05f, 4f, -0.7f, 2f, 0f});
        Tensor q = new SteQuantizers.SymmetricWeights(3).forward(w);
        assertValues(q, new float[] {1 / 3f, -1, 2 / 3f, 0, 4, -4 / 3f, 8 / 3f, 0}, "3-bit weights");
        Tensor g = t(1, 2, 3, 4, 5, 6, 7, 8).reshape(Shape.of(2, 4));
        assertEquals(new SteQuantizers.SymmetricWeights(3).backward(w, g).data(), g.data(), "straight through");
        assertThrows(IllegalArgumentException.class, () -> new SteQuantizers.SymmetricWeights(1));
    }

    @Test
    public void signWeightsScaleByMeanMagnitudeAndGateTheGradient() {
        Tensor w = new Tensor(Shape.of(1, 4), new float[] {0.5f, -1.5f, 0f, -0.2f});
        assertValues(new SteQuantizers.SignWeights().forward(w), new float[] {0.55f, -0.55f, 0.55f, -0.55f}, "binary weights");
        assertValues(new SteQuantizers.SignWeights().backward(w, t(1, 1, 1, 1)), new float[] {1, 0, 1, 1}, "window |w| <= 1");
        // Per output channel: channel 1's mean |w| is 2.
        Tensor two = new Tensor(Shape.of(2, 2), new float[] {0.5f, -1.5f, 3f, -1f});
        assertValues(new SteQuantizers.SignWeights().forward(two), new float[] {1, -1, 2, -2}, "per-channel binary weights");
    }

    /** PACT is the graph's PactQuantize op; with learned clip levels its alpha is a parameter whose gradient carries the L2 term. */
    @Test
    public void pactForwardAndGradientsWithTheAlphaDecay() {
        GraphBuilder b = new GraphBuilder(1);
        String x = b.input("x", 1, 1, 6);
        b.output(b.add("p", new Op.PactQuantize(2, 10f), x));
        Network net = new Network(b.build(), Map.of(), new Network.RegionTraining(0f, true, false, 0.1f));
        assertEquals(net.parameters().get("p.alpha").data(), new float[] {10f});
        net.parameters().get("p.alpha").data()[0] = 2f;
        // 2 bits on [0, 2]: step 2/3. x / step = 0, 0.45, 0.51, 1.65, 3 (clipped) -> 0, 0, 1, 2, 3.
        Tensor in = new Tensor(Shape.of(1, 1, 1, 6), new float[] {-1f, 0.3f, 0.34f, 1.1f, 2.5f, 2f});
        Network.Pass pass = net.forward(Map.of("x", in), true);
        assertValues(pass.value("p"), new float[] {0, 0, 2 / 3f, 4 / 3f, 2, 2}, "PACT 2-bit");
        Map<String, Tensor> grads = net.backward(pass, Map.of("p", new Tensor(in.shape(), new float[] {1, 2, 3, 4, 5, 6})), true);
        assertValues(grads.get("x"), new float[] {0, 2, 3, 4, 0, 0}, "input gradient inside [0, alpha)");
        // x >= alpha at elements 4 and 5: 5 + 6, plus the L2 term 0.1 * 2.
        assertEquals(grads.get("p.alpha").data()[0], 11.2f, 1e-6);
        expectThrows(IllegalArgumentException.class, () -> new Network.RegionTraining(0f, false, false, 0.1f));
        expectThrows(IllegalArgumentException.class, () -> new Network.RegionTraining(0f, true, false, -1f));
    }

    @Test
    public void quantizedNetworksStillLearnAndPactLearnsAlpha() {
        Idx.Dataset data = TrainerTest.randomData(16, 4, 3);
        for (QuantMode mode : new QuantMode[] {new QuantMode.PactMode(4, 4), new QuantMode.BinaryWeights()}) {
            Graph model = TrainerTest.tinyNet(1, 4);
            Network net = QuantMode.network(model, mode.plan(model, "tiny"));
            Map<String, Float> alphas = new HashMap<>();
            net.parameters().forEach((k, v) -> { if (k.endsWith(".alpha")) alphas.put(k, v.data()[0]); });
            assertEquals(!alphas.isEmpty(), mode instanceof QuantMode.PactMode, mode + " alphas " + alphas);
            Trainer t = new Trainer(net, new Optimizer.AdamW(0.9, 0.999, 1e-8, 0), new Schedule.Constant(0.01), data,
                    new Trainer.Config(1, 16, 0, Batches.Augmentation.NONE, "fc"));
            double first = t.trainStep(data.images(), data.labels()).loss();
            Loss.Result last = null;
            for (int i = 0; i < 300; i++) last = t.trainStep(data.images(), data.labels());
            assertTrue(last.loss() < first / 3, mode + ": loss " + first + " -> " + last.loss());
            assertTrue(last.correct() >= 14, mode + ": " + last.correct() + " of 16 fitted");
            alphas.forEach((k, a) -> assertTrue(net.parameters().get(k).data()[0] != a, k + " never moved from " + a));
        }
    }

    @Test
    public void modesParse() {
        assertEquals(QuantMode.parse("pact:4/2"), new QuantMode.PactMode(4, 2));
        assertEquals(QuantMode.parse("binary"), new QuantMode.BinaryWeights());
        assertEquals(QuantMode.parse("fp32"), new QuantMode.Fp32());
        for (String bad : new String[] {"pact:1/4", "pact:4/9", "int8", "pact:4"}) {
            IllegalArgumentException e = org.testng.Assert.expectThrows(IllegalArgumentException.class, () -> QuantMode.parse(bad));
            assertTrue(e.getMessage().startsWith("--quant " + bad), e.getMessage());
        }
    }
}
