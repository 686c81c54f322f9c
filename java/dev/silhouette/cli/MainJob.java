package dev.silhouette.cli;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.RegionQuantization;
import dev.silhouette.graph.RegionQuantization.Plan;
import dev.silhouette.graph.RegionQuantization.Scheme;
import dev.silhouette.graph.RegionQuantization.WeightForm;
import dev.silhouette.io.Progress;
import dev.silhouette.quant.LayerCost;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The main job's study: the FP32 model, uniform quantization, region policies with the learned and a
 * training-free silhouette, and the DRQ baseline, each evaluated on the test split with its accuracy,
 * measured activation bits, bit operations and packed activation bytes. Clip levels, DRQ thresholds and
 * the training-free squeeze are chosen on training images only.
 */
final class MainJob {
    /** Pre-branch convolutions (stem and the blocks the silhouette reads) run at this width. */
    static final int PRE_BRANCH_BITS = 8;
    static final int DRQ_BLOCK = 2;
    static final List<Integer> UNIFORM_BITS = List.of(8, 4, 3, 2);
    static final List<Integer> MIXED_UNIFORM_BITS = List.of(3, 2);
    /** The control row's silhouette: noise, to show what the silhouette itself is worth. */
    static final String NOISE = "noise (control)";

    /** @param squeeze the training-free silhouette to use, or null to choose one on the calibration images */
    record Settings(List<RegionPolicy> policies, int batch, int limit, Op.Interpolate.Mode resize, Op.RegionQuantize.MaskOrder order,
                    Squeeze squeeze) {}

    /** A training-free silhouette: a channel squeeze of a named feature map. */
    record Squeeze(String featureMap, Op.ChannelSqueeze op) {
        /** Reads FEATUREMAP:max, FEATUREMAP:mean, FEATUREMAP:topk-mean:K or FEATUREMAP:topk-std:K. */
        static Squeeze parse(String text) {
            String[] parts = text.split(":");
            String usage = "; write it as FEATUREMAP:max, FEATUREMAP:mean, FEATUREMAP:topk-mean:K or FEATUREMAP:topk-std:K (e.g. layer1.0.relu:topk-std:4)";
            if (parts.length < 2 || parts.length > 3 || parts[0].isBlank()) throw new IllegalArgumentException("--squeeze '" + text + "' is not understood" + usage);
            Op.ChannelSqueeze.Squeeze mode = switch (parts[1]) {
                case "max" -> Op.ChannelSqueeze.Squeeze.MAX;
                case "mean" -> Op.ChannelSqueeze.Squeeze.MEAN;
                case "topk-mean" -> Op.ChannelSqueeze.Squeeze.TOP_K_BY_MEAN;
                case "topk-std" -> Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD;
                default -> throw new IllegalArgumentException("--squeeze '" + text + "': unknown squeeze '" + parts[1] + "'" + usage);
            };
            boolean topK = mode == Op.ChannelSqueeze.Squeeze.TOP_K_BY_MEAN || mode == Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD;
            if (topK != (parts.length == 3)) throw new IllegalArgumentException("--squeeze '" + text + "': " + (topK ? "top-k needs K" : parts[1] + " takes no K") + usage);
            int k = 1;
            if (topK) {
                try {
                    k = Integer.parseInt(parts[2]);
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("--squeeze '" + text + "': K '" + parts[2] + "' is not a whole number" + usage);
                }
            }
            return new Squeeze(parts[0], new Op.ChannelSqueeze(mode, k));
        }
    }

    /**
     * One evaluated configuration. {@code activationBits} averages the receiving layers' input values
     * (each counted once per convolution reading it), {@code activationBitsPerMac} their MACs.
     */
    record Row(String name, String silhouette, double accuracy, double activationBits, double activationBitsPerMac,
               double bitOpsVsW8A8, double receivingBitOpsVsW8A8, double packedKiBPerImage, double imagesPerSecond, String backend,
               List<LayerRow> layers) {}

    record LayerRow(String layer, String input, long macs, double activationBits, double activationBitsPerMac, double bitOps, double packedBytes) {}

    /** A training-free squeeze tried on the calibration images. */
    record SqueezeTrial(String featureMap, String squeeze, double calibrationAccuracy) {}

