package dev.silhouette.pipeline;

import dev.silhouette.graph.Graph;
import dev.silhouette.pipeline.Plans.Receiving;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.tensor.Window;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.Reference;
import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.graph.Op.Interpolate.Mode;
import dev.silhouette.graph.Op.RegionQuantize.MaskOrder;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.quant.RegionQuantizer;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** The graph passes of region quantization, run on the CPU reference. */
public class RegionQuantizationTest {
    static final Graph MODEL = Passes.foldBatchNorm(ModelLoader.load(ModelLoader.BUNDLED).graph());
    static final Plans.ClipLevels CLIPS = (value, bits) -> 2f + bits * 0.25f;
    static final Tensor IMAGES = Tensor.uniform(Shape.of(3, 1, 28, 28), 0f, 1f, 5);

    static Map<String, Tensor> run(Graph g) {
        return new CpuBackend().run(g, Map.of("input", IMAGES), List.of(Models.LOGITS, Models.SILHOUETTE));
    }

    @Test
    public void convolutionsSplitAtTheSilhouette() {
        var layers = RegionQuantization.layers(MODEL);
        assertEquals(layers.preBranch().stream().map(Node::name).toList(), List.of("conv1", "layer1.0.conv1", "layer1.0.conv2"));
        assertEquals(layers.receiving().stream().map(Node::name).toList(), List.of("layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample.0",
                "layer3.0.conv1", "layer3.0.conv2", "layer3.0.downsample.0"));
    }

    @Test
    public void oneRegionPolicyIsUniformQuantization() {
        Graph uniform = TestPlans.quantized(MODEL, new Receiving.Uniform(4), CLIPS);
        Graph region = TestPlans.quantized(MODEL, new Receiving.Region(RegionPolicy.parse("4:100"), false, 4,
                Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD), CLIPS);
        assertEquals(run(region).get(Models.LOGITS).data(), run(uniform).get(Models.LOGITS).data());
        // And quantization changed something: the logits differ from FP32's.
        assertFalse(java.util.Arrays.equals(run(uniform).get(Models.LOGITS).data(), run(MODEL).get(Models.LOGITS).data()));
    }

