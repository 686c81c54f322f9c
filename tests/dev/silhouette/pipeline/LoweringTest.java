package dev.silhouette.pipeline;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.graph.Op.Interpolate.Mode;
import dev.silhouette.graph.Op.RegionQuantize.MaskOrder;
import dev.silhouette.pipeline.Plans.Receiving;
import dev.silhouette.pipeline.QuantPlan.Activations;
import dev.silhouette.pipeline.QuantPlan.LayerPlan;
import dev.silhouette.pipeline.QuantPlan.Weights;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/**
 * The packed lowering of {@link PlanRewrite}: every planned convolution of the study's schemes becomes an
 * {@link Op.LowBitConv2d}, and the lowered graph computes what the float simulation computes (same codes,
 * exact integer sums, so logits agree up to the float rounding of the sums; a code on the edge of a
 * rounding step may still flip, which a few images' logits show).
 */
public class LoweringTest {
    static final Graph MODEL = Passes.foldBatchNorm(ModelLoader.load(ModelLoader.BUNDLED).graph());
    static final Plans.ClipLevels CLIPS = (value, bits) -> 2f + bits * 0.25f;
    static final Tensor IMAGES = Tensor.uniform(Shape.of(16, 1, 28, 28), 0f, 1f, 5);

    @DataProvider
    public Object[][] schemes() {
        var drqThresholds = new java.util.HashMap<String, Float>();
        for (String v : Plans.receivingInputs(MODEL)) drqThresholds.put(v, 0.5f);
        return new Object[][] {
                {new Receiving.Uniform(8)},
                {new Receiving.Uniform(2, 4)},
                {new Receiving.Region(RegionPolicy.parse("2:50,3:30,4:20"), false, 4, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD)},
                {new Receiving.Region(RegionPolicy.parse("1:60,2:20,4:20"), false, 4, Mode.BILINEAR, MaskOrder.THRESHOLD_THEN_RESIZE)},
                {new Receiving.Region(RegionPolicy.parse("2:50,3:30,4:20"), true, 4, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD)},
                {new Receiving.Drq(2, 4, 4, drqThresholds)},
        };
    }

    @Test(dataProvider = "schemes")
    public void everyPlannedConvolutionLowersAndComputesWhatTheSimulationComputes(Receiving scheme) {
        QuantPlan plan = TestPlans.plan(MODEL, scheme, CLIPS);
        Graph simulated = PlanRewrite.apply(MODEL, plan, PlanRewrite.Execution.SIMULATED);
        Graph packed = PlanRewrite.apply(MODEL, plan, PlanRewrite.Execution.PACKED);
        long lowered = packed.nodes().stream().filter(n -> n.op() instanceof Op.LowBitConv2d).count();
        long quantizers = packed.nodes().stream().filter(n -> n.op() instanceof Op.PactQuantize || n.op() instanceof Op.RegionQuantize
                || n.op() instanceof Op.DrqQuantize || n.op() instanceof Op.AffineQuantize).count();
        int convs = (int) plan.layers().stream().filter(l -> MODEL.node(l.layer()).op() instanceof Op.Conv2d).count();
        assertEquals(quantizers, 0, scheme + ": no float quantizer left");
        assertEquals(lowered, scheme instanceof Receiving.Drq ? convs + plan.layers().stream().filter(l -> l.activations() instanceof Activations.Drq).count() : convs,
                scheme + ": low-bit convolutions (DRQ: one per width)");
        // Region maps: one per input size of the receiving layers (28x28, 14x14 and 7x7 here), shared by the layers of that size.
        if (scheme instanceof Receiving.Region) {
            var shapes = MODEL.inferShapes(1);
            long sizes = plan.layers().stream().filter(l -> l.activations() instanceof Activations.Region).map(l -> shapes.get(l.input()).h()).distinct().count();
            assertEquals(sizes, 3);
            assertEquals(packed.nodes().stream().filter(n -> n.op() instanceof Op.RegionMap).count(), sizes, "one region map per size");
        }
        CpuBackend cpu = new CpuBackend();
        Tensor a = cpu.run(simulated, Map.of("input", IMAGES), List.of(Models.LOGITS)).get(Models.LOGITS);
        Tensor b = cpu.run(packed, Map.of("input", IMAGES), List.of(Models.LOGITS)).get(Models.LOGITS);
        int agreeing = 0;
        for (int i = 0; i < IMAGES.shape().n(); i++) {
            double worst = 0;
            for (int k = 0; k < 10; k++) worst = Math.max(worst, Math.abs(a.data()[i * 10 + k] - b.data()[i * 10 + k]));
            if (worst < 1e-3) agreeing++;
        }
        // A flipped code moves a logit by about one step; most images have none.
        assertTrue(agreeing >= IMAGES.shape().n() * 3 / 4, scheme + ": only " + agreeing + " of " + IMAGES.shape().n() + " images agree within 1e-3");
    }