    record Result(List<Row> rows, List<SqueezeTrial> squeezeTrials, String trainingFreeChoice, String branchPoint,
                  Map<String, Map<Integer, Float>> clipLevels, Map<String, Float> drqThresholds2_7, Map<String, Float> drqThresholds4_8) {}

    /** What the pictures need: the two silhouettes of a few test images and the layer sizes. */
    record Views(Tensor images, Tensor learned, Tensor trainingFree, List<int[]> layerSizes) {}

    private final Graph fp32;
    private final FashionMnist test, calibration;
    private final Settings settings;
    private final Backend backend;
    private final CpuBackend cpu = new CpuBackend();
    private final String input;
    private final RegionQuantization.Layers layers;
    private final Map<String, Shape> shapes;
    private ActivationCalibration calibrated;
    private final Map<String, Map<Integer, Float>> learnedClipLevels;
    private final int classes;
    private Graph trainingFree;
    private String trainingFreeChoiceName;
    private Views views;

    /** @param learnedClipLevels clip levels the model file carries from fine-tuning ({@link LearnedClipLevels}); used instead of calibrated ones */
    MainJob(Graph fp32, Map<String, Map<Integer, Float>> learnedClipLevels, FashionMnist test, FashionMnist calibration, Settings settings, Backend backend) {
        if (!fp32.outputs().contains(Models.SILHOUETTE)) {
            throw new IllegalArgumentException("the main job needs a model with a silhouette branch; this one has outputs " + fp32.outputs());
        }
        this.fp32 = fp32;
        this.learnedClipLevels = Map.copyOf(learnedClipLevels);
        this.test = test;
        this.calibration = calibration;
        this.settings = settings;
        this.backend = backend;
        this.input = fp32.inputs().getFirst().name();
        this.layers = RegionQuantization.layers(fp32);
        this.shapes = fp32.inferShapes(1);
        this.classes = shapes.get(Models.LOGITS).dim(1);
        if (settings.squeeze() != null && !shapes.containsKey(settings.squeeze().featureMap())) {
            throw new IllegalArgumentException("--squeeze: the model has no feature map named '" + settings.squeeze().featureMap() + "'; "
                    + "see bin/silhouette inspect for the names (block outputs such as layer1.0.relu)");
        }
    }

    Views views() {
        return views;
    }

    private List<Node> convs() {
        List<Node> all = new ArrayList<>(layers.preBranch());
        all.addAll(layers.receiving());
        return all;
    }

    private Set<String> convInputs(List<Node> nodes) {
        return ActivationCalibration.convInputs(nodes);
    }

