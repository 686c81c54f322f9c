package dev.silhouette.gpu;

import dev.silhouette.pipeline.Plans;
import dev.silhouette.pipeline.Plans.Receiving;
import dev.silhouette.pipeline.TestPlans;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.CpuOps;
import dev.silhouette.backend.cuda.CudaBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.pipeline.RegionQuantization;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.fail;

/**
 * The region-quantization ops on the CUDA backend against the CPU backend. NEVER RUN ON A GPU: written
 * without one (the session that wrote it had none); here it skips through GpuGuard. The same kernels ran
 * under host emulation (EmulatedRegionOpsTest), which does not exercise nvcc's device code, the radix
 * select, or the backend's memory handling.
 *
 * <ul>
 *   <li>Single-op graphs: every op on named inputs, bit for bit.</li>
 *   <li>Region-quantized networks (graph/RegionQuantization on the bundled fmnist-resnet: uniform PACT,
 *       region policies in both weight forms, resize modes and mask orders, DRQ, training-free and noise
 *       silhouettes, the attention branch's logit blend): every region op node's CUDA output equals the CPU
 *       op applied to the node's CUDA inputs, bit for bit (cuDNN's convolutions round differently from the
 *       CPU's, so the values reaching a node differ in the last bits between backends; comparing each
 *       node on the same inputs keeps the check exact); and end to end, the predictions mostly agree.</li>
 * </ul>
 */
@Test(groups = "gpu")
public class RegionOpsGpuTest {
    static final Graph MODEL = Passes.foldBatchNorm(ModelLoader.load(ModelLoader.BUNDLED).graph());
    static final Plans.ClipLevels CLIPS = (value, bits) -> 2f + bits * 0.25f;
    /** End to end, the share of images whose CUDA prediction must equal the CPU's (region boundaries may move with cuDNN's rounding). */
    static final double AGREEMENT = 0.9;

    private CudaBackend cuda;
    private final CpuBackend cpu = new CpuBackend();

    @BeforeClass(alwaysRun = true)
    public void open() {
        GpuGuard.requireCuda();
        cuda = new CudaBackend(0);
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (cuda != null) cuda.close();
    }

    static void exact(String what, Tensor actual, Tensor expected) {
        assertEquals(actual.shape(), expected.shape(), what + ": shape");
        float[] a = actual.data(), e = expected.data();
        for (int i = 0; i < e.length; i++) {
            boolean same = Float.floatToRawIntBits(a[i]) == Float.floatToRawIntBits(e[i]) || Float.isNaN(a[i]) && Float.isNaN(e[i]);
            if (!same) fail(what + ": element " + i + " is " + a[i] + ", the CPU says " + e[i]);
        }
    }

    // ---- single-op graphs ----

    record Problem(String name, Op op, List<Tensor> inputs, float gate) {
        @Override
        public String toString() {
            return name;
        }
    }