    @Test
    public void theNoiseControlIsTheSameDrawOnBothPaths() {
        Receiving region = new Receiving.Region(RegionPolicy.parse("2:50,3:30,4:20"), false, 4, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD);
        for (String featureMap : List.of("layer1.0.relu", "layer2.0.relu")) {
            QuantPlan plan = Plans.of(MODEL, "test", "noise", new QuantPlan.SilhouetteSource.Noise(featureMap, 11), region, Plans.PRE_BRANCH_BITS, CLIPS);
            CpuBackend cpu = new CpuBackend();
            Tensor a = cpu.run(PlanRewrite.apply(MODEL, plan, PlanRewrite.Execution.SIMULATED), Map.of("input", IMAGES), List.of(Models.SILHOUETTE)).get(Models.SILHOUETTE);
            Tensor b = cpu.run(PlanRewrite.apply(MODEL, plan, PlanRewrite.Execution.PACKED), Map.of("input", IMAGES), List.of(Models.SILHOUETTE)).get(Models.SILHOUETTE);
            // Drawn from the image, at the feature map's size, whatever computed the layers before it.
            assertEquals(a.shape(), Shape.of(16, 1, MODEL.inferShapes(1).get(featureMap).h(), MODEL.inferShapes(1).get(featureMap).w()));
            assertEquals(b.data(), a.data(), featureMap);
        }
    }

    @Test
    public void layersTheIntegerKernelsCannotRunStaySimulated() {
        QuantPlan base = TestPlans.plan(MODEL, new Receiving.Uniform(4), CLIPS);
        List<LayerPlan> layers = new ArrayList<>();
        for (LayerPlan l : base.layers()) {
            layers.add(switch (l.layer()) {
                case "layer2.0.conv1" -> new LayerPlan(l.layer(), l.input(), new Weights.Float(), l.activations());
                case "layer3.0.conv1" -> {
                    int c = ((Op.Conv2d) MODEL.node(l.layer()).op()).inChannels();
                    int[] bits = new int[c];
                    float[] lo = new float[c], hi = new float[c];
                    java.util.Arrays.fill(bits, 4);
                    java.util.Arrays.fill(hi, 3f);
                    yield new LayerPlan(l.layer(), l.input(), l.weights(), new Activations.Affine(4, 0f, 3f, bits, lo, hi));
                }
                default -> l;
            });
        }
        QuantPlan plan = new QuantPlan(base.model(), base.fingerprint(), base.label(), base.silhouette(), layers);
        Graph packed = PlanRewrite.apply(MODEL, plan, PlanRewrite.Execution.PACKED);
        for (Node n : packed.nodes()) {
            boolean keptFloat = n.name().equals("layer2.0.conv1") || n.name().equals("layer3.0.conv1");
            if (plan.layer(n.name()) != null) assertEquals(n.op() instanceof Op.Conv2d, keptFloat, n.name());
        }
        assertEquals(LowBitLowering.refusal(MODEL.node("layer2.0.conv1"), plan.layer("layer2.0.conv1")), "float weights");
        assertTrue(LowBitLowering.refusal(MODEL.node("layer3.0.conv1"), plan.layer("layer3.0.conv1")).contains("per-channel"));
        // The two simulated layers and the lowered ones together still compute the plan.
        CpuBackend cpu = new CpuBackend();
        Tensor a = cpu.run(PlanRewrite.apply(MODEL, plan), Map.of("input", IMAGES), List.of(Models.LOGITS)).get(Models.LOGITS);
        Tensor b = cpu.run(packed, Map.of("input", IMAGES), List.of(Models.LOGITS)).get(Models.LOGITS);
        int argmaxAgree = 0;
        for (int i = 0; i < IMAGES.shape().n(); i++) if (argmax(a, i) == argmax(b, i)) argmaxAgree++;
        assertTrue(argmaxAgree >= IMAGES.shape().n() - 1, argmaxAgree + " predictions agree");
    }

    private static int argmax(Tensor t, int row) {
        int best = 0;
        for (int k = 1; k < 10; k++) if (t.data()[row * 10 + k] > t.data()[row * 10 + best]) best = k;
        return best;
    }
}
