package dev.silhouette.cli;

import dev.silhouette.io.Machine;
import dev.silhouette.backend.Backend;
import dev.silhouette.backend.Backends;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphStats;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Passes;
import dev.silhouette.io.Progress;
import dev.silhouette.io.SafeTensors;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.pipeline.Calibration;
import dev.silhouette.pipeline.Evaluation;
import dev.silhouette.pipeline.PlanRewrite;
import dev.silhouette.pipeline.PostTraining;
import dev.silhouette.quant.Aciq;
import dev.silhouette.quant.Entropy;
import dev.silhouette.quant.PtqRecipe;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlanJson;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** calibrate, quantize and eval: the post-training quantization workflow on Fashion-MNIST models. */
final class QuantCommands {
    private QuantCommands() {}

    /** The inference graph quantization works on: BatchNorm folded into the convolutions, as deployed. */
    static Graph inferenceGraph(ModelLoader.Loaded loaded) {
        return Passes.foldBatchNorm(loaded.graph());
    }

    static Calibration collect(ModelLoader.Loaded loaded, Graph folded, Path data, int images, int batch) {
        FashionMnist subset = FashionMnist.trainingSubset(data, images);
        subset.requireInput(folded.inputs().getFirst().sampleShape(), loaded.architecture(), "calibration");
        Tensor calibration = subset.images();
        try (Backend cpu = Backends.create("cpu", 0)) {
            return Calibration.collect(cpu, folded, loaded.architecture(), calibration, batch, Calibration.allValues(folded), java.util.Set.of(), 1,
                    Progress.start("calibrating", 2L * calibration.shape().dim(0), "img"));
        }
    }

    @Command(name = "calibrate", mixinStandardHelpOptions = true,
            description = "Collects per-layer activation statistics over Fashion-MNIST training images and saves them (collect mode).")
    static final class Calibrate implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Option(names = "--model", defaultValue = ModelLoader.BUNDLED, description = "model file or catalog name (default: ${DEFAULT-VALUE})") String model;
        @Option(names = "--data", description = "folder with train-images-idx3-ubyte(.gz) (default: /usr/share/datasets/fashion-mnist)") Path data;
        @Option(names = "--images", defaultValue = "512", description = "calibration images, the first N of the training split (default: ${DEFAULT-VALUE})") int images;
        @Option(names = "--batch", defaultValue = "64", description = "images per batch (default: ${DEFAULT-VALUE})") int batch;
        @Option(names = "--out", required = true, description = "statistics file to write (JSON)") Path out;
        @Option(names = "--json", description = "machine-readable output") boolean json;

        record Report(String model, int images, String fingerprint, int values, String file) {}