    @DataProvider
    public Object[][] ops() {
        List<Problem> p = new ArrayList<>();
        for (int bits : new int[] {1, 2, 4, 8}) {
            p.add(new Problem("pact " + bits, new Op.PactQuantize(bits, 1.7f), List.of(EmulatedRegionOpsTest.activations(Shape.of(4, 32, 14, 14), 1.7f, bits)), 0));
        }
        RegionPolicy[] policies = {RegionPolicy.parse("2:50,3:30,4:20"), RegionPolicy.parse("1:10,2:20,3:30,4:40"), RegionPolicy.parse("8:100")};
        String[] silhouettes = {"all-low", "single pixel", "checkerboard", "random", "constant"};
        int[][] sizes = {{14, 14, 14, 14}, {28, 28, 7, 7}, {7, 7, 28, 28}, {1, 2, 1, 1}};
        for (String s : silhouettes) {
            for (int[] size : sizes) {
                for (Op.Interpolate.Mode mode : Op.Interpolate.Mode.values()) {
                    for (Op.RegionQuantize.MaskOrder order : Op.RegionQuantize.MaskOrder.values()) {
                        int i = p.size();
                        RegionPolicy policy = policies[i % policies.length];
                        List<Float> alphas = new ArrayList<>();
                        for (int r = 0; r < policy.regions().size(); r++) alphas.add(1f + r * 0.5f);
                        int batch = i % 2 == 0 ? 1 : 5;
                        int only = i % 5 == 0 ? 0 : -1;
                        p.add(new Problem("region " + s + " " + size[0] + "x" + size[1] + "->" + size[2] + "x" + size[3] + " " + mode + " " + order + " " + policy,
                                new Op.RegionQuantize(policy, alphas, mode, order, only),
                                List.of(EmulatedRegionOpsTest.activations(Shape.of(batch, 8, size[2], size[3]), 2f, i),
                                        RegionMaskKernelTest.silhouette(s, Shape.of(batch, 1, size[0], size[1]))), 0));
                    }
                }
            }
        }
        for (int block : new int[] {1, 2, 3}) {
            for (int only = -1; only <= 1; only++) {
                p.add(new Problem("drq block " + block + " only " + only, new Op.DrqQuantize(block, 0.9f, 4, 8, 1f, 2.5f, only),
                        List.of(Tensor.uniform(Shape.of(3, 16, 13, 14), -0.5f, 2f, block * 3 + only)), 0));
            }
        }
        for (Op.ChannelSqueeze.Squeeze mode : Op.ChannelSqueeze.Squeeze.values()) {
            for (String kind : new String[] {"random", "tied channels", "constant", "single hot pixel"}) {
                p.add(new Problem("squeeze " + mode + " " + kind, new Op.ChannelSqueeze(mode, 3),
                        List.of(EmulatedRegionOpsTest.featureMap(kind, Shape.of(6, 16, 14, 14), mode.ordinal())), 0));
            }
        }
        for (long seed : new long[] {0, -1, 42}) {
            p.add(new Problem("noise " + seed, new Op.NoiseSilhouette(seed), List.of(EmulatedRegionOpsTest.featureMap("random", Shape.of(7, 16, 14, 14), seed)), 0));
        }
        for (float gate : new float[] {Op.LogitBlend.INITIAL_GATE, 0f, -5f}) {
            p.add(new Problem("blend " + gate, new Op.LogitBlend(), List.of(Tensor.uniform(Shape.of(33, 10), -6, 6, 1), Tensor.uniform(Shape.of(33, 10), -6, 6, 2)),
                    gate));
        }
        return p.stream().map(x -> new Object[] {x}).toArray(Object[][]::new);
    }

    @Test(dataProvider = "ops")
    public void opMatchesCpuBitForBit(Problem p) {
        GraphBuilder b = new GraphBuilder(1);
        String[] names = new String[p.inputs().size()];
        Map<String, Tensor> in = new HashMap<>();
        for (int i = 0; i < names.length; i++) {
            int[] dims = p.inputs().get(i).shape().dims();
            names[i] = b.input("x" + i, java.util.Arrays.copyOfRange(dims, 1, dims.length));
            in.put(names[i], p.inputs().get(i));
        }
        b.output(b.add("op", p.op(), names));
        Graph g = b.build();
        if (p.op() instanceof Op.LogitBlend) {
            Map<String, Tensor> params = new HashMap<>(g.parameters());
            params.put("op.gate", new Tensor(Shape.of(1), new float[] {p.gate()}));
            g = g.withParameters(params);
        }
        exact(p.name(), cuda.run(g, in).get("op"), cpu.run(g, in).get("op"));
    }

    // ---- region-quantized networks ----

