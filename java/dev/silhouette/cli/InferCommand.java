package dev.silhouette.cli;

import dev.silhouette.backend.Backend;
import dev.silhouette.graph.Graph;
import dev.silhouette.io.SafeTensors;
import dev.silhouette.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "infer", mixinStandardHelpOptions = true,
        description = "Runs a model (ONNX file, model file or catalog name) on tensors from a safetensors file, "
                + "named by graph input, and writes every graph output, by name, to a safetensors file.")
final class InferCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, description = "an .onnx file, a Silhouette model file or a catalog name")
    String model;

    @Option(names = "--input", required = true, description = "safetensors file holding one N x sample tensor per graph input")
    Path input;

    @Option(names = "--output", required = true, description = "safetensors file to write the outputs to (written atomically)")
    Path output;

    @Mixin
    BackendOptions backendOptions;

    @Option(names = "--silhouette-output", description = "ONNX value holding the silhouette, when the branch is not recognised by its structure")
    String silhouetteOutput;

    @Override
    public Integer call() {
        if (!Files.isRegularFile(input)) throw new IllegalArgumentException("--input " + input + " is not a file");
        AnyModel.Model m = AnyModel.load(model, silhouetteOutput);
        Graph graph = m.loaded().graph();
        Map<String, Tensor> tensors = SafeTensors.read(input);
        Map<String, Tensor> feed = new LinkedHashMap<>();
        List<String> missing = new ArrayList<>();
        for (Graph.Input in : graph.inputs()) {
            Tensor t = tensors.get(in.name());
            if (t == null) missing.add(in.name() + " (N x " + in.sampleShape() + ")");
            else feed.put(in.name(), t);
        }
        if (!missing.isEmpty()) throw new IllegalArgumentException(input + " lacks graph input(s) " + missing + "; it holds " + tensors.keySet());
        for (String name : tensors.keySet()) {
            if (!feed.containsKey(name)) {
                throw new IllegalArgumentException(input + " holds '" + name + "', which is not an input of the model; inputs are "
                        + graph.inputs().stream().map(Graph.Input::name).toList());
            }
        }
        Map<String, String> names = m.outputNames();
        Map<String, Tensor> results = new LinkedHashMap<>();
        String backendUsed;
        try (Backend backend = backendOptions.open()) {
            backendUsed = backend.name();
            Map<String, Tensor> out = backend.run(graph, feed, List.copyOf(new java.util.LinkedHashSet<>(names.values())));
            for (Map.Entry<String, String> e : names.entrySet()) results.put(e.getKey(), out.get(e.getValue()));
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("silhouette.model", m.loaded().architecture());
        metadata.put("silhouette.backend", backendUsed);
        SafeTensors.write(output, results, metadata);
        PrintWriter pw = spec.commandLine().getOut();
        pw.printf("%s on %s: wrote %d output(s) to %s%n", m.loaded().architecture(), backendUsed, results.size(), output);
        for (Map.Entry<String, Tensor> e : results.entrySet()) pw.printf("  %-24s %s%n", e.getKey(), e.getValue().shape());
        pw.flush();
        return 0;
    }
}