        @Override
        public Integer call() {
            ModelLoader.Loaded loaded = ModelLoader.load(model);
            Graph folded = inferenceGraph(loaded);
            Calibration c = collect(loaded, folded, data, images, batch);
            c.save(out);
            Report r = new Report(loaded.architecture(), images, c.fingerprint(), c.layers().size(), out.toString());
            PrintWriter pw = spec.commandLine().getOut();
            if (json) Output.json(pw, r);
            else {
                pw.printf("statistics of %d values over %d images written to %s (model fingerprint %s)%n", r.values(), images, out, c.fingerprint().substring(0, 12));
                pw.flush();
            }
            return 0;
        }
    }

    @Command(name = "quantize", mixinStandardHelpOptions = true,
            description = "Applies a post-training quantization recipe to a model and writes its quantization configuration.")
    static final class Quantize implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Option(names = "--model", defaultValue = ModelLoader.BUNDLED, description = "model file or catalog name (default: ${DEFAULT-VALUE})") String model;
        @Option(names = "--weight-bits", defaultValue = "8", description = "weight bits 1..8 (average with --channel-bits; default: ${DEFAULT-VALUE})") int weightBits;
        @Option(names = "--activation-bits", defaultValue = "8", description = "activation bits 1..8 (default: ${DEFAULT-VALUE})") int activationBits;
        @Option(names = "--per-channel", description = "per-output-channel weight scales (default: per tensor)") boolean perChannel;
        @Option(names = "--aciq", defaultValue = "off", description = "ACIQ clipping of activations: off (clip at min/max), laplace or gaussian (default: ${DEFAULT-VALUE})") String aciq;
        @Option(names = "--aciq-weights", defaultValue = "off", description = "ACIQ clipping of weights: off (clip at max |w|), laplace or gaussian (default: ${DEFAULT-VALUE})") String aciqWeights;
        @Option(names = "--bias-correction", description = "restore each output channel's weight mean and std") boolean biasCorrection;
        @Option(names = "--channel-bits", description = "allocate weight bits per output channel under the --weight-bits average") boolean channelBits;
        @Option(names = "--activation-channel-bits", description = "allocate activation bits per channel under the --activation-bits average") boolean activationChannelBits;
        @Option(names = "--first-last-bits", defaultValue = "8", description = "bits of the first and last layer, 0 for the same as the rest (default: ${DEFAULT-VALUE})") int firstLastBits;
        @Option(names = "--data", description = "folder with train-images-idx3-ubyte(.gz) for calibration (default: /usr/share/datasets/fashion-mnist)") Path data;
        @Option(names = "--calibration-images", defaultValue = "512", description = "calibration images when statistics are collected (default: ${DEFAULT-VALUE})") int calibrationImages;
        @Option(names = "--stats", description = "statistics file: used if it exists (use mode), else collected and written there (collect mode)") Path stats;
        @Option(names = "--out", description = "quantization plan to write (JSON, " + QuantPlan.FORMAT + "), for eval --plan, run --plan and the Java API") Path out;
        @Option(names = "--out-model", description = "model file (safetensors) to write: the weights with the plan in its metadata") Path outModel;
        @Option(names = "--png", description = "draw each quantized activation's histogram with its range into this PNG") Path png;
        @Option(names = "--json", description = "machine-readable output") boolean json;

        @Override
        public Integer call() {
            PtqRecipe recipe = new PtqRecipe(weightBits, activationBits, perChannel, prior(aciq, "--aciq"), prior(aciqWeights, "--aciq-weights"), biasCorrection, channelBits, activationChannelBits, firstLastBits);
            ModelLoader.Loaded loaded = ModelLoader.load(model);
            Graph folded = inferenceGraph(loaded);
            Calibration calibration;
            if (stats != null && Files.exists(stats)) {
                calibration = Calibration.load(stats, folded);
            } else {
                calibration = collect(loaded, folded, data, calibrationImages, 64);
                if (stats != null) calibration.save(stats);
            }
            PostTraining.Result result = PostTraining.plan(folded, loaded.architecture(), recipe, calibration);
            QuantPlan q = result.plan();
            if (out != null) QuantPlanJson.save(q, out);
            Map<String, QuantPlan.Activations.Affine> activations = activations(q);
            if (png != null) HistogramChart.write(png, calibration, activations, loaded.architecture() + ": " + recipe.label());
            if (outModel != null) {
                Map<String, String> metadata = new LinkedHashMap<>(loaded.metadata());
                metadata.putIfAbsent(ModelLoader.META_MODEL, loaded.architecture());
                metadata.put(PLAN_METADATA_KEY, QuantPlanJson.write(q));
                SafeTensors.write(outModel, loaded.graph().parameters(), metadata);
            }
            PrintWriter pw = spec.commandLine().getOut();
            if (json) {
                Output.json(pw, new Report(q.label(), calibration.images(), result.averageWeightBits(), result.layers(), activations,
                        out == null ? null : out.toString()));
                return 0;
            }
            pw.printf("%s: %s, calibrated on %d images%n", loaded.architecture(), recipe.label(), calibration.images());
            pw.printf("%-24s %6s %10s %9s %9s%n", "layer", "bits", "clip", "entropy", "huffman");
            for (PostTraining.LayerReport l : result.layers()) {
                pw.printf("%-24s %6.2f %10.4g %9.3f %9.3f%n", l.layer(), l.averageBits(), l.maxClip(), l.entropyBits(), l.huffmanBits());
            }
            pw.printf("%-24s %6s %10s %10s%n", "activation", "bits", "lo", "hi");
            activations.forEach((v, a) -> pw.printf("%-24s %6d %10.4g %10.4g%n", v, a.bits(), a.lo(), a.hi()));
            pw.printf("average weight bits %.3f%s%n", result.averageWeightBits(), out == null ? "" : "; plan written to " + out);
            pw.flush();
            return 0;
        }

        record Report(String recipe, int calibrationImages, double averageWeightBits, List<PostTraining.LayerReport> layers,
                      Map<String, QuantPlan.Activations.Affine> activations, String plan) {}

        /** Each quantized value once (layers reading the same value share its quantization). */
        private static Map<String, QuantPlan.Activations.Affine> activations(QuantPlan q) {
            Map<String, QuantPlan.Activations.Affine> out = new LinkedHashMap<>();
            for (QuantPlan.LayerPlan l : q.layers()) if (l.activations() instanceof QuantPlan.Activations.Affine a) out.putIfAbsent(l.input(), a);
            return out;
        }
    }

    /** Model-file metadata key under which quantize --out-model stores the plan beside the weights. */
    static final String PLAN_METADATA_KEY = "silhouette.plan";

    static Aciq.Prior prior(String name, String option) {
        return switch (name.toLowerCase()) {
            case "off" -> null;
            case "laplace" -> Aciq.Prior.LAPLACE;
            case "gaussian" -> Aciq.Prior.GAUSSIAN;
            default -> throw new IllegalArgumentException(option + " '" + name + "' is not one of off, laplace, gaussian");
        };
    }

    @Command(name = "eval", mixinStandardHelpOptions = true,
            description = "Accuracy on the Fashion-MNIST test split, full precision or fake-quantized with a quantize configuration.")
    static final class Eval implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Option(names = "--model", defaultValue = ModelLoader.BUNDLED, description = "model file or catalog name (default: ${DEFAULT-VALUE})") String model;
        @Option(names = {"--plan", "--quantized"}, description = "quantization plan written by quantize or by the main job (default: the one in the model file, else full precision)") Path plan;
        @Option(names = "--data", description = "folder of IDX files named as Fashion-MNIST's with the test split (t10k-images-idx3-ubyte(.gz)) of the model's image size (default: /usr/share/datasets/fashion-mnist if present, else the bundled copy)") Path data;
        @Mixin BackendOptions backendOptions;
        @Mixin ExecutionOptions executionOptions;
        @Option(names = "--batch", defaultValue = "100", description = "images per batch (default: ${DEFAULT-VALUE})") int batch;
        @Option(names = "--limit", description = "evaluate only the first N images") Integer limit;
        @Option(names = "--json", description = "machine-readable output") boolean json;

        record LayerEntropy(String value, int bits, double entropyBits, double huffmanBits) {}

        record LayerCost(String layer, long macs, double weightBits, double activationBits, double gigaBitOperations, double bytesMoved) {}

        record Report(String model, String recipe, int images, int correct, double accuracy, double averageWeightBits,
                      double averageActivationBits, double gigaBitOperations, double bytesMoved, List<LayerCost> layers,
                      List<LayerEntropy> activationEntropy, String execution, Machine machine) {}

        @Override
        public Integer call() {
            if (batch < 1 || batch > 65_536) throw new IllegalArgumentException("--batch " + batch + " must be between 1 and 65536");
            ModelLoader.Loaded loaded = ModelLoader.load(model);
            Graph folded = inferenceGraph(loaded);
            // A configuration file wins; otherwise a model file written by quantize --out-model carries its own.
            String embedded = loaded.metadata().get(PLAN_METADATA_KEY);
            QuantPlan q = plan != null ? QuantPlanJson.load(plan) : embedded != null ? QuantPlanJson.read(embedded, loaded.source()) : null;
            Graph graph = q == null ? folded : PlanRewrite.apply(folded, q, executionOptions.mode());
            FashionMnist test = FashionMnist.testSplit(data);
            test.requireInput(folded.inputs().getFirst().sampleShape(), loaded.architecture(), "test");
            int total = test.labels().length;
            if (limit != null) {
                if (limit < 1) throw new IllegalArgumentException("--limit " + limit + " must be at least 1");
                total = Math.min(total, limit);
            }
            Evaluation.Result result;
            try (Backend opened = backendOptions.open(); Backend cpu = new CpuBackend();
                 Progress bar = Progress.start(q == null ? "evaluating FP32" : "evaluating " + q.label(), total, "img")) {
                result = Evaluation.run(Evaluation.backendFor(graph, opened, cpu), graph, Models.logits(graph), test.images(), test.labels(), total, batch,
                        q != null, bar::stepTo);
            }
            Report r = report(loaded.architecture(), folded, q, result, ExecutionOptions.label(graph, q, executionOptions.mode()));
            PrintWriter out = spec.commandLine().getOut();
            if (json) {
                Output.json(out, r);
                return 0;
            }
            out.printf("model     %s%n", r.model());
            out.printf("recipe    %s%n", r.recipe());
            out.printf("accuracy  %.2f%% (%d/%d), execution %s%n", 100 * r.accuracy(), r.correct(), r.images(), r.execution());
            out.printf("bits      weights %.2f, activations %.2f (MAC-weighted); %.4f G bit operations per image%n",
                    r.averageWeightBits(), r.averageActivationBits(), r.gigaBitOperations());
            out.printf("memory    %.1f KB moved per image (weights and layer inputs at their widths)%n", r.bytesMoved() / 1024);
            out.printf("  %-24s %12s %6s %6s %12s %10s%n", "layer", "MACs", "W bits", "A bits", "G bit-ops", "KB moved");
            for (LayerCost l : r.layers()) {
                out.printf("  %-24s %,12d %6.2f %6.2f %12.5f %10.2f%n", l.layer(), l.macs(), l.weightBits(), l.activationBits(), l.gigaBitOperations(), l.bytesMoved() / 1024);
            }
            for (LayerEntropy e : r.activationEntropy()) {
                out.printf("  %-24s %d bits, entropy %.3f, Huffman %.3f%n", e.value(), e.bits(), e.entropyBits(), e.huffmanBits());
            }
            out.flush();
            return 0;
        }

        /**
         * Cost per image of each weighted layer: bit operations (MACs x weight bits x input activation
         * bits; 32 x 32 unquantized) and bytes moved (its weights and its input activation at their widths).
         */
        private static Report report(String model, Graph folded, QuantPlan q, Evaluation.Result result, String execution) {
            GraphStats stats = GraphStats.of(folded, 1);
            Map<String, Shape> shapes = folded.inferShapes(1);
            Map<String, Long> macs = new LinkedHashMap<>();
            for (GraphStats.Row row : stats.rows()) macs.put(row.name(), row.macs());
            Map<String, Double> inputBits = new LinkedHashMap<>(), weightBits = new LinkedHashMap<>();
            if (q != null) {
                for (QuantPlan.LayerPlan l : q.layers()) {
                    double activationBits = activationBits(l.activations());
                    inputBits.put(l.layer(), activationBits);
                    weightBits.put(l.layer(), switch (l.weights()) {
                        case QuantPlan.Weights.Symmetric s -> s.averageBits();
                        case QuantPlan.Weights.Float f -> 32.0;
                        case QuantPlan.Weights.PerRegion p -> activationBits;
                    });
                }
            }
            List<LayerCost> layers = new java.util.ArrayList<>();
            double bitOps = 0, bytes = 0, activationBits = 0;
            long totalMacs = 0;
            for (var node : PostTraining.weightedLayers(folded)) {
                String input = node.inputs().getFirst();
                long m = macs.get(node.name());
                double wb = weightBits.getOrDefault(node.name(), 32.0);
                double ab = inputBits.getOrDefault(node.name(), 32.0);
                long weights = folded.parameter(node, "weight").size();
                double layerBytes = (weights * wb + shapes.get(input).size() * (double) ab) / 8;
                layers.add(new LayerCost(node.name(), m, wb, ab, m * wb * ab / 1e9, layerBytes));
                bitOps += m * wb * ab;
                bytes += layerBytes;
                activationBits += (double) m * ab;
                totalMacs += m;
            }
            List<LayerEntropy> entropy = new java.util.ArrayList<>();
            Map<String, Integer> valueBits = new LinkedHashMap<>();
            if (q != null) {
                for (QuantPlan.LayerPlan l : q.layers()) {
                    int bits = switch (l.activations()) {
                        case QuantPlan.Activations.Affine a -> a.bits();
                        case QuantPlan.Activations.Pact p -> p.bits();
                        default -> 0;
                    };
                    valueBits.merge(l.input(), bits, Math::max);
                }
            }
            for (Map.Entry<String, Entropy.Report> e : result.activationEntropy().entrySet()) {
                entropy.add(new LayerEntropy(e.getKey(), valueBits.getOrDefault(e.getKey(), 0), e.getValue().entropyBits(), e.getValue().huffmanBits()));
            }
            return new Report(model, q == null ? "FP32" : q.label(), result.images(), result.correct(), result.accuracy(),
                    q == null ? 32 : averageWeightBits(folded, q), activationBits / totalMacs, bitOps / 1e9, bytes, layers, entropy, execution, Machine.current());
        }

        /** Bits per activation a scheme stores (a region or DRQ scheme's average over its widths). */
        private static double activationBits(QuantPlan.Activations a) {
            return switch (a) {
                case QuantPlan.Activations.Float f -> 32;
                case QuantPlan.Activations.Pact p -> p.bits();
                case QuantPlan.Activations.Affine af -> af.bits();
                case QuantPlan.Activations.Region r -> r.policy().averageBits();
                case QuantPlan.Activations.Drq d -> (d.lowBits() + d.highBits()) / 2.0;
            };
        }

        /** Average weight bits over all weights of the planned layers. */
        private static double averageWeightBits(Graph folded, QuantPlan q) {
            double bits = 0;
            long count = 0;
            for (QuantPlan.LayerPlan l : q.layers()) {
                long n = folded.parameter(folded.node(l.layer()), "weight").size();
                double b = switch (l.weights()) {
                    case QuantPlan.Weights.Symmetric s -> s.averageBits();
                    case QuantPlan.Weights.Float f -> 32;
                    case QuantPlan.Weights.PerRegion p -> activationBits(l.activations());
                };
                bits += b * n;
                count += n;
            }
            return count == 0 ? 32 : bits / count;
        }

        private static int argmax(float[] v, int off, int n) {
            int best = 0;
            for (int i = 1; i < n; i++) if (v[off + i] > v[off + best]) best = i;
            return best;
        }
    }
}