    @Test
    public void perRegionConvolutionsOfEqualWidthSumToTheSharedConvolution() {
        // With every region at 4 bits the masked per-region convolutions add up to one 4-bit convolution.
        RegionPolicy equalWidths = RegionPolicy.parse("4:50,4:30,4:20");
        Graph shared = TestPlans.quantized(MODEL, new Receiving.Region(equalWidths, false, 4, Mode.NEAREST,
                MaskOrder.RESIZE_THEN_THRESHOLD), CLIPS);
        Graph perRegion = TestPlans.quantized(MODEL, new Receiving.Region(equalWidths, true, 4, Mode.NEAREST,
                MaskOrder.RESIZE_THEN_THRESHOLD), CLIPS);
        assertTrue(perRegion.nodes().stream().anyMatch(n -> n.name().equals("layer3.0.conv2.r2")));
        float[] a = run(shared).get(Models.LOGITS).data(), b = run(perRegion).get(Models.LOGITS).data();
        for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-4 * (1 + Math.abs(a[i])), "logit " + i);
    }

    /** The float-simulated graph against the integer reference of docs/REGION_QUANTIZATION.md, section 6, on one receiving conv. */
    static void checkAgainstIntegerReference(boolean perRegion) {
        RegionPolicy policy = RegionPolicy.parse("2:50,3:30,4:20");
        Graph g = TestPlans.quantized(MODEL, new Receiving.Region(policy, perRegion, 4, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD), CLIPS);
        Map<String, Tensor> values = new CpuBackend().run(g, Map.of("input", IMAGES), List.of("layer2.0.relu1", Models.SILHOUETTE, "layer2.0.conv2"));
        Tensor x = values.get("layer2.0.relu1"), s = values.get(Models.SILHOUETTE), got = values.get("layer2.0.conv2");
        Node original = MODEL.node("layer2.0.conv2");
        Shape in = x.shape();
        byte[] region = RegionOps.regionMap(s, policy, in.h(), in.w(), Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD);
        int[] bits = {2, 3, 4};
        float[] alphas = new float[3];
        for (int r = 0; r < 3; r++) alphas[r] = CLIPS.alpha("layer2.0.relu1", bits[r]);
        int[] weightBits = !perRegion ? new int[] {4, 4, 4} : bits;
        Reference.RegionConv ref = Reference.regionConv2d(x, region, bits, alphas, weightBits, MODEL.parameter(original, "weight"),
                MODEL.parameter(original, "bias"), (Op.Conv2d) original.op());
        float[] want = ref.output().data();
        for (int i = 0; i < want.length; i++) assertEquals(got.data()[i], want[i], 1e-4 * (1 + Math.abs(want[i])), (perRegion ? "per-region" : "shared") + " output " + i);
        // The accumulators hold integers that the regions really reach: every region contributes somewhere.
        long[] nonZero = new long[3];
        for (int i = 0; i < want.length; i++) for (int r = 0; r < 3; r++) if (ref.accumulator(i, r) != 0) nonZero[r]++;
        for (int r = 0; r < 3; r++) assertTrue(nonZero[r] > 0, "region " + r + " never accumulates");
    }

    @Test
    public void sharedWeightsMatchTheIntegerReference() {
        checkAgainstIntegerReference(false);
    }

    @Test
    public void perRegionWeightsMatchTheIntegerReference() {
        checkAgainstIntegerReference(true);
    }

    @Test
    public void integerReferenceByHand() {
        // One 1x1 conv, one input channel, two pixels in regions 0 (2 bits, alpha 3: step 1) and 1 (4 bits, alpha 1.5: step 0.1).
        Tensor x = new Tensor(Shape.of(1, 1, 1, 2), new float[] {2.2f, 0.74f});
        Tensor w = new Tensor(Shape.of(1, 1, 1, 1), new float[] {0.5f});
        Op.Conv2d conv = new Op.Conv2d(1, 1, Window.square(1, 1, 0), 1, false);
        Reference.RegionConv r = Reference.regionConv2d(x, new byte[] {0, 1}, new int[] {2, 4}, new float[] {3f, 1.5f}, new int[] {4, 4}, w, null, conv);
        // Weight 0.5 is its row's max: code 7, scale 0.5 / 7. Codes: round(2.2) = 2 in region 0; round(0.74 * 15 / 1.5) = 7 in region 1.
        assertEquals(r.accumulator(0, 0), 14);
        assertEquals(r.accumulator(0, 1), 0);
        assertEquals(r.accumulator(1, 1), 49);
        assertEquals(r.output().data()[0], (float) (0.5 / 7 * 1.0 * 14), 1e-6f);
        assertEquals(r.output().data()[1], (float) (0.5 / 7 * 0.1 * 49), 1e-6f);
    }

    @Test
    public void trainingFreeSilhouetteReplacesTheBranch() {
        Graph g = RegionQuantization.trainingFreeSilhouette(MODEL, "layer1.0.relu", new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MEAN, 1));
        assertFalse(g.parameters().keySet().stream().anyMatch(k -> k.startsWith(Models.SILHOUETTE)), "branch parameters dropped");
        Tensor s = run(g).get(Models.SILHOUETTE);
        assertEquals(s.shape(), Shape.of(3, 1, 28, 28));
        float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
        for (float v : s.data()) {
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        assertEquals(min, 0f);
        assertEquals(max, 1f);
        // The logits do not depend on where the silhouette comes from.
        assertEquals(run(g).get(Models.LOGITS).data(), run(MODEL).get(Models.LOGITS).data());
        // Squeezing a later map moves the branch point: only layer3 receives.
        Graph later = RegionQuantization.trainingFreeSilhouette(MODEL, "layer2.0.relu", new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MAX, 1));
        assertEquals(RegionQuantization.layers(later).receiving().size(), 3);
        expectThrows(IllegalArgumentException.class, () -> RegionQuantization.trainingFreeSilhouette(MODEL, "layer9", new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MAX, 1)));
    }

    @Test
    public void drqAndRefusals() {
        Map<String, Float> thresholds = new java.util.HashMap<>();
        for (Node n : RegionQuantization.layers(MODEL).receiving()) thresholds.put(n.inputs().getFirst(), 0.5f);
        Graph drq = TestPlans.quantized(MODEL, new Receiving.Drq(4, 8, 2, thresholds), CLIPS);
        assertEquals(run(drq).get(Models.LOGITS).shape(), Shape.of(3, 10));
        IllegalArgumentException e = expectThrows(IllegalArgumentException.class, () -> TestPlans.plan(MODEL, new Receiving.Region(RegionPolicy.parse("1:50,4:50"),
                true, 4, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD), CLIPS));
        assertTrue(e.getMessage().contains("1:50,4:50"), e.getMessage());
        Graph noSilhouette = MODEL.withOutputs(List.of(Models.LOGITS));
        expectThrows(IllegalArgumentException.class, () -> TestPlans.quantized(noSilhouette, new Receiving.Region(RegionPolicy.parse("2:50,4:50"),
                false, 4, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD), CLIPS));
    }
}