    @DataProvider
    public Object[][] networks() {
        Map<String, Graph> graphs = new LinkedHashMap<>();
        graphs.put("W4A4 (PactQuantize)", TestPlans.quantized(MODEL, new Receiving.Uniform(4), CLIPS));
        RegionPolicy main = RegionPolicy.parse("2:50,3:30,4:20");
        for (Op.Interpolate.Mode mode : Op.Interpolate.Mode.values()) {
            for (Op.RegionQuantize.MaskOrder order : Op.RegionQuantize.MaskOrder.values()) {
                graphs.put("2:50,3:30,4:20 shared W4 " + mode + " " + order,
                        TestPlans.quantized(MODEL, new Receiving.Region(main, false, 4, mode, order), CLIPS));
            }
        }
        graphs.put("2:50,3:30,4:20 per-region", TestPlans.quantized(MODEL, new Receiving.Region(main, true, 4,
                Op.Interpolate.Mode.NEAREST, Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD), CLIPS));
        Map<String, Float> thresholds = new HashMap<>();
        for (Node n : RegionQuantization.layers(MODEL).receiving()) thresholds.put(n.inputs().getFirst(), 0.5f);
        graphs.put("DRQ 8/4", TestPlans.quantized(MODEL, new Receiving.Drq(4, 8, 2, thresholds), CLIPS));
        Receiving regionPlan = new Receiving.Region(main, false, 4, Op.Interpolate.Mode.NEAREST, Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD);
        String featureMap = RegionQuantization.branchPoint(MODEL);
        for (Op.ChannelSqueeze.Squeeze mode : Op.ChannelSqueeze.Squeeze.values()) {
            Graph free = RegionQuantization.trainingFreeSilhouette(MODEL, featureMap, new Op.ChannelSqueeze(mode, 8));
            graphs.put("training-free " + mode, TestPlans.quantized(free, regionPlan, CLIPS));
        }
        graphs.put("noise silhouette", TestPlans.quantized(RegionQuantization.noiseSilhouette(MODEL, featureMap, 7), regionPlan, CLIPS));
        Models.Options o = Models.defaults("fmnist-resnet").withAttention(new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MAX, 1));
        graphs.put("attention branch (LogitBlend)", TestPlans.quantized(Passes.foldBatchNorm(Models.build("fmnist-resnet", o)), regionPlan, CLIPS));
        return graphs.entrySet().stream().map(e -> new Object[] {e.getKey(), e.getValue()}).toArray(Object[][]::new);
    }

    private static boolean regionOp(Op op) {
        return op instanceof Op.PactQuantize || op instanceof Op.RegionQuantize || op instanceof Op.DrqQuantize || op instanceof Op.ChannelSqueeze
                || op instanceof Op.NoiseSilhouette || op instanceof Op.LogitBlend;
    }

    @Test(dataProvider = "networks")
    public void regionQuantizedNetworkMatchesCpu(String name, Graph g) {
        Tensor images = Tensor.uniform(Shape.of(32, 1, 28, 28), 0f, 1f, name.hashCode());
        Map<String, Tensor> in = Map.of("input", images);
        List<Node> regionNodes = g.nodes().stream().filter(n -> regionOp(n.op())).toList();
        assertTrue(!regionNodes.isEmpty(), name + " has no region op");
        List<String> requested = new ArrayList<>(List.of(Models.logits(g)));
        for (Node n : regionNodes) {
            if (!requested.contains(n.name())) requested.add(n.name());
            for (String i : n.inputs()) if (!requested.contains(i)) requested.add(i);
        }
        Map<String, Tensor> onCuda = cuda.run(g, in, requested);
        for (Node n : regionNodes) {
            List<Tensor> inputs = n.inputs().stream().map(onCuda::get).toList();
            exact(name + ", node " + n.name() + " (" + Graph.opName(n.op()) + ") on the CUDA inputs", onCuda.get(n.name()), CpuOps.forward(g, n, inputs));
        }
        if (name.equals("noise silhouette")) return;  // the noise is seeded by a hash of the feature map's bits, which cuDNN rounds differently
        Tensor expected = cpu.run(g, in, List.of(Models.logits(g))).get(Models.logits(g)), actual = onCuda.get(Models.logits(g));
        int classes = expected.shape().dim(1), agree = 0;
        for (int i = 0; i < images.shape().n(); i++) if (argmax(actual.data(), i, classes) == argmax(expected.data(), i, classes)) agree++;
        assertTrue(agree >= AGREEMENT * images.shape().n(), name + ": CUDA and CPU predictions agree on " + agree + " of " + images.shape().n() + " images");
    }

    private static int argmax(float[] logits, int image, int classes) {
        int best = 0;
        for (int c = 1; c < classes; c++) if (logits[image * classes + c] > logits[image * classes + best]) best = c;
        return best;
    }
}
