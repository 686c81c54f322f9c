package dev.silhouette.cli;

import dev.silhouette.io.Machine;
import dev.silhouette.backend.Backend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphStats;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Passes;
import dev.silhouette.io.Progress;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Op;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.pipeline.Evaluation;
import dev.silhouette.pipeline.PlanRewrite;
import dev.silhouette.pipeline.SqueezeSearch;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlanJson;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "run", mixinStandardHelpOptions = true,
        description = "The main job: evaluates the bundled silhouette model on the Fashion-MNIST test split in FP32, uniformly quantized, "
                + "region-quantized (learned and training-free silhouettes) and with the DRQ baseline; prints the table and draws the pictures. "
                + "--plain evaluates the model as it is (accuracy, confusion matrix with --json, images/s).")
final class RunCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", defaultValue = ModelLoader.BUNDLED, description = "model file or catalog name (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--data", description = "folder of IDX files named as Fashion-MNIST's, of the model's image size: t10k-images-idx3-ubyte(.gz) and "
            + "t10k-labels-idx1-ubyte(.gz), and train-images-idx3-ubyte(.gz) for calibration when present "
            + "(default: /usr/share/datasets/fashion-mnist if present, else the bundled copy)")
    Path data;

    @Mixin
    BackendOptions backendOptions;

    @Mixin
    ExecutionOptions executionOptions;

    @Option(names = "--batch", defaultValue = "100", description = "images per batch (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--limit", description = "evaluate only the first N images")
    Integer limit;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    @Option(names = "--policy", split = ";", paramLabel = "POLICY",
            description = "region policies for the table, bits:percent lowest silhouette first, ';' between policies or the option repeated; "
                    + "the first is the main one (default: 2:50,3:30,4:20; 2:70,4:30; 3:50,4:50; 2:30,3:40,4:30)")
    List<String> policies;

    @Option(names = "--out", defaultValue = "silhouette-results", description = "folder for the pictures and results.json (default: ${DEFAULT-VALUE})")
    Path outDir;

    @Option(names = "--calibration", defaultValue = "500", description = "training images for clip levels, DRQ thresholds and the squeeze choice (default: ${DEFAULT-VALUE})")
    int calibrationImages;

    @Option(names = "--resize", defaultValue = "NEAREST", description = "how each layer resizes the silhouette: NEAREST or BILINEAR (default: ${DEFAULT-VALUE})")
    Op.Interpolate.Mode resize;

    @Option(names = "--mask-order", defaultValue = "RESIZE_THEN_THRESHOLD",
            description = "RESIZE_THEN_THRESHOLD or THRESHOLD_THEN_RESIZE (default: ${DEFAULT-VALUE})")
    Op.RegionQuantize.MaskOrder maskOrder;

    @Option(names = "--squeeze", paramLabel = "MAP:HOW",
            description = "the training-free silhouette: FEATUREMAP:max, :mean, :topk-mean:K or :topk-std:K (e.g. layer1.0.relu:topk-std:4; "
                    + "default: the best of 8 squeezes of the map the learned branch reads, chosen on the calibration images)")
    String squeeze;

    @Option(names = "--plain", description = "only the model as it is: accuracy and images/s (the table's FP32 row alone)")
    boolean plain;

    enum Rows { headline, all }

    @Option(names = "--rows", description = "headline: both bundled datasets (Fashion-MNIST and cluttered 60x60), each row on the weights fine-tuned "
            + "for it (the default with the bundled model and data); all: the full table of one model (the default with --model, --data, --policy "
            + "or --squeeze)")
    Rows rows;

    @Option(names = "--plan", description = "run the model quantized by this plan (written by quantize, or by the main job into OUT/plans/): "
            + "accuracy and images/s, as --plain")
    Path plan;

    static final List<String> DEFAULT_POLICIES = List.of("2:50,3:30,4:20", "2:70,4:30", "3:50,4:50", "2:30,3:40,4:30");

    record Report(String model, String modelSource, String plan, long parameters, String data, String backend, String execution, int images, int correct,
                  double accuracy, double seconds, double imagesPerSecond, int[][] confusion, List<String> classes) {}

    /** The main job's report: what ran where, the table, and where the pictures went. */
    record StudyReport(String model, String modelSource, long parameters, String data, String calibration, String machine, int images,
                       double accuracy, double imagesPerSecond, String backend, String resize, String maskOrder, String branchPoint,
                       String trainingFreeSilhouette, List<SqueezeSearch.Trial> squeezeTrials, List<MainJob.Row> rows,
                       Map<String, Map<Integer, Float>> clipLevels, Localisation.Result localisation, List<String> pictures, double seconds) {}

    @Override
    public Integer call() {
        if (batch < 1 || batch > 65_536) throw new IllegalArgumentException("--batch " + batch + " must be between 1 and 65536");
        if (!plain && plan == null) {
            boolean custom = !model.equals(ModelLoader.BUNDLED) || data != null || policies != null || squeeze != null;
            if (rows == Rows.headline && custom) {
                throw new IllegalArgumentException("--rows headline runs the bundled models on their bundled data with their fine-tuned weights; "
                        + "with --model, --data, --policy or --squeeze use --rows all");
            }
            return (rows == null ? custom : rows == Rows.all) ? study() : headline();
        }
        if (rows != null) throw new IllegalArgumentException("--rows chooses the main job's rows; --plain and --plan evaluate one configuration");
        ModelLoader.Loaded loaded = ModelLoader.load(model);
        // Inference graph: BatchNorm folded into the convolutions (same outputs, fewer passes over memory).
        Graph graph = Passes.foldBatchNorm(loaded.graph());
        QuantPlan quantPlan = plan == null ? null : QuantPlanJson.load(plan);
        if (quantPlan != null) graph = PlanRewrite.apply(graph, quantPlan, executionOptions.mode());
        String execution = ExecutionOptions.label(graph, quantPlan, executionOptions.mode());
        FashionMnist test = FashionMnist.testSplit(data);
        test.requireInput(graph.inputs().getFirst().sampleShape(), loaded.architecture(), "test");
        int total = test.labels().length;
        if (limit != null) {
            if (limit < 1) throw new IllegalArgumentException("--limit " + limit + " must be at least 1");
            total = Math.min(total, limit);
        }
        int classes = graph.inferShapes(1).get(Models.LOGITS).dim(1);
        int[][] confusion = new int[classes][classes];
        int correct = 0;
        long start;
        String backendUsed;
        try (Backend opened = backendOptions.open(); Backend cpu = new CpuBackend();
             Progress bar = Progress.start(quantPlan == null ? "evaluating" : "evaluating " + quantPlan.label(), total, "img")) {
            Backend backend = Evaluation.backendFor(graph, opened, cpu);
            backendUsed = backend.name();
            start = System.nanoTime();
            for (int from = 0; from < total; from += batch) {
                int to = Math.min(total, from + batch);
                Tensor logits = backend.run(graph, Map.of(graph.inputs().getFirst().name(), test.images().slice(from, to)), List.of(Models.logits(graph))).get(Models.logits(graph));
                for (int i = 0; i < to - from; i++) {
                    int predicted = argmax(logits.data(), i * classes, classes);
                    int label = test.labels()[from + i];
                    if (label < 0 || label >= classes) throw new IllegalArgumentException("label " + label + " of image " + (from + i) + " is outside the model's " + classes + " classes");
                    confusion[label][predicted]++;
                    if (predicted == label) correct++;
                }
                bar.stepTo(to);
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long params = GraphStats.of(graph, 1).parameters();
        Report r = new Report(loaded.architecture(), loaded.source(), quantPlan == null ? "FP32" : quantPlan.label(), params, test.source(), backendUsed, execution, total, correct,
                (double) correct / total, seconds, total / seconds, confusion, List.of(FashionMnist.CLASS_NAMES));
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            Output.json(out, r);
            return 0;
        }
        out.printf("model     %s (%s, %,d parameters)%n", r.model(), r.modelSource(), r.parameters());
        if (quantPlan != null) out.printf("plan      %s (%s)%n", r.plan(), plan);
        out.printf("data      test split, %,d images (%s)%n", r.images(), r.data());
        out.printf("backend   %s, batch %d, execution %s%n", r.backend(), batch, r.execution());
        out.printf("accuracy  %.2f%% (%d/%d)%n", 100 * r.accuracy(), r.correct(), r.images());
        out.printf("speed     %.0f images/s (%.2f s)%n", r.imagesPerSecond(), r.seconds());
        out.flush();
        return 0;
    }

    private Integer study() {
        if (limit != null && limit < 1) throw new IllegalArgumentException("--limit " + limit + " must be at least 1");
        List<RegionPolicy> parsed = (policies == null || policies.isEmpty() ? DEFAULT_POLICIES : policies).stream().map(RegionPolicy::parse).toList();
        var chosenSqueeze = squeeze == null ? null : MainJob.Squeeze.parse(squeeze);
        ModelLoader.Loaded loaded = ModelLoader.load(model);
        Graph graph = Passes.foldBatchNorm(loaded.graph());
        var sample = graph.inputs().getFirst().sampleShape();
        FashionMnist test = FashionMnist.testSplit(data);
        test.requireInput(sample, loaded.architecture(), "test");
        FashionMnist calibration = FashionMnist.trainingSubset(data, calibrationImages);
        calibration.requireInput(sample, loaded.architecture(), "calibration");
        int images = Math.min(test.labels().length, limit == null ? Integer.MAX_VALUE : limit);
        MainJob.Settings settings = new MainJob.Settings(parsed, batch, images, resize, maskOrder, chosenSqueeze, executionOptions.mode());
        Map<String, Map<Integer, Float>> learnedClipLevels = LearnedClipLevels.read(loaded.metadata(), model);
        long start = System.nanoTime();
        MainJob.Result result;
        MainJob job;
        try (Backend backend = backendOptions.open()) {
            job = new MainJob(graph, loaded.architecture(), learnedClipLevels, test, calibration, settings, backend);
            try (Progress bar = Progress.start("main job", (long) job.rowCount() * images, "img")) {
                result = job.run(bar);
            }
        }
        // Cluttered data (silhouette data cluttered) lists each test item's box: then say whether the silhouettes find it.
        Path boxFile = data == null ? null : data.resolve("t10k" + DataCommand.BOXES);
        Localisation.Result localisation = boxFile != null && java.nio.file.Files.isRegularFile(boxFile) ? job.localisation(Localisation.read(boxFile)) : null;
        double seconds = (System.nanoTime() - start) / 1e9;
        List<String> pictures = Pictures.drawAll(outDir, job.views(), result, settings);
        List<String> plans = writePlans(outDir.resolve("plans"), result.plans());
        MainJob.Row fp = result.rows().getFirst();
        StudyReport r = new StudyReport(loaded.architecture(), loaded.source(), GraphStats.of(graph, 1).parameters(), test.source(),
                calibration.source(), Machine.current().toString(), images, fp.accuracy(), fp.imagesPerSecond(), fp.backend(), resize.name(),
                maskOrder.name(), result.branchPoint(), result.trainingFreeChoice(), result.squeezeTrials(), result.rows(), result.clipLevels(),
                localisation, pictures, seconds);
        pictures = new java.util.ArrayList<>(pictures);
        pictures.add(Pictures.writeJson(outDir.resolve("results.json"), r));
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            Output.json(out, r);
            return 0;
        }
        out.printf("model        %s (%s, %,d parameters)%n", r.model(), r.modelSource(), r.parameters());
        out.printf("data         test split, %,d images (%s)%n", r.images(), r.data());
        out.printf("calibration  %s: clip levels, DRQ thresholds, the training-free squeeze%n", r.calibration());
        if (!learnedClipLevels.isEmpty()) {
            int count = learnedClipLevels.values().stream().mapToInt(Map::size).sum();
            out.printf("clip levels  %d learned by fine-tuning (model metadata) for %d inputs; the others calibrated%n", count, learnedClipLevels.size());
        }
        out.printf("silhouettes  learned: the model's branch on %s; training-free: %s%s%n", r.branchPoint(), r.trainingFreeSilhouette(),
                squeeze != null ? " (--squeeze)" : " (best of " + r.squeezeTrials().size() + " squeezes on the calibration images)");
        out.printf("layers       stem and blocks before the silhouette W%dA%d, receiving convolutions as listed, classifier FP32; masks %s, %s%n",
                MainJob.PRE_BRANCH_BITS, MainJob.PRE_BRANCH_BITS, resize.name().toLowerCase(), maskOrder.name().toLowerCase().replace('_', ' '));
        out.printf("             except %s: every layer as quantize plans %s%n", MainJob.PTQ_ROW, MainJob.PTQ.label());
        out.printf("machine      %s%n%n", r.machine());
        out.printf("%-28s %-16s %9s %9s %9s %10s %10s %12s %9s  %s%n", "configuration", "silhouette", "accuracy", "act bits", "bits/MAC", "BOPs/W8A8",
                "recv BOPs", "act KiB/img", "images/s", "backend, execution");
        for (MainJob.Row row : r.rows()) {
            out.printf("%-28s %-16s %8.2f%% %9.2f %9.2f %10.3f %10.3f %12.2f %9.0f  %s%n", row.name(), row.silhouette(), 100 * row.accuracy(), row.activationBits(),
                    row.activationBitsPerMac(), row.bitOpsVsW8A8(), row.receivingBitOpsVsW8A8(), row.packedKiBPerImage(), row.imagesPerSecond(), row.backend() + ", " + row.execution());
        }
        out.printf("%nact bits: activation bits of the receiving convolutions' inputs, averaged over their values, measured per image; bits/MAC: the%n"
                + "same averaged over their MACs. BOPs/W8A8: MACs x weight bits x activation bits over every layer, relative to W8A8; recv BOPs: the%n"
                + "same over the receiving convolutions only.%n"
                + "act KiB/img: conv inputs packed at their widths plus region masks. images/s: this machine; execution: packed rows run their%n"
                + "convolutions on integer codes (the kernels named, layer counts), simulated rows dequantized codes through float ops.%n");
        MainJob.Row main = r.rows().stream().filter(x -> x.name().startsWith(parsed.getFirst() + " W") && x.silhouette().equals("learned")).findFirst().orElseThrow();
        out.printf("%nper layer, %s with the learned silhouette:%n", main.name());
        out.printf("%-24s %-10s %10s %9s %9s %12s %12s%n", "layer", "input", "MACs", "act bits", "bits/MAC", "BOPs", "packed B");
        for (MainJob.LayerRow l : main.layers()) {
            out.printf("%-24s %-10s %,10d %9.2f %9.2f %,12.0f %,12.0f%n", l.layer(), l.input(), l.macs(), l.activationBits(), l.activationBitsPerMac(),
                    l.bitOps(), l.packedBytes());
        }
        if (localisation != null) {
            out.printf("%nlocalisation share of the top %.0f%% silhouette pixels inside the item's box (%s), %d test images:%n", 100 * localisation.top(),
                    boxFile, localisation.images());
            out.printf("  learned %.3f, training-free %.3f, noise %.3f; the boxes cover %.3f of the canvas (a blind silhouette's share)%n",
                    localisation.learned(), localisation.trainingFree(), localisation.noise(), localisation.chance());
        }
        out.printf("%npictures     %s%n", String.join(", ", pictures));
        out.printf("plans        %d in %s (run one again with: bin/silhouette run --plan FILE, or eval --plan FILE)%n", plans.size(), outDir.resolve("plans"));
        out.printf("time         %.1f s%n", seconds);
        out.flush();
        return 0;
    }

    record HeadlineReport(String machine, String backend, List<Headline.Section> datasets, double seconds) {}

    /** The default main job: {@link Headline} on both bundled datasets. */
    private Integer headline() {
        if (limit != null && limit < 1) throw new IllegalArgumentException("--limit " + limit + " must be at least 1");
        List<RegionPolicy> parsed = DEFAULT_POLICIES.stream().map(RegionPolicy::parse).toList();
        MainJob.Settings settings = new MainJob.Settings(parsed, batch, limit == null ? Integer.MAX_VALUE : limit, resize, maskOrder, null, executionOptions.mode());
        long start = System.nanoTime();
        List<Headline.Section> sections;
        String backendName;
        try (Backend backend = backendOptions.open()) {
            backendName = backend.name();
            sections = Headline.run(Headline.datasets(), settings, calibrationImages, backend, outDir);
        }
        HeadlineReport r = new HeadlineReport(Machine.current().toString(), backendName, sections, (System.nanoTime() - start) / 1e9);
        String resultsFile = Pictures.writeJson(outDir.resolve("results.json"), r);
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            Output.json(out, r);
            return 0;
        }
        out.printf("The main job: each row on the weights fine-tuned for it; `run --rows all` gives the full table of one model.%n");
        out.printf("layers   stem and blocks before the silhouette W%dA%d, receiving convolutions as the row says, classifier FP32 (%s: every layer as%n"
                + "         quantize plans %s); masks %s, %s%n", MainJob.PRE_BRANCH_BITS, MainJob.PRE_BRANCH_BITS, MainJob.PTQ_ROW, MainJob.PTQ.label(),
                resize.name().toLowerCase(), maskOrder.name().toLowerCase().replace('_', ' '));
        out.printf("machine  %s%n", r.machine());
        for (Headline.Section s : sections) {
            out.printf("%n%s: %,d test images (%s)%ncalibration: %s%n", s.dataset(), s.images(), s.data(), s.calibration());
            if (s.trainingFreeSilhouette() != null) out.printf("training-free silhouette: %s (chosen on the calibration images)%n", s.trainingFreeSilhouette());
            out.printf("%-22s %-16s %-30s %9s %9s %10s %12s %9s  %s%n", "configuration", "silhouette", "weights", "accuracy", "act bits", "BOPs/W8A8",
                    "act KiB/img", "images/s", "backend, execution");
            for (Headline.Line l : s.rows()) {
                MainJob.Row row = l.row();
                out.printf("%-22s %-16s %-30s %8.2f%% %9.2f %10.3f %12.2f %9.0f  %s%n", row.name(), row.silhouette(), l.weights(), 100 * row.accuracy(),
                        row.activationBits(), row.bitOpsVsW8A8(), row.packedKiBPerImage(), row.imagesPerSecond(), row.backend() + ", " + row.execution());
            }
            if (s.localisation() != null) {
                Localisation.Result loc = s.localisation();
                out.printf("localisation: share of the top %.0f%% silhouette pixels inside the item's box, %d test images: learned %.3f, training-free %.3f,%n"
                        + "  noise %.3f; the boxes cover %.3f of the canvas%n", 100 * loc.top(), loc.images(), loc.learned(), loc.trainingFree(), loc.noise(), loc.chance());
            }
            out.printf("pictures: %s; %d plans (run one again: bin/silhouette run --plan FILE --model MODEL)%n", String.join(", ", s.pictures()), s.plans().size());
        }
        out.printf("%nact bits: activation bits of the receiving convolutions' inputs, averaged over their values; BOPs/W8A8: MACs x weight bits x%n"
                + "activation bits over every layer, relative to W8A8; act KiB/img: conv inputs packed at their widths plus region masks.%n");
        out.printf("results  %s%ntime     %.1f s%n", resultsFile, r.seconds());
        out.flush();
        return 0;
    }

    private static int argmax(float[] v, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (v[off + i] > v[off + best]) best = i;
        return best;
    }

    /** Each quantized row's plan as a file, for `run --plan`, `eval --plan` and the Java API to run again unchanged. */
    static List<String> writePlans(Path dir, Map<String, QuantPlan> plans) {
        List<String> written = new java.util.ArrayList<>();
        for (Map.Entry<String, QuantPlan> e : plans.entrySet()) {
            String base = e.getKey().replaceAll("[^A-Za-z0-9.]+", "-").replaceAll("^-|-$", "");
            Path file = dir.resolve(base + ".json");
            try {
                java.nio.file.Files.createDirectories(dir);
            } catch (java.io.IOException io) {
                throw new java.io.UncheckedIOException("cannot create " + dir + ": " + io.getMessage(), io);
            }
            QuantPlanJson.save(e.getValue(), file);
            written.add(file.toString());
        }
        return written;
    }
}
