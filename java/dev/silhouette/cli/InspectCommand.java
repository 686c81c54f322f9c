package dev.silhouette.cli;

import dev.silhouette.backend.cuda.CudaDevices;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphStats;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Lists a model's layers with output shapes, parameters and multiply-accumulates.")
final class InspectCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", defaultValue = ModelLoader.BUNDLED,
            description = "catalog name (${COMPLETION-CANDIDATES}), a model file, an .onnx file, or 'bundled' (default)",
            completionCandidates = ModelNames.class)
    String model;

    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "the model, instead of --model")
    String modelArgument;

    @Option(names = "--input-size", description = "square input size in pixels (default: the model's own)")
    Integer inputSize;

    @Option(names = "--silhouette-after", description = "insert the silhouette branch after this block (catalog models)")
    String silhouetteAfter;

    @Option(names = "--silhouette-output", description = "ONNX models: the value holding the silhouette, when not recognised by its structure")
    String silhouetteOutput;

    @Option(names = "--batch", defaultValue = "1", description = "batch size for shapes and MACs (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    @Option(names = "--devices", description = "list the GPUs, the driver and the cuDNN/cuBLAS libraries found, instead of a model")
    boolean devices;

    record Report(String model, String source, List<Integer> inputShape, long parameters, long macs, List<GraphStats.Row> layers) {}

    @Override
    public Integer call() {
        if (devices) return listDevices();
        if (batch < 1) throw new IllegalArgumentException("--batch " + batch + " must be at least 1");
        if (modelArgument != null) {
            if (spec.commandLine().getParseResult().hasMatchedOption("--model")) throw new IllegalArgumentException("give the model once: as MODEL or as --model");
            model = modelArgument;
        }
        Graph graph;
        String source;
        if ((inputSize != null || silhouetteAfter != null) && Models.CATALOG.containsKey(model)) {
            Models.Options d = Models.defaults(model);
            graph = Models.build(model, new Models.Options(d.numClasses(), inputSize == null ? d.inputSize() : inputSize,
                    silhouetteAfter == null ? d.silhouetteAfter() : silhouetteAfter, 0));
            source = "random weights (seed 0)";
        } else {
            if (inputSize != null || silhouetteAfter != null) {
                throw new IllegalArgumentException("--input-size and --silhouette-after apply to catalog models, not to '" + model + "'");
            }
            dev.silhouette.api.Model any = dev.silhouette.api.Model.load(model, silhouetteOutput);
            graph = any.graph();
            String note = any.metadata().get(dev.silhouette.api.Model.ONNX_NOTE);
            source = note == null ? any.source() : any.source() + "; " + note;
            model = any.name();
        }
        GraphStats stats = GraphStats.of(graph, batch);
        PrintWriter out = spec.commandLine().getOut();
        Graph.Input in = graph.inputs().getFirst();
        List<Integer> inputShape = new java.util.ArrayList<>(List.of(batch));
        for (int d : in.sampleShape().dims()) inputShape.add(d);
        if (json) {
            Output.json(out, new Report(model, source, inputShape, stats.parameters(), stats.macs(), stats.rows()));
            return 0;
        }
        out.printf("%s (%s), input %s%n", model, source, inputShape);
        out.printf("%-28s %-14s %-26s %-20s %12s %16s%n", "layer", "op", "attributes", "output", "parameters", "MACs");
        for (GraphStats.Row r : stats.rows()) {
            out.printf("%-28s %-14s %-26s %-20s %,12d %,16d%n", r.name(), r.op(), r.attributes(), r.output(), r.parameters(), r.macs());
        }
        out.printf("total: %,d parameters, %,d MACs (%.3f G)%n", stats.parameters(), stats.macs(), stats.macs() / 1e9);
        out.flush();
        return 0;
    }

    private int listDevices() {
        CudaDevices.Report r = CudaDevices.report();
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            Output.json(out, r);
            return 0;
        }
        out.printf("CUDA    %s%s%n", r.status(), r.driverCudaVersion() == null ? "" : ", driver supports CUDA " + r.driverCudaVersion());
        for (CudaDevices.Device d : r.devices()) {
            out.printf("cuda:%d  %s, compute capability %s, %d SMs, %.1f GiB%n", d.ordinal(), d.name(), d.computeCapability(),
                    d.multiprocessors(), d.memoryBytes() / (double) (1L << 30));
        }
        out.printf("cuDNN   %s%ncuBLAS  %s%n", r.cudnn(), r.cublas());
        out.flush();
        return 0;
    }

    static final class ModelNames implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return new java.util.TreeSet<>(Models.CATALOG.keySet()).iterator();
        }
    }
}