    Result run(Progress bar) {
        calibrate();
        RegionPolicy main = settings.policies().getFirst();
        List<SqueezeTrial> trials = chooseTrainingFree(main);
        // DRQ 4/2 cannot average below 2 or above 4 bits: the closest it gets to the main policy.
        double drqLowTarget = Math.clamp(main.averageBits(), 2.0, 4.0);
        Map<String, Float> drq27 = drqThresholds(4, 2, drqLowTarget);
        RegionPolicy high = RegionPolicy.parse("4:80,8:20");
        Map<String, Float> drq48 = drqThresholds(8, 4, high.averageBits());

        List<Row> rows = new ArrayList<>();
        rows.add(evaluate("FP32", "-", fp32, layers, null, 32, 32, bar));
        for (int bits : UNIFORM_BITS) {
            rows.add(evaluate("W" + bits + "A" + bits, "-", RegionQuantization.apply(fp32, new Plan(new Scheme.Uniform(bits), PRE_BRANCH_BITS), this::alpha),
                    layers, null, bits, bits, bar));
        }
        // The main policy's shared weights at uniform activation widths: the same weights as its region rows.
        int mainWeights = sharedWeightBits(main);
        for (int bits : MIXED_UNIFORM_BITS) {
            if (bits >= mainWeights) continue;
            rows.add(evaluate("W" + mainWeights + "A" + bits, "-", RegionQuantization.apply(fp32, new Plan(new Scheme.Uniform(bits, mainWeights),
                    PRE_BRANCH_BITS), this::alpha), layers, null, bits, mainWeights, bar));
        }
        for (int i = 0; i < settings.policies().size(); i++) {
            RegionPolicy p = settings.policies().get(i);
            for (WeightForm form : forms(i)) {
                rows.add(region(p, form, "learned", fp32, bar));
                rows.add(region(p, form, "training-free", trainingFree, bar));
            }
            // The control for every policy: where the widths go matters most when the low width is very low.
            rows.add(region(p, WeightForm.SHARED, NOISE, RegionQuantization.noiseSilhouette(fp32, RegionQuantization.branchPoint(fp32), 0), bar));
        }
        rows.add(region(high, WeightForm.PER_REGION, "learned", fp32, bar));
        rows.add(region(high, WeightForm.PER_REGION, "training-free", trainingFree, bar));
        rows.add(evaluate(String.format("DRQ 4/2 (%.1f bits)", drqLowTarget), "input blocks",
                RegionQuantization.apply(fp32, new Plan(new Scheme.Drq(2, 4, DRQ_BLOCK, drq27), PRE_BRANCH_BITS), this::alpha), layers, null, 0, 0, bar));
        rows.add(evaluate(String.format("DRQ 8/4 (%.1f bits)", high.averageBits()), "input blocks",
                RegionQuantization.apply(fp32, new Plan(new Scheme.Drq(4, 8, DRQ_BLOCK, drq48), PRE_BRANCH_BITS), this::alpha), layers, null, 0, 0, bar));
        // Until here the two bit-operation fields hold absolute counts per image; W8A8 is row 1.
        double w8a8 = rows.get(1).bitOpsVsW8A8(), w8a8Receiving = rows.get(1).receivingBitOpsVsW8A8();
        List<Row> relative = rows.stream().map(r -> new Row(r.name(), r.silhouette(), r.accuracy(), r.activationBits(), r.activationBitsPerMac(),
                r.bitOpsVsW8A8() / w8a8, r.receivingBitOpsVsW8A8() / w8a8Receiving, r.packedKiBPerImage(), r.imagesPerSecond(), r.backend(),
                r.layers())).toList();
        views = new Views(test.images().slice(0, Math.min(8, limit())), silhouettes(fp32), silhouettes(trainingFree), layerSizes());
        return new Result(relative, trials, trainingFreeChoiceName, RegionQuantization.branchPoint(fp32), calibrated.clipLevels(), drq27, drq48);
    }

    /** Number of configurations {@link #run} evaluates on the test split (for the progress bar). */
    int rowCount() {
        int regionRows = 0;
        for (int i = 0; i < settings.policies().size(); i++) regionRows += 2 * forms(i).size() + 1;
        int mainWeights = sharedWeightBits(settings.policies().getFirst());
        int mixed = (int) MIXED_UNIFORM_BITS.stream().filter(b -> b < mainWeights).count();
        return 1 + UNIFORM_BITS.size() + mixed + regionRows + 2 + 2;
    }

    /**
     * Weight forms evaluated for policy {@code i}: shared for every policy, per-region too for the main
     * one when all its widths are at least 2 bits (a symmetric 1-bit weight grid does not exist).
     */
    private List<WeightForm> forms(int i) {
        RegionPolicy p = settings.policies().get(i);
        boolean perRegion = i == 0 && p.regions().stream().allMatch(r -> r.bits() >= 2);
        return perRegion ? List.of(WeightForm.SHARED, WeightForm.PER_REGION) : List.of(WeightForm.SHARED);
    }

    int limit() {
        return Math.min(settings.limit(), test.labels().length);
    }

    private Row region(RegionPolicy p, WeightForm form, String source, Graph graph, Progress bar) {
        int weightBits = sharedWeightBits(p);
        Scheme.Region scheme = new Scheme.Region(p, form, weightBits, settings.resize(), settings.order());
        String name = p + (form == WeightForm.SHARED ? " W" + weightBits : " per-region W");
        // The graph's own split: a training-free silhouette of a later map leaves fewer receiving layers.
        return evaluate(name, source, RegionQuantization.apply(graph, new Plan(scheme, PRE_BRANCH_BITS), this::alpha), RegionQuantization.layers(graph),
                scheme, 0, 0, bar);
    }

    /** Shared weights take the policy's highest width, at least the 2 bits a symmetric grid needs. */
    static int sharedWeightBits(RegionPolicy p) {
        return Math.max(2, p.bits(p.regions().size() - 1));
    }

