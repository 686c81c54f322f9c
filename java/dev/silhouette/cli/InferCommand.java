package dev.silhouette.cli;

import dev.silhouette.api.Model;
import dev.silhouette.api.Session;
import dev.silhouette.api.TensorInfo;
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

    @Option(names = "--plan", description = "run the model quantized by this plan (silhouette-plan-1 JSON, from quantize or the main job's OUT/plans/)")
    Path plan;

    @Option(names = "--silhouette-output", description = "ONNX value holding the silhouette, when the branch is not recognised by its structure")
    String silhouetteOutput;

    @Override
    public Integer call() {
        if (!Files.isRegularFile(input)) throw new IllegalArgumentException("--input " + input + " is not a file");
        Model m = Model.load(model, silhouetteOutput);
        if (plan != null) m = m.withPlan(plan);
        Map<String, Tensor> tensors = SafeTensors.read(input);
        Map<String, Tensor> feed = new LinkedHashMap<>();
        List<String> missing = new ArrayList<>();
        for (TensorInfo in : m.inputs()) {
            Tensor t = tensors.get(in.name());
            if (t == null) missing.add(in.name() + " (" + in.shape() + ")");
            else feed.put(in.name(), t);
        }
        if (!missing.isEmpty()) throw new IllegalArgumentException(input + " lacks graph input(s) " + missing + "; it holds " + tensors.keySet());
        for (String name : tensors.keySet()) {
            if (!feed.containsKey(name)) {
                throw new IllegalArgumentException(input + " holds '" + name + "', which is not an input of the model; inputs are "
                        + m.inputs().stream().map(TensorInfo::name).toList());
            }
        }
        Map<String, Tensor> results;
        String backendUsed;
        try (Session session = m.session(backendOptions.open())) {
            backendUsed = session.backend();
            results = session.run(feed);
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("silhouette.model", m.name());
        metadata.put("silhouette.plan", m.plan());
        metadata.put("silhouette.backend", backendUsed);
        SafeTensors.write(output, results, metadata);
        PrintWriter pw = spec.commandLine().getOut();
        pw.printf("%s (%s) on %s: wrote %d output(s) to %s%n", m.name(), m.plan(), backendUsed, results.size(), output);
        for (Map.Entry<String, Tensor> e : results.entrySet()) pw.printf("  %-24s %s%n", e.getKey(), e.getValue().shape());
        pw.flush();
        return 0;
    }
}
