package dev.silhouette.cli;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.Backends;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphStats;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Passes;
import dev.silhouette.graph.Models;
import dev.silhouette.tensor.Tensor;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "run", mixinStandardHelpOptions = true,
        description = "The main job: evaluates the bundled silhouette model on the Fashion-MNIST test split.")
final class RunCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", defaultValue = ModelLoader.BUNDLED, description = "model file or catalog name (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--data", description = "folder with t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) "
            + "(default: " + "/usr/share/datasets/fashion-mnist" + " if present, else the bundled copy)")
    Path data;

    @Option(names = "--backend", defaultValue = "auto", description = "auto, cpu or cuda[:N] (default: ${DEFAULT-VALUE})")
    String backendName;

    @Option(names = "--batch", defaultValue = "100", description = "images per batch (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--limit", description = "evaluate only the first N images")
    Integer limit;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    record Report(String model, String modelSource, long parameters, String data, String backend, int images, int correct,
                  double accuracy, double seconds, double imagesPerSecond, int[][] confusion, List<String> classes) {}

    @Override
    public Integer call() {
        if (batch < 1 || batch > 65_536) throw new IllegalArgumentException("--batch " + batch + " must be between 1 and 65536");
        ModelLoader.Loaded loaded = ModelLoader.load(model);
        // Inference graph: BatchNorm folded into the convolutions (same outputs, fewer passes over memory).
        Graph graph = Passes.foldBatchNorm(loaded.graph());
        FashionMnist test = FashionMnist.testSplit(data);
        var sample = graph.inputs().getFirst().sampleShape();
        if (!sample.equals(dev.silhouette.tensor.Shape.of(1, 28, 28))) {
            throw new IllegalArgumentException("model '" + loaded.architecture() + "' takes input " + sample + ", Fashion-MNIST images are [1, 28, 28]");
        }
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
        try (Backend backend = Backends.create(backendName);
             ProgressBar bar = new ProgressBarBuilder().setTaskName("evaluating").setInitialMax(total).setUnit(" img", 1)
                     .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250).showSpeed().continuousUpdate().build()) {
            backendUsed = backend.name();
            start = System.nanoTime();
            for (int from = 0; from < total; from += batch) {
                int to = Math.min(total, from + batch);
                Tensor logits = backend.run(graph, Map.of(graph.inputs().getFirst().name(), test.images().slice(from, to)), List.of(Models.LOGITS)).get(Models.LOGITS);
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
        Report r = new Report(loaded.architecture(), loaded.source(), params, test.source(), backendUsed, total, correct,
                (double) correct / total, seconds, total / seconds, confusion, List.of(FashionMnist.CLASS_NAMES));
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            Output.json(out, r);
            return 0;
        }
        out.printf("model     %s (%s, %,d parameters)%n", r.model(), r.modelSource(), r.parameters());
        out.printf("data      Fashion-MNIST test split, %,d images (%s)%n", r.images(), r.data());
        out.printf("backend   %s, batch %d%n", r.backend(), batch);
        out.printf("accuracy  %.2f%% (%d/%d)%n", 100 * r.accuracy(), r.correct(), r.images());
        out.printf("speed     %.0f images/s (%.2f s)%n", r.imagesPerSecond(), r.seconds());
        out.flush();
        return 0;
    }

    private static int argmax(float[] v, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (v[off + i] > v[off + best]) best = i;
        return best;
    }
}