    // ---- calibration (training images only) ----

    private void calibrate() {
        calibrated = new ActivationCalibration(fp32, layers, calibration, settings.batch(), DRQ_BLOCK);
        calibrated.adopt(learnedClipLevels);
    }

    float alpha(String value, int bits) {
        return calibrated.alpha(value, bits);
    }

    /**
     * Per receiving input, the block-mean threshold that makes the sensitive share of calibration
     * blocks closest to the one giving {@code targetBits} on average: share = (target - low) / (high - low).
     * Post-ReLU maps have many tied (zero) means, so the threshold either takes a tie in or leaves it
     * out, whichever lands nearer the share.
     */
    private Map<String, Float> drqThresholds(int high, int low, double targetBits) {
        double share = (targetBits - low) / (high - low);
        Map<String, Float> out = new LinkedHashMap<>();
        calibrated.blockMeans().forEach((v, sorted) -> {
            int n = sorted.length;
            int k = (int) Math.round(share * n);
            if (k <= 0) {
                out.put(v, Math.nextUp(sorted[n - 1]));
                return;
            }
            float t = sorted[n - Math.min(k, n)];
            int atOrAbove = n - lowerBound(sorted, t);
            int above = n - lowerBound(sorted, Math.nextUp(t));
            out.put(v, Math.abs(above - share * n) < Math.abs(atOrAbove - share * n) ? Math.nextUp(t) : t);
        });
        return out;
    }

