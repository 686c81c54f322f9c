package dev.silhouette.cli;

import dev.silhouette.io.Machine;
import dev.silhouette.io.AtomicFiles;
import dev.silhouette.backend.Backend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphStats;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Passes;
import dev.silhouette.io.Progress;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Whole-model latency and throughput. Method: fixed random inputs (several, rotated so caches do not
 * flatter repeated runs), warm-up runs not timed (JIT, allocator), then timed runs of one batch each;
 * the median is reported with min and max, next to the machine.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Times a model's inference at a batch size.")
final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", defaultValue = "resnet18", description = "model file or catalog name (default: ${DEFAULT-VALUE})")
    String model;

    @Mixin
    BackendOptions backendOptions;

    @Mixin
    ExecutionOptions executionOptions;

    @Option(names = "--plan", description = "time the model quantized by this plan (written by quantize or the main job), on the --execution path")
    Path plan;

    @Option(names = "--batch", defaultValue = "8", description = "batch size (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--warmup", defaultValue = "3", description = "untimed runs first (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--runs", defaultValue = "10", description = "timed runs (default: ${DEFAULT-VALUE})")
    int runs;

    @Option(names = "--out", description = "also write the result as JSON to this file")
    Path out;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    record Report(String model, String plan, String execution, String backend, int batch, int runs, double medianMs, double minMs, double maxMs,
                  double imagesPerSecond, double gmacsPerSecond, Machine machine) {}

    @Override
    public Integer call() {
        if (batch < 1 || runs < 1 || warmup < 0) throw new IllegalArgumentException("--batch and --runs must be at least 1, --warmup at least 0");
        dev.silhouette.api.Model loaded = dev.silhouette.api.Model.load(model);
        // Inference graph: BatchNorm folded into the convolutions (same outputs, fewer passes over memory).
        Graph folded = Passes.foldBatchNorm(loaded.graph());
        dev.silhouette.pipeline.QuantPlan quantPlan = plan == null ? null : dev.silhouette.pipeline.QuantPlanJson.load(plan);
        Graph graph = quantPlan == null ? folded : dev.silhouette.pipeline.PlanRewrite.apply(folded, quantPlan, executionOptions.mode());
        String execution = ExecutionOptions.label(graph, quantPlan, executionOptions.mode());
        Graph.Input input = graph.inputs().getFirst();
        int[] dims = new int[input.sampleShape().rank() + 1];
        dims[0] = batch;
        System.arraycopy(input.sampleShape().dims(), 0, dims, 1, dims.length - 1);
        Tensor[] inputs = new Tensor[3];
        for (int i = 0; i < inputs.length; i++) inputs[i] = Tensor.uniform(Shape.of(dims), 0, 1, i);
        double[] ms = new double[runs];
        String backendUsed;
        try (Backend opened = backendOptions.open(); Backend cpu = new dev.silhouette.backend.cpu.CpuBackend();
             Progress bar = Progress.start("bench " + loaded.name(), warmup + runs, "runs")) {
            Backend backend = dev.silhouette.pipeline.Evaluation.backendFor(graph, opened, cpu);
            backendUsed = backend.name();
            for (int i = 0; i < warmup + runs; i++) {
                long t0 = System.nanoTime();
                backend.run(graph, Map.of(input.name(), inputs[i % inputs.length]));
                if (i >= warmup) ms[i - warmup] = (System.nanoTime() - t0) / 1e6;
                bar.step();
            }
        }
        double[] sorted = ms.clone();
        Arrays.sort(sorted);
        double median = runs % 2 == 1 ? sorted[runs / 2] : (sorted[runs / 2 - 1] + sorted[runs / 2]) / 2;
        long macs = GraphStats.of(folded, batch).macs();
        Report r = new Report(loaded.name(), quantPlan == null ? "FP32" : quantPlan.label(), execution, backendUsed, batch, runs, median, sorted[0], sorted[runs - 1],
                batch / (median / 1e3), macs / (median / 1e3) / 1e9, Machine.current());
        if (out != null) writeAtomically(out, r);
        PrintWriter pw = spec.commandLine().getOut();
        if (json) {
            Output.json(pw, r);
        } else {
            pw.printf("%s %s on %s (%s), batch %d: median %.1f ms (min %.1f, max %.1f over %d runs), %.1f images/s, %.1f GMAC/s%n",
                    r.model(), r.plan(), r.backend(), r.execution(), batch, median, r.minMs(), r.maxMs(), runs, r.imagesPerSecond(), r.gmacsPerSecond());
            pw.printf("machine: %s%n", r.machine());
            pw.flush();
        }
        return 0;
    }

    private static void writeAtomically(Path file, Object result) {
        try {
            AtomicFiles.write(file, tmp -> {
                try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(tmp))) {
                    Output.json(w, result);
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }
}
