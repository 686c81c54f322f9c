package dev.silhouette.graph;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.backend.cuda.BuiltinKernels;
import dev.silhouette.graph.Op.Interpolate.Mode;
import dev.silhouette.graph.Op.RegionQuantize.MaskOrder;
import dev.silhouette.graph.RegionQuantization.Plan;
import dev.silhouette.graph.RegionQuantization.Scheme;
import dev.silhouette.graph.RegionQuantization.WeightForm;
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
    static final RegionQuantization.ClipLevels CLIPS = (value, bits) -> 2f + bits * 0.25f;
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
        Graph uniform = RegionQuantization.apply(MODEL, new Plan(new Scheme.Uniform(4), 8), CLIPS);
        Graph region = RegionQuantization.apply(MODEL, new Plan(new Scheme.Region(RegionPolicy.parse("4:100"), WeightForm.SHARED, 4,
                Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD), 8), CLIPS);
        assertEquals(run(region).get(Models.LOGITS).data(), run(uniform).get(Models.LOGITS).data());
        // And quantization changed something: the logits differ from FP32's.
        assertFalse(java.util.Arrays.equals(run(uniform).get(Models.LOGITS).data(), run(MODEL).get(Models.LOGITS).data()));
    }

    @Test
    public void perRegionConvolutionsOfEqualWidthSumToTheSharedConvolution() {
        // With every region at 4 bits the masked per-region convolutions add up to one 4-bit convolution.
        RegionPolicy equalWidths = RegionPolicy.parse("4:50,4:30,4:20");
        Graph shared = RegionQuantization.apply(MODEL, new Plan(new Scheme.Region(equalWidths, WeightForm.SHARED, 4, Mode.NEAREST,
                MaskOrder.RESIZE_THEN_THRESHOLD), 8), CLIPS);
        Graph perRegion = RegionQuantization.apply(MODEL, new Plan(new Scheme.Region(equalWidths, WeightForm.PER_REGION, 4, Mode.NEAREST,
                MaskOrder.RESIZE_THEN_THRESHOLD), 8), CLIPS);
        assertTrue(perRegion.nodes().stream().anyMatch(n -> n.name().equals("layer3.0.conv2.r2")));
        float[] a = run(shared).get(Models.LOGITS).data(), b = run(perRegion).get(Models.LOGITS).data();
        for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-4 * (1 + Math.abs(a[i])), "logit " + i);
    }

    @Test
    public void sharedAccumulatorSpecMatchesTheFloatSimulation() {
        // docs/REGION_QUANTIZATION.md: y_o = bias_o + sw_o * sum_r s_r * A_(o,r), A integer per region.
        RegionPolicy policy = RegionPolicy.parse("2:50,3:30,4:20");
        Graph g = RegionQuantization.apply(MODEL, new Plan(new Scheme.Region(policy, WeightForm.SHARED, 4, Mode.NEAREST,
                MaskOrder.RESIZE_THEN_THRESHOLD), 8), CLIPS);
        Map<String, Tensor> values = new CpuBackend().run(g, Map.of("input", IMAGES), List.of("layer2.0.relu1", Models.SILHOUETTE, "layer2.0.conv2"));
        Tensor x = values.get("layer2.0.relu1"), s = values.get(Models.SILHOUETTE), got = values.get("layer2.0.conv2");
        Node node = g.node("layer2.0.conv2");
        Op.Conv2d conv = (Op.Conv2d) node.op();
        float[] original = MODEL.parameter(MODEL.node("layer2.0.conv2"), "weight").data();
        float[] bias = g.parameter(node, "bias").data();
        float[] scales = RegionQuantizer.weightScales(original, conv.outChannels(), 4);
        Shape in = x.shape();
        byte[] region = RegionOps.regionMap(s, policy, in.h(), in.w(), Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD);
        int k = 3, cin = conv.inChannels(), taps = cin * k * k;
        for (int n = 0; n < in.n(); n++)
            for (int o = 0; o < conv.outChannels(); o += 7)
                for (int oy = 0; oy < in.h(); oy += 3)
                    for (int ox = 0; ox < in.w(); ox += 2) {
                        long[] acc = new long[3];
                        for (int c = 0; c < cin; c++)
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++) {
                                    int iy = oy - 1 + ky, ix = ox - 1 + kx;
                                    if (iy < 0 || iy >= in.h() || ix < 0 || ix >= in.w()) continue;
                                    int r = region[(n * in.h() + iy) * in.w() + ix];
                                    int bits = policy.bits(r);
                                    int code = RegionQuantizer.pactCode(x.get(n, c, iy, ix), CLIPS.alpha("layer2.0.relu1", bits), bits);
                                    int w = RegionQuantizer.weightCode(original[o * taps + (c * k + ky) * k + kx], scales[o], 4);
                                    acc[r] += (long) code * w;
                                }
                        double y = bias[o];
                        double sum = 0;
                        for (int r = 0; r < 3; r++) sum += RegionQuantizer.pactStep(CLIPS.alpha("layer2.0.relu1", policy.bits(r)), policy.bits(r)) * (double) acc[r];
                        y += scales[o] * sum;
                        assertEquals(got.get(n, o, oy, ox), y, 1e-4 * (1 + Math.abs(y)), "output " + n + "," + o + "," + oy + "," + ox);
                    }
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
        Graph drq = RegionQuantization.apply(MODEL, new Plan(new Scheme.Drq(4, 8, 2, thresholds), 8), CLIPS);
        assertEquals(run(drq).get(Models.LOGITS).shape(), Shape.of(3, 10));
        IllegalArgumentException e = expectThrows(IllegalArgumentException.class, () -> new Scheme.Region(RegionPolicy.parse("1:50,4:50"),
                WeightForm.PER_REGION, 4, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD));
        assertTrue(e.getMessage().contains("1:50,4:50"), e.getMessage());
        Graph noSilhouette = MODEL.withOutputs(List.of(Models.LOGITS));
        expectThrows(IllegalArgumentException.class, () -> RegionQuantization.apply(noSilhouette, new Plan(new Scheme.Region(RegionPolicy.parse("2:50,4:50"),
                WeightForm.SHARED, 4, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD), 8), CLIPS));
    }

    @Test
    public void cudaClaimsNoneOfTheNewOps() {
        for (Op op : List.<Op>of(new Op.PactQuantize(4, 1f), new Op.DrqQuantize(2, 0f, 4, 8, 1f, 1f, -1),
                new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MAX, 1), new Op.NoiseSilhouette(0))) {
            var why = BuiltinKernels.supports(op, List.of(Shape.of(1, 2, 3, 3)));
            assertTrue(why.isPresent() && why.get().detail().contains("not supported on cuda yet"), op + ": " + why);
        }
    }
}
