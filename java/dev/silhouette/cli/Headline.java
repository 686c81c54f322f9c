package dev.silhouette.cli;

import dev.silhouette.backend.Backend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Passes;
import dev.silhouette.io.Progress;
import dev.silhouette.pipeline.QuantPlan;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * The default main job: the headline rows on both bundled datasets (Fashion-MNIST and its cluttered 60x60 form), each
 * row on the weights fine-tuned for it, so that the comparison a newcomer sees is fine-tuned against fine-tuned. Rows
 * that need no fine-tuning (FP32, W8A8, the post-training row, DRQ's post-training baseline) run on the model as
 * trained. {@code run --rows all} gives the full table of one model instead.
 */
final class Headline {
    private Headline() {}

    /** One model file and the rows that run on it: {@code weights} says what its weights were trained for. */
    record Variant(String model, String weights, Predicate<MainJob.RowKey> rows) {}

    /** A dataset of the headline: cluttered ones are made in memory from the Fashion-MNIST source ({@link Cluttered#inMemory}). */
    record Dataset(String name, Cluttered.Settings cluttered, List<Variant> variants) {}

    /** A row of the headline and the weights it ran on. */
    record Line(String weights, String model, MainJob.Row row) {}

    record Section(String dataset, String data, String calibration, int images, List<Line> rows, String trainingFreeSilhouette,
                   Localisation.Result localisation, List<String> pictures, List<String> plans, double seconds) {}

    /** The seed-0 folder of issue 19 ({@code data cluttered --size 60 --pieces 4 --seed 0}): what bundled-cluttered was trained on. */
    static final Cluttered.Settings CLUTTERED_60 = new Cluttered.Settings(60, 4, Cluttered.PIECE, 0);

    static List<Dataset> datasets() {
        return List.of(dataset("Fashion-MNIST", ModelLoader.BUNDLED, null), dataset("cluttered Fashion-MNIST 60x60", ModelLoader.BUNDLED_CLUTTERED, CLUTTERED_60));
    }

    private static Dataset dataset(String name, String base, Cluttered.Settings cluttered) {
        Predicate<MainJob.RowKey> asTrained = k -> switch (k.kind()) {
            case FP32, POST_TRAINING, DRQ_LOW -> true;
            case UNIFORM -> k.bits() == 8;
            default -> false;
        };
        return new Dataset(name, cluttered, List.of(
                new Variant(base, "as trained", asTrained),
                new Variant(base + "-ft-w4a3", "fine-tuned for W4A3", k -> k.kind() == MainJob.Kind.MIXED_UNIFORM && k.bits() == 3),
                new Variant(base + "-ft-w4a2", "fine-tuned for W4A2", k -> k.kind() == MainJob.Kind.MIXED_UNIFORM && k.bits() == 2),
                new Variant(base + "-ft-region", "fine-tuned for 2:50,3:30,4:20",
                        k -> k.kind() == MainJob.Kind.REGION && k.policy() == 0 && !k.perRegion())));
    }

    private record Job(Variant variant, MainJob job) {}

    private record Prepared(Dataset dataset, FashionMnist test, FashionMnist calibration, List<Localisation.Box> boxes, int images, List<Job> jobs) {}

    /** Evaluates every dataset's rows under one progress bar; pictures, plans and results go to a folder per dataset in {@code outDir}. */
    static List<Section> run(List<Dataset> datasets, MainJob.Settings settings, int calibrationImages, Backend backend, Path outDir) {
        List<Prepared> prepared = datasets.stream().map(d -> prepare(d, settings, calibrationImages, backend)).toList();
        long work = 0;
        for (Prepared p : prepared) for (Job j : p.jobs()) work += (long) j.job().rowCount() * p.images();
        List<Section> sections = new ArrayList<>();
        try (Progress bar = Progress.start("main job", work, "img")) {
            for (Prepared p : prepared) sections.add(evaluate(p, outDir, bar));
        }
        return sections;
    }

    private static Prepared prepare(Dataset d, MainJob.Settings settings, int calibrationImages, Backend backend) {
        FashionMnist test, calibration;
        List<Localisation.Box> boxes = null;
        if (d.cluttered() == null) {
            test = FashionMnist.testSplit(null);
            calibration = FashionMnist.trainingSubset(null, calibrationImages);
        } else {
            FashionMnist testItems = FashionMnist.testSplit(null), trainItems = FashionMnist.trainSplit(null);
            String how = "data cluttered --size " + d.cluttered().size() + " --pieces " + d.cluttered().pieces() + " --seed " + d.cluttered().seed();
            Cluttered.Labelled t = Cluttered.inMemory(testItems, Cluttered.TEST, d.cluttered(), testItems.labels().length,
                    "test split of " + how + ", made in memory from " + testItems.source());
            int count = Math.min(calibrationImages, trainItems.labels().length);
            calibration = Cluttered.inMemory(trainItems, Cluttered.TRAIN, d.cluttered(), count,
                    "first " + count + " of the training split of " + how + ", made in memory from " + trainItems.source()).images();
            test = t.images();
            boxes = t.boxes();
        }
        int images = Math.min(settings.limit(), test.labels().length);
        List<Job> jobs = new ArrayList<>();
        for (Variant v : d.variants()) {
            ModelLoader.Loaded loaded = ModelLoader.load(v.model());
            Graph graph = Passes.foldBatchNorm(loaded.graph());
            test.requireInput(graph.inputs().getFirst().sampleShape(), v.model(), "test");
            MainJob.Settings chosen = settings.with(images, v.rows());
            jobs.add(new Job(v, new MainJob(graph, loaded.architecture(), LearnedClipLevels.read(loaded.metadata(), v.model()), test, calibration, chosen, backend)));
        }
        return new Prepared(d, test, calibration, boxes, images, jobs);
    }

    private static Section evaluate(Prepared p, Path outDir, Progress bar) {
        long start = System.nanoTime();
        List<Line> lines = new ArrayList<>();
        Map<String, QuantPlan> plans = new LinkedHashMap<>();
        String trainingFree = null;
        Localisation.Result localisation = null;
        List<String> pictures = new ArrayList<>();
        Path dir = outDir.resolve(p.dataset().cluttered() == null ? "fashion-mnist" : "cluttered");
        for (Job j : p.jobs()) {
            MainJob.Result result = j.job().run(bar);
            for (MainJob.Row row : result.rows()) lines.add(new Line(j.variant().weights(), j.variant().model(), row));
            result.plans().forEach((name, plan) -> plans.put(j.variant().model() + " " + name, plan));
            if (j.job().views() != null) {
                trainingFree = result.trainingFreeChoice();
                pictures.addAll(Pictures.drawSilhouettes(dir, j.job().views(), j.job().settings()));
                if (p.boxes() != null) localisation = j.job().localisation(p.boxes());
            }
        }
        // The full table's order: FP32, uniform, post-training, region, DRQ.
        lines.sort(Comparator.comparingInt(l -> order(l.row())));
        pictures.add(Pictures.drawAccuracyVsBits(dir, lines.stream().map(Line::row).toList()));
        List<String> planFiles = RunCommand.writePlans(dir.resolve("plans"), plans);
        return new Section(p.dataset().name(), p.test().source(), p.calibration().source(), p.images(), lines, trainingFree, localisation, pictures, planFiles,
                (System.nanoTime() - start) / 1e9);
    }

    private static int order(MainJob.Row row) {
        String n = row.name();
        if (n.equals("FP32")) return 0;
        if (n.equals("W8A8")) return 1;
        if (n.startsWith("W4A3")) return 2;
        if (n.startsWith("W4A2")) return 3;
        if (n.equals(MainJob.PTQ_ROW)) return 4;
        if (n.startsWith("DRQ")) return 6;
        return 5;
    }
}