    private static int lowerBound(float[] sorted, float value) {
        int lo = 0, hi = sorted.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (sorted[mid] < value) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /** Tries the channel squeezes of the feature map the learned branch reads, at the main policy, on the calibration images. */
    private List<SqueezeTrial> chooseTrainingFree(RegionPolicy main) {
        String featureMap = settings.squeeze() != null ? settings.squeeze().featureMap() : RegionQuantization.branchPoint(fp32);
        if (featureMap == null) throw new IllegalArgumentException("the silhouette branch of this model reads no main-path feature map to squeeze");
        List<Op.ChannelSqueeze> candidates = new ArrayList<>();
        if (settings.squeeze() != null) {
            candidates.add(settings.squeeze().op());
        } else {
            int channels = shapes.get(featureMap).dim(1);
            candidates.add(new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MAX, 1));
            candidates.add(new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MEAN, 1));
            for (int k : new int[] {2, 4, 8}) {
                if (k >= channels) continue;
                candidates.add(new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.TOP_K_BY_MEAN, k));
                candidates.add(new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD, k));
            }
        }
        List<SqueezeTrial> trials = new ArrayList<>();
        double best = -1;
        int weightBits = sharedWeightBits(main);
        for (Op.ChannelSqueeze c : candidates) {
            Graph g = RegionQuantization.trainingFreeSilhouette(fp32, featureMap, c);
            Graph q = RegionQuantization.apply(g, new Plan(new Scheme.Region(main, WeightForm.SHARED, weightBits, settings.resize(), settings.order()),
                    PRE_BRANCH_BITS), this::alpha);
            int[] correct = {0};
            forEachBatch(calibration, q, List.of(Models.logits(q)), (from, out) -> correct[0] += countCorrect(out.get(Models.logits(q)), calibration.labels(), from));
            double accuracy = (double) correct[0] / calibration.labels().length;
            trials.add(new SqueezeTrial(featureMap, describe(c), accuracy));
            if (accuracy > best) {
                best = accuracy;
                trainingFree = g;
                trainingFreeChoiceName = describe(c) + " of " + featureMap;
            }
        }
        return trials;
    }

    static String describe(Op.ChannelSqueeze c) {
        return switch (c.mode()) {
            case MAX -> "channel max";
            case MEAN -> "channel mean";
            case TOP_K_BY_MEAN -> "mean of top-" + c.k() + " channels by mean";
            case TOP_K_BY_STD -> "mean of top-" + c.k() + " channels by std";
        };
    }

    // ---- evaluation on the test split ----

    /**
     * Accuracy, speed and costs of one configuration. {@code scheme} null means uniform receiving layers at
     * {@code uniformBits}/{@code uniformWeightBits} (32/32 for FP32, whose pre-branch layers are FP32 too).
     */
    private Row evaluate(String name, String silhouette, Graph graph, RegionQuantization.Layers split, Scheme.Region scheme, int uniformBits,
                         int uniformWeightBits, Progress bar) {
        boolean drq = graph.nodes().stream().anyMatch(n -> n.op() instanceof Op.DrqQuantize);
        // Silhouette's own ops (quantizers, squeezes, the attention branch's blend) stay on the CPU reference until their CUDA
        // kernels, checked only under emulation so far, have passed RegionOpsGpuTest on a device (docs/KERNELS.md).
        boolean cpuOnly = graph.nodes().stream().anyMatch(n -> n.op() instanceof Op.PactQuantize || n.op() instanceof Op.RegionQuantize
                || n.op() instanceof Op.DrqQuantize || n.op() instanceof Op.ChannelSqueeze || n.op() instanceof Op.LogitBlend);
        Backend runner = cpuOnly ? cpu : backend;
        Map<String, LayerCost> costs = new LinkedHashMap<>();
        for (Node n : convs()) {
            Op.Conv2d conv = (Op.Conv2d) n.op();
            Shape in = shapes.get(n.inputs().getFirst());
            var w = conv.window();
            costs.put(n.name(), new LayerCost(n.name(), in.c(), conv.outChannels(), LayerCost.tapCounts(in.h(), in.w(), w.kernelH(), w.kernelW(),
                    w.strideH(), w.strideW(), w.padH(), w.padW(), w.dilationH(), w.dilationW())));
        }
        Set<String> receiving = new java.util.HashSet<>();
        split.receiving().forEach(n -> receiving.add(n.name()));
        List<String> requested = new ArrayList<>(List.of(Models.logits(graph), Models.SILHOUETTE));
        if (drq) requested.addAll(convInputs(layers.receiving()));
        Map<String, Op.DrqQuantize> drqOps = new HashMap<>();
        for (Node n : graph.nodes()) if (n.op() instanceof Op.DrqQuantize d) drqOps.put(n.inputs().getFirst(), d);

        int total = limit();
        int correct = 0;
        long nanos = 0;
        for (int from = 0; from < total; from += settings.batch()) {
            int to = Math.min(total, from + settings.batch());
            Tensor images = test.images().slice(from, to);
            long start = System.nanoTime();
            Map<String, Tensor> out = runner.run(graph, Map.of(input, images), requested);
            nanos += System.nanoTime() - start;
            correct += countCorrect(out.get(Models.logits(graph)), test.labels(), from);
            int count = to - from;
            for (Node n : convs()) {
                LayerCost cost = costs.get(n.name());
                String value = n.inputs().getFirst();
                Shape in = shapes.get(value);
                boolean fp = uniformBits == 32;
                if (!receiving.contains(n.name())) {
                    cost.addUniform(fp ? 32 : PRE_BRANCH_BITS, fp ? 32 : PRE_BRANCH_BITS, count);
                } else if (scheme != null) {
                    byte[] map = RegionOps.regionMap(out.get(Models.SILHOUETTE), scheme.policy(), in.h(), in.w(), scheme.resize(), scheme.order());
                    int regions = scheme.policy().regions().size();
                    int[] act = new int[regions], weight = new int[regions];
                    for (int r = 0; r < regions; r++) {
                        act[r] = scheme.policy().bits(r);
                        weight[r] = scheme.form() == WeightForm.SHARED ? scheme.weightBits() : act[r];
                    }
                    long maskBits = (long) ceilLog2(regions) * in.h() * in.w();
                    for (int b = 0; b < count; b++) cost.addImage(map, b * in.h() * in.w(), false, act, weight, maskBits);
                } else if (drq) {
                    Op.DrqQuantize d = drqOps.get(value);
                    byte[] map = RegionOps.drqMap(out.get(value), d.block(), d.threshold());
                    int[] bits = {d.lowBits(), d.highBits()};
                    int tiles = ((in.h() + d.block() - 1) / d.block()) * ((in.w() + d.block() - 1) / d.block());
                    int perImage = in.c() * in.h() * in.w();
                    for (int b = 0; b < count; b++) cost.addImage(map, b * perImage, true, bits, bits, (long) in.c() * tiles);
                } else {
                    cost.addUniform(uniformBits, uniformWeightBits, count);
                }
            }
            bar.stepBy(count);
        }
        return summarise(name, silhouette, (double) correct / total, total / (nanos / 1e9), runner.name(), costs, receiving);
    }

    private Row summarise(String name, String silhouette, double accuracy, double imagesPerSecond, String backendName,
                          Map<String, LayerCost> costs, Set<String> receiving) {
        double recvBitTaps = 0, recvTaps = 0, recvBitValues = 0, recvValues = 0, bitOps = 0, recvBitOps = 0, packed = 0;
        List<LayerRow> rows = new ArrayList<>();
        Set<String> storedInputs = new java.util.HashSet<>();
        for (Node n : convs()) {
            LayerCost c = costs.get(n.name());
            if (receiving.contains(n.name())) {
                recvBitTaps += c.activationBitTaps();
                recvTaps += (double) c.tapsPerImage() * c.images();
                recvBitValues += c.activationBitValues();
                recvValues += (double) c.valuesPerImage() * c.images();
                recvBitOps += c.bitOpsPerImage();
            }
            bitOps += c.bitOpsPerImage();
            // Convolutions reading the same value read one stored copy.
            if (storedInputs.add(n.inputs().getFirst())) packed += c.packedBytesPerImage();
            Shape in = shapes.get(n.inputs().getFirst());
            rows.add(new LayerRow(n.name(), in.c() + "x" + in.h() + "x" + in.w(), c.macsPerImage(), c.averageActivationBits(), c.activationBitsPerMac(),
                    c.bitOpsPerImage(), c.packedBytesPerImage()));
        }
        // The classifier stays FP32 in every configuration.
        Op.Linear fc = (Op.Linear) fp32.node(Models.LOGITS).op();
        double fcOps = (double) fc.inFeatures() * fc.outFeatures() * 32 * 32;
        rows.add(new LayerRow(Models.LOGITS, String.valueOf(fc.inFeatures()), (long) fc.inFeatures() * fc.outFeatures(), 32, 32, fcOps, 4.0 * fc.inFeatures()));
        bitOps += fcOps;
        return new Row(name, silhouette, accuracy, recvBitValues / recvValues, recvBitTaps / recvTaps, bitOps, recvBitOps, packed / 1024, imagesPerSecond,
                backendName, rows);
    }

    private static int ceilLog2(int regions) {
        return regions <= 1 ? 0 : 32 - Integer.numberOfLeadingZeros(regions - 1);
    }

    private int countCorrect(Tensor logits, int[] labels, int from) {
        int n = logits.shape().dim(0), correct = 0;
        for (int i = 0; i < n; i++) {
            int best = 0;
            for (int c = 1; c < classes; c++) if (logits.data()[i * classes + c] > logits.data()[i * classes + best]) best = c;
            int label = labels[from + i];
            if (label < 0 || label >= classes) throw new IllegalArgumentException("label " + label + " of image " + (from + i) + " is outside the model's " + classes + " classes");
            if (best == label) correct++;
        }
        return correct;
    }

    private interface BatchResult {
        void accept(int from, Map<String, Tensor> out);
    }

    private void forEachBatch(FashionMnist data, Graph graph, List<String> requested, BatchResult body) {
        int total = data.labels().length;
        for (int from = 0; from < total; from += settings.batch()) {
            int to = Math.min(total, from + settings.batch());
            body.accept(from, cpu.run(graph, Map.of(input, data.images().slice(from, to)), requested));
        }
    }

    private Tensor silhouettes(Graph graph) {
        return cpu.run(graph, Map.of(input, test.images().slice(0, Math.min(8, limit()))), List.of(Models.SILHOUETTE)).get(Models.SILHOUETTE);
    }

    private List<int[]> layerSizes() {
        Set<String> seen = new LinkedHashSet<>();
        List<int[]> sizes = new ArrayList<>();
        for (Node n : layers.receiving()) {
            Shape s = shapes.get(n.inputs().getFirst());
            if (seen.add(s.h() + "x" + s.w())) sizes.add(new int[] {s.h(), s.w()});
        }
        return sizes;
    }
}
