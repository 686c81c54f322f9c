package dev.silhouette.cli;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.io.Progress;
import dev.silhouette.pipeline.Calibration;
import dev.silhouette.pipeline.Evaluation;
import dev.silhouette.pipeline.PlanRewrite;
import dev.silhouette.pipeline.Plans;
import dev.silhouette.pipeline.Plans.Receiving;
import dev.silhouette.pipeline.RegionQuantization;
import dev.silhouette.pipeline.SqueezeSearch;
import dev.silhouette.pipeline.PostTraining;
import dev.silhouette.quant.Aciq;
import dev.silhouette.quant.LayerCost;
import dev.silhouette.quant.PtqRecipe;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlan.Activations;
import dev.silhouette.pipeline.QuantPlan.SilhouetteSource;
import dev.silhouette.pipeline.QuantPlan.Weights;
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
    static final int PRE_BRANCH_BITS = Plans.PRE_BRANCH_BITS;
    static final int DRQ_BLOCK = 2;
    static final List<Integer> UNIFORM_BITS = List.of(8, 4, 3, 2);
    static final List<Integer> MIXED_UNIFORM_BITS = List.of(3, 2);
    /**
     * The post-training row: per-channel weights, ACIQ clipping and bias correction (docs/QUANTIZATION.md), as {@code quantize --weight-bits 4
     * --activation-bits 4 --per-channel --aciq laplace --bias-correction --activation-channel-bits} plans it (first and last
     * layer at 8 bits), calibrated on the main job's training images.
     */
    static final PtqRecipe PTQ = new PtqRecipe(4, 4, true, Aciq.Prior.LAPLACE, null, true, false, true, 8);
    static final String PTQ_ROW = "W4A4 ACIQ PTQ";
    /** The control row's silhouette: noise, to show what the silhouette itself is worth. */
    static final String NOISE = "noise (control)";

    /**
     * @param squeeze the training-free silhouette to use, or null to choose one on the calibration images
     * @param rows    the rows to evaluate ({@link #ALL_ROWS} for the full table)
     */
    record Settings(List<RegionPolicy> policies, int batch, int limit, Op.Interpolate.Mode resize, Op.RegionQuantize.MaskOrder order,
                    SilhouetteSource.Squeeze squeeze, PlanRewrite.Execution execution, java.util.function.Predicate<RowKey> rows) {
        Settings(List<RegionPolicy> policies, int batch, int limit, Op.Interpolate.Mode resize, Op.RegionQuantize.MaskOrder order,
                 SilhouetteSource.Squeeze squeeze, PlanRewrite.Execution execution) {
            this(policies, batch, limit, resize, order, squeeze, execution, ALL_ROWS);
        }

        /** These settings on at most {@code limit} test images, evaluating the rows {@code chosen} picks. */
        Settings with(int limit, java.util.function.Predicate<RowKey> chosen) {
            return new Settings(policies, batch, limit, resize, order, squeeze, execution, chosen);
        }
    }

    /** The families of rows the table holds. */
    enum Kind { FP32, UNIFORM, MIXED_UNIFORM, POST_TRAINING, REGION, HIGH_REGION, DRQ_LOW, DRQ_HIGH }

    /**
     * One row of the table before it is evaluated, for choosing rows: {@code bits} is the activation width of uniform rows,
     * {@code policy} the index of a region row's policy in {@link Settings#policies}; the silhouette is "learned",
     * "training-free", {@link #NOISE} or "-".
     */
    record RowKey(Kind kind, int bits, int policy, boolean perRegion, String silhouette) {}

    static final java.util.function.Predicate<RowKey> ALL_ROWS = k -> true;

    /** A selected row: its key, its name in the table and how to plan it (null plan: the model in FP32). */
    private record RowSpec(RowKey key, String name, java.util.function.Supplier<QuantPlan> plan) {}

    /** A training-free silhouette: a channel squeeze of a named feature map. */
    static final class Squeeze {
        private Squeeze() {}

        /** Reads FEATUREMAP:max, FEATUREMAP:mean, FEATUREMAP:topk-mean:K or FEATUREMAP:topk-std:K. */
        static SilhouetteSource.Squeeze parse(String text) {
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
            return new SilhouetteSource.Squeeze(parts[0], mode, k);
        }
    }

    /**
     * One evaluated configuration. {@code activationBits} averages the receiving layers' input values
     * (each counted once per convolution reading it), {@code activationBitsPerMac} their MACs.
     */
    record Row(String name, String silhouette, double accuracy, double activationBits, double activationBitsPerMac,
               double bitOpsVsW8A8, double receivingBitOpsVsW8A8, double packedKiBPerImage, double imagesPerSecond, String backend,
               String execution, List<LayerRow> layers) {}

    record LayerRow(String layer, String input, long macs, double activationBits, double activationBitsPerMac, double bitOps, double packedBytes) {}

    record Result(List<Row> rows, Map<String, QuantPlan> plans, List<SqueezeSearch.Trial> squeezeTrials, String trainingFreeChoice, String branchPoint,
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
    private Calibration calibrated;
    private final Map<String, Map<Integer, Float>> learnedClipLevels;
    private SilhouetteSource.Squeeze trainingFree;
    private String trainingFreeChoiceName;
    private final String modelName;
    /** Each quantized row's plan, by row name and silhouette. */
    private final Map<String, QuantPlan> plans = new LinkedHashMap<>();
    private Views views;

    /** @param learnedClipLevels clip levels the model file carries from fine-tuning ({@link LearnedClipLevels}); used instead of calibrated ones */
    MainJob(Graph fp32, String modelName, Map<String, Map<Integer, Float>> learnedClipLevels, FashionMnist test, FashionMnist calibration, Settings settings,
            Backend backend) {
        if (!fp32.outputs().contains(Models.SILHOUETTE)) {
            throw new IllegalArgumentException("the main job needs a model with a silhouette branch; this one has outputs " + fp32.outputs());
        }
        this.fp32 = fp32;
        this.modelName = modelName;
        this.learnedClipLevels = Map.copyOf(learnedClipLevels);
        this.test = test;
        this.calibration = calibration;
        this.settings = settings;
        this.backend = backend;
        this.input = fp32.inputs().getFirst().name();
        this.layers = RegionQuantization.layers(fp32);
        this.shapes = fp32.inferShapes(1);
        if (settings.squeeze() != null && !shapes.containsKey(settings.squeeze().featureMap())) {
            throw new IllegalArgumentException("--squeeze: the model has no feature map named '" + settings.squeeze().featureMap() + "'; "
                    + "see bin/silhouette inspect for the names (block outputs such as layer1.0.relu)");
        }
    }

    /** The silhouettes of the first test images, or null when no row used the training-free silhouette (none was chosen). */
    Views views() {
        return views;
    }

    Settings settings() {
        return settings;
    }

    /**
     * How well the learned, the training-free and the noise silhouette find the item, over the evaluated test images
     * ({@link Localisation}); call after {@link #run}, which chooses the training-free one.
     */
    Localisation.Result localisation(List<Localisation.Box> boxes) {
        int total = limit();
        if (boxes.size() < total) throw new IllegalArgumentException("the box file lists " + boxes.size() + " items for " + total + " test images");
        Shape image = test.images().shape();
        Graph[] graphs = {fp32, PlanRewrite.withSilhouette(fp32, trainingFree),
                PlanRewrite.withSilhouette(fp32, new SilhouetteSource.Noise(RegionQuantization.branchPoint(fp32), 0))};
        double[] sums = new double[graphs.length];
        for (int from = 0; from < total; from += settings.batch()) {
            Tensor images = test.images().slice(from, Math.min(total, from + settings.batch()));
            for (int g = 0; g < graphs.length; g++) {
                Tensor s = cpu.run(graphs[g], Map.of(input, images), List.of(Models.SILHOUETTE)).get(Models.SILHOUETTE);
                sums[g] += Localisation.sumOfShares(s, boxes, from, image.h(), image.w(), Localisation.TOP);
            }
        }
        return new Localisation.Result(total, Localisation.TOP, sums[0] / total, sums[1] / total, sums[2] / total,
                Localisation.chance(boxes, total, image.h(), image.w()));
    }

    private List<Node> convs() {
        List<Node> all = new ArrayList<>(layers.preBranch());
        all.addAll(layers.receiving());
        return all;
    }

    Result run(Progress bar) {
        calibrated = Calibration.collect(cpu, fp32, modelName, calibration.images(), settings.batch(), Plans.convolutionInputs(fp32),
                Plans.receivingInputs(fp32), DRQ_BLOCK, Progress.none());
        calibrated.adopt(learnedClipLevels);
        List<RowSpec> specs = rowSpecs();
        boolean trainingFreeRows = specs.stream().anyMatch(r -> r.key().silhouette().equals("training-free"));
        List<SqueezeSearch.Trial> trials = trainingFreeRows ? chooseTrainingFree(settings.policies().getFirst()) : List.of();
        List<Row> rows = new ArrayList<>();
        for (RowSpec spec : specs) {
            QuantPlan plan = spec.plan().get();
            rows.add(evaluate(spec.name(), spec.key().silhouette(), plan, bar));
        }
        // Bit operations relative to W8A8 (every convolution at 8 bits, the classifier in float), whether or not its row was chosen.
        double w8a8 = 0, w8a8Receiving = 0;
        Set<String> receivingLayers = new java.util.HashSet<>();
        layers.receiving().forEach(n -> receivingLayers.add(n.name()));
        for (Node n : convs()) {
            LayerCost c = cost(n);
            c.addUniform(8, 8, 1);
            w8a8 += c.bitOpsPerImage();
            if (receivingLayers.contains(n.name())) w8a8Receiving += c.bitOpsPerImage();
        }
        Op.Linear fc = (Op.Linear) fp32.node(Models.LOGITS).op();
        w8a8 += (double) fc.inFeatures() * fc.outFeatures() * 32 * 32;
        double w8a8All = w8a8, w8a8Recv = w8a8Receiving;
        List<Row> relative = rows.stream().map(r -> new Row(r.name(), r.silhouette(), r.accuracy(), r.activationBits(), r.activationBitsPerMac(),
                r.bitOpsVsW8A8() / w8a8All, r.receivingBitOpsVsW8A8() / w8a8Recv, r.packedKiBPerImage(), r.imagesPerSecond(), r.backend(),
                r.execution(), r.layers())).toList();
        views = trainingFree == null ? null : new Views(test.images().slice(0, Math.min(8, limit())), silhouettes(fp32),
                silhouettes(PlanRewrite.withSilhouette(fp32, trainingFree)), layerSizes());
        return new Result(relative, plans, trials, trainingFreeChoiceName, RegionQuantization.branchPoint(fp32), calibrated.clipLevels(), drqThresholds(4, 2),
                drqThresholds(8, 4));
    }

    /** DRQ 4/2 cannot average below 2 or above 4 bits: it takes the main policy's bits, as close as it gets; DRQ 8/4 those of {@link #HIGH}. */
    private double drqTarget(int high) {
        return high == 4 ? Math.clamp(settings.policies().getFirst().averageBits(), 2.0, 4.0) : HIGH.averageBits();
    }

    private Map<String, Float> drqThresholds(int high, int low) {
        return Plans.drqThresholds(calibrated, high, low, drqTarget(high));
    }

    static final RegionPolicy HIGH = RegionPolicy.parse("4:80,8:20");

    /** Every row of the full table in order, those {@link Settings#rows} chooses; plans are made when asked for (after calibration). */
    private List<RowSpec> rowSpecs() {
        SilhouetteSource learned = new SilhouetteSource.Learned();
        List<RowSpec> all = new ArrayList<>();
        all.add(new RowSpec(new RowKey(Kind.FP32, 32, -1, false, "-"), "FP32", () -> null));
        for (int bits : UNIFORM_BITS) {
            all.add(new RowSpec(new RowKey(Kind.UNIFORM, bits, -1, false, "-"), "W" + bits + "A" + bits,
                    () -> plan("W" + bits + "A" + bits, learned, new Receiving.Uniform(bits))));
        }
        // The main policy's shared weights at uniform activation widths: the same weights as its region rows.
        int mainWeights = sharedWeightBits(settings.policies().getFirst());
        for (int bits : MIXED_UNIFORM_BITS) {
            if (bits >= mainWeights) continue;
            String name = "W" + mainWeights + "A" + bits;
            all.add(new RowSpec(new RowKey(Kind.MIXED_UNIFORM, bits, -1, false, "-"), name, () -> plan(name, learned, new Receiving.Uniform(bits, mainWeights))));
        }
        all.add(new RowSpec(new RowKey(Kind.POST_TRAINING, 4, -1, false, "-"), PTQ_ROW, this::postTrainingPlan));
        for (int i = 0; i < settings.policies().size(); i++) {
            RegionPolicy p = settings.policies().get(i);
            for (boolean perRegion : forms(i)) {
                all.add(region(Kind.REGION, i, p, perRegion, "learned", () -> learned));
                all.add(region(Kind.REGION, i, p, perRegion, "training-free", () -> trainingFree));
            }
            // The control for every policy: where the widths go matters most when the low width is very low.
            all.add(region(Kind.REGION, i, p, false, NOISE, () -> new SilhouetteSource.Noise(RegionQuantization.branchPoint(fp32), 0)));
        }
        all.add(region(Kind.HIGH_REGION, -1, HIGH, true, "learned", () -> learned));
        all.add(region(Kind.HIGH_REGION, -1, HIGH, true, "training-free", () -> trainingFree));
        String drqLow = String.format("DRQ 4/2 (%.1f bits)", drqTarget(4)), drqHigh = String.format("DRQ 8/4 (%.1f bits)", drqTarget(8));
        all.add(new RowSpec(new RowKey(Kind.DRQ_LOW, 2, -1, true, "input blocks"), drqLow,
                () -> plan(drqLow, learned, new Receiving.Drq(2, 4, DRQ_BLOCK, drqThresholds(4, 2)))));
        all.add(new RowSpec(new RowKey(Kind.DRQ_HIGH, 4, -1, true, "input blocks"), drqHigh,
                () -> plan(drqHigh, learned, new Receiving.Drq(4, 8, DRQ_BLOCK, drqThresholds(8, 4)))));
        return all.stream().filter(r -> settings.rows().test(r.key())).toList();
    }

    private RowSpec region(Kind kind, int index, RegionPolicy p, boolean perRegion, String source, java.util.function.Supplier<SilhouetteSource> silhouette) {
        int weightBits = sharedWeightBits(p);
        String name = p + (perRegion ? " per-region W" : " W" + weightBits);
        return new RowSpec(new RowKey(kind, -1, index, perRegion, source), name,
                () -> plan(name, silhouette.get(), new Receiving.Region(p, perRegion, weightBits, settings.resize(), settings.order())));
    }

    private QuantPlan plan(String label, SilhouetteSource silhouette, Receiving receiving) {
        return Plans.of(fp32, modelName, label, silhouette, receiving, PRE_BRANCH_BITS, calibrated::alpha);
    }

    /** {@link #PTQ} planned by {@link PostTraining} from statistics of every weighted layer's input over the calibration images. */
    private QuantPlan postTrainingPlan() {
        List<String> inputs = PostTraining.weightedLayers(fp32).stream().map(n -> n.inputs().getFirst()).distinct().toList();
        Calibration stats = Calibration.collect(cpu, fp32, modelName, calibration.images(), settings.batch(), inputs, Set.of(), 1, Progress.none());
        return PostTraining.plan(fp32, modelName, PTQ, stats).plan();
    }

    /** Number of configurations {@link #run} evaluates on the test split (for the progress bar). */
    int rowCount() {
        return rowSpecs().size();
    }

    /**
     * Weight forms evaluated for policy {@code i} (per-region or not): shared for every policy, per-region too for the main
     * one when all its widths are at least 2 bits (a symmetric 1-bit weight grid does not exist).
     */
    private List<Boolean> forms(int i) {
        RegionPolicy p = settings.policies().get(i);
        boolean perRegion = i == 0 && p.regions().stream().allMatch(r -> r.bits() >= 2);
        return perRegion ? List.of(false, true) : List.of(false);
    }

    int limit() {
        return Math.min(settings.limit(), test.labels().length);
    }

    /** Shared weights take the policy's highest width, at least the 2 bits a symmetric grid needs. */
    static int sharedWeightBits(RegionPolicy p) {
        return Plans.sharedWeightBits(p);
    }

    /** Tries the channel squeezes of the feature map the learned branch reads, at the main policy, on the calibration images. */
    private List<SqueezeSearch.Trial> chooseTrainingFree(RegionPolicy main) {
        String featureMap = settings.squeeze() != null ? settings.squeeze().featureMap() : RegionQuantization.branchPoint(fp32);
        if (featureMap == null) throw new IllegalArgumentException("the silhouette branch of this model reads no main-path feature map to squeeze");
        List<SilhouetteSource.Squeeze> candidates = settings.squeeze() != null ? List.of(settings.squeeze())
                : SqueezeSearch.candidates(featureMap, shapes.get(featureMap).dim(1));
        Receiving.Region scheme = new Receiving.Region(main, false, sharedWeightBits(main), settings.resize(), settings.order());
        List<SqueezeSearch.Trial> trials = SqueezeSearch.run(cpu, fp32, calibration.images(), calibration.labels(), settings.batch(), candidates,
                squeeze -> PlanRewrite.apply(fp32, plan(main.toString(), squeeze, scheme)));
        SqueezeSearch.Trial best = SqueezeSearch.best(trials);
        trainingFree = best.source();
        trainingFreeChoiceName = best.squeeze() + " of " + featureMap;
        return trials;
    }

    // ---- evaluation on the test split ----

    /** Accuracy, speed and costs of one configuration: {@code plan} applied to the model (null: the model in FP32). */
    private Row evaluate(String name, String silhouette, QuantPlan plan, Progress bar) {
        Graph graph = plan == null ? fp32 : PlanRewrite.apply(fp32, plan, settings.execution());
        Backend runner = Evaluation.backendFor(graph, backend, cpu);
        Map<String, LayerCost> costs = new LinkedHashMap<>();
        for (Node n : convs()) costs.put(n.name(), cost(n));
        Set<String> receiving = new java.util.HashSet<>();
        RegionQuantization.layers(plan == null ? fp32 : PlanRewrite.withSilhouette(fp32, plan.silhouette())).receiving().forEach(n -> receiving.add(n.name()));
        List<String> requested = new ArrayList<>(List.of(Models.logits(graph), Models.SILHOUETTE));
        if (plan != null) {
            for (QuantPlan.LayerPlan l : plan.layers()) if (l.activations() instanceof Activations.Drq && !requested.contains(l.input())) requested.add(l.input());
        }

        int total = limit();
        int correct = 0;
        long nanos = 0;
        for (int from = 0; from < total; from += settings.batch()) {
            int to = Math.min(total, from + settings.batch());
            Tensor images = test.images().slice(from, to);
            long start = System.nanoTime();
            Map<String, Tensor> out = runner.run(graph, Map.of(input, images), requested);
            nanos += System.nanoTime() - start;
            correct += Evaluation.countCorrect(out.get(Models.logits(graph)), test.labels(), from);
            int count = to - from;
            for (Node n : convs()) addCost(costs.get(n.name()), plan == null ? null : plan.layer(n.name()), shapes.get(n.inputs().getFirst()), out, count);
            bar.stepBy(count);
        }
        Row row = summarise(name, silhouette, (double) correct / total, total / (nanos / 1e9), runner.name(), ExecutionOptions.label(graph, plan, settings.execution()), costs, receiving,
                plan == null ? null : plan.layer(Models.LOGITS));
        if (plan != null) plans.put(row.name() + " " + row.silhouette(), plan);
        return row;
    }

    /** An empty cost record of convolution {@code n} at the model's input size. */
    private LayerCost cost(Node n) {
        Op.Conv2d conv = (Op.Conv2d) n.op();
        Shape in = shapes.get(n.inputs().getFirst());
        var w = conv.window();
        return new LayerCost(n.name(), in.c(), conv.outChannels(), LayerCost.tapCounts(in.h(), in.w(), w.kernelH(), w.kernelW(),
                w.strideH(), w.strideW(), w.padH(), w.padW(), w.dilationH(), w.dilationW()));
    }

    /** One batch's activation and weight widths of a layer, as its plan quantizes them (unplanned layers are FP32). */
    private static void addCost(LayerCost cost, QuantPlan.LayerPlan layer, Shape in, Map<String, Tensor> out, int count) {
        if (layer == null) {
            cost.addUniform(32, 32, count);
            return;
        }
        int weightBits = switch (layer.weights()) {
            case Weights.Symmetric s -> s.bits()[0];
            case Weights.Float f -> 32;
            case Weights.PerRegion p -> -1;
        };
        switch (layer.activations()) {
            case Activations.Region r -> {
                byte[] map = RegionOps.regionMap(out.get(Models.SILHOUETTE), r.policy(), in.h(), in.w(), r.resize(), r.order());
                int regions = r.policy().regions().size();
                int[] act = new int[regions], weight = new int[regions];
                for (int j = 0; j < regions; j++) {
                    act[j] = r.policy().bits(j);
                    weight[j] = weightBits < 0 ? act[j] : weightBits;
                }
                long maskBits = (long) ceilLog2(regions) * in.h() * in.w();
                for (int b = 0; b < count; b++) cost.addImage(map, b * in.h() * in.w(), false, act, weight, maskBits);
            }
            case Activations.Drq d -> {
                byte[] map = RegionOps.drqMap(out.get(layer.input()), d.block(), d.threshold());
                int[] bits = {d.lowBits(), d.highBits()};
                int tiles = ((in.h() + d.block() - 1) / d.block()) * ((in.w() + d.block() - 1) / d.block());
                int perImage = in.c() * in.h() * in.w();
                for (int b = 0; b < count; b++) cost.addImage(map, b * perImage, true, bits, bits, (long) in.c() * tiles);
            }
            case Activations.Pact p -> cost.addUniform(p.bits(), weightBits, count);
            case Activations.Affine a -> cost.addUniform(a.bits(), weightBits, count);
            case Activations.Float f -> cost.addUniform(32, weightBits, count);
        }
    }

    private Row summarise(String name, String silhouette, double accuracy, double imagesPerSecond, String backendName, String execution,
                          Map<String, LayerCost> costs, Set<String> receiving, QuantPlan.LayerPlan classifier) {
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
        // The classifier stays FP32 in every configuration but the post-training one, whose plan quantizes it as a last layer.
        Op.Linear fc = (Op.Linear) fp32.node(Models.LOGITS).op();
        int fcWeightBits = 32, fcActivationBits = 32;
        if (classifier != null && classifier.weights() instanceof Weights.Symmetric w && classifier.activations() instanceof Activations.Affine a) {
            fcWeightBits = w.bits()[0];
            fcActivationBits = a.bits();
        }
        double fcOps = (double) fc.inFeatures() * fc.outFeatures() * fcWeightBits * fcActivationBits;
        rows.add(new LayerRow(Models.LOGITS, String.valueOf(fc.inFeatures()), (long) fc.inFeatures() * fc.outFeatures(), fcActivationBits, fcActivationBits, fcOps,
                fcActivationBits / 8.0 * fc.inFeatures()));
        bitOps += fcOps;
        return new Row(name, silhouette, accuracy, recvBitValues / recvValues, recvBitTaps / recvTaps, bitOps, recvBitOps, packed / 1024, imagesPerSecond,
                backendName, execution, rows);
    }

    private static int ceilLog2(int regions) {
        return regions <= 1 ? 0 : 32 - Integer.numberOfLeadingZeros(regions - 1);
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
