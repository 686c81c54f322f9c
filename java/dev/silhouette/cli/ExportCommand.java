package dev.silhouette.cli;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Models;
import dev.silhouette.onnx.OnnxExporter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "export", mixinStandardHelpOptions = true,
        description = "Writes a model (catalog name, model file or bundled) as an ONNX file that other runtimes load.")
final class ExportCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", defaultValue = "bundled", description = "catalog name, model file or 'bundled' (default)")
    String model;

    @Option(names = "--output", required = true, description = "the .onnx file to write (written atomically)")
    Path output;

    @Option(names = "--opset", defaultValue = "17", description = "ONNX opset, 13 to 21 (default: ${DEFAULT-VALUE})")
    int opset;

    @Option(names = "--input-size", description = "square input size in pixels for catalog models (default: the model's own)")
    Integer inputSize;

    @Option(names = "--plan", description = "write the model quantized by this plan as standard QDQ ONNX (QuantizeLinear/DequantizeLinear, "
            + "8-bit codes, int8 weights per channel), the form TensorRT and ONNX Runtime run; region and DRQ layers are refused")
    Path plan;

    @Option(names = "--external-data", description = "store the weights in OUTPUT.data beside the model")
    boolean externalData;

    @Override
    public Integer call() {
        Graph graph;
        if (inputSize != null && plan != null) throw new IllegalArgumentException("--input-size builds a fresh catalog model; a --plan belongs to the model it was made for");
        if (inputSize != null) {
            if (!Models.CATALOG.containsKey(model)) throw new IllegalArgumentException("--input-size applies to catalog models, not to '" + model + "'");
            Models.Options d = Models.defaults(model);
            graph = Models.build(model, new Models.Options(d.numClasses(), inputSize, d.silhouetteAfter(), 0));
        } else if (plan != null) {
            // The packed lowering holds each layer's codes and grid: exactly what QDQ spells out.
            graph = dev.silhouette.api.Model.load(model).withPlan(plan).graph();
        } else {
            graph = dev.silhouette.api.Model.load(model).graph();
        }
        if (plan != null && opset < 13) throw new IllegalArgumentException("--opset " + opset + ": per-channel DequantizeLinear needs opset 13 or later");
        OnnxExporter.write(graph, opset, output, externalData);
        spec.commandLine().getOut().printf("wrote %s (ONNX opset %d, %d nodes, %d initializers%s)%n", output, opset, graph.nodes().size(),
                graph.parameters().size(), externalData ? ", weights in " + output.getFileName() + ".data" : "");
        spec.commandLine().getOut().flush();
        return 0;
    }
}
