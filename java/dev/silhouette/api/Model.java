package dev.silhouette.api;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.Backends;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Passes;
import dev.silhouette.onnx.OnnxImporter;
import dev.silhouette.pipeline.PlanRewrite;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlanJson;
import dev.silhouette.tensor.Shape;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A model ready to be prepared for execution: a graph with its weights, the names its outputs go by,
 * and the quantization plan applied to it, if any. Immutable; {@link #withPlan} and
 * {@link #foldBatchNorm} return new models. Run it through a {@link Session}:
 *
 * <pre>{@code
 * Model model = Model.load("bundled");
 * try (Session session = model.session("cpu")) {
 *     Map<String, Tensor> out = session.run(Map.of("input", Tensor.zeros(4, 1, 28, 28)));
 *     Tensor logits = out.get("fc");                    // 4 x 10
 * }
 * }</pre>
 */
public final class Model {
    /** Metadata key of an ONNX model: what the importer says about its silhouette branch. */
    public static final String ONNX_NOTE = "onnx.silhouette";

    private final String name;
    private final String source;
    private final Graph graph;
    /** Output name as clients see it (ONNX output names for ONNX files) to the graph value holding it, in declaration order. */
    private final Map<String, String> outputNames;
    private final String plan;
    private final Map<String, String> metadata;

    private Model(String name, String source, Graph graph, Map<String, String> outputNames, String plan, Map<String, String> metadata) {
        this.name = name;
        this.source = source;
        this.graph = graph;
        this.outputNames = Collections.unmodifiableMap(new LinkedHashMap<>(outputNames));
        this.plan = plan;
        this.metadata = Map.copyOf(metadata);
    }

    /**
     * Loads a model: a catalog name ({@code resnet20}, {@code fmnist-resnet}, ...: random weights),
     * {@code bundled} (the trained Fashion-MNIST model in the jar), a Silhouette model file (safetensors
     * whose metadata names the architecture) or an ONNX file (by its {@code .onnx} suffix).
     */
    public static Model load(String spec) {
        return load(spec, null);
    }

    /** {@link #load(String)} for a file. */
    public static Model load(Path file) {
        return load(file.toString(), null);
    }

    /**
     * {@link #load(String)}, with {@code silhouetteOutput} naming the ONNX value that holds the silhouette
     * where the branch is not recognised by its structure (null: recognise it; only for ONNX files).
     */
    public static Model load(String spec, String silhouetteOutput) {
        if (!isOnnx(spec)) {
            if (silhouetteOutput != null) throw new IllegalArgumentException("--silhouette-output applies to ONNX models, not to '" + spec + "'");
            ModelLoader.Loaded l = ModelLoader.load(spec);
            return new Model(l.architecture(), l.source(), l.graph(), identity(l.graph(), Map.of()), null, l.metadata());
        }
        OnnxImporter.Imported imported = OnnxImporter.read(Path.of(spec), new OnnxImporter.Options(silhouetteOutput));
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("onnx.producer", imported.producer());
        meta.put("onnx.opset", Integer.toString(imported.opset()));
        meta.put(ONNX_NOTE, imported.note());
        String source = spec + " (ONNX opset " + imported.opset() + (imported.producer().isEmpty() ? "" : ", from " + imported.producer()) + ")";
        return new Model("onnx:" + Path.of(spec).getFileName(), source, imported.graph(), identity(imported.graph(), imported.outputNames()), null, meta);
    }

    /** A model from a graph built or rewritten in Java; its outputs go by their graph names. */
    public static Model of(String name, Graph graph) {
        return new Model(name, "in memory", graph, identity(graph, Map.of()), null, Map.of());
    }

    private static Map<String, String> identity(Graph graph, Map<String, String> named) {
        Map<String, String> m = new LinkedHashMap<>(named);
        for (String o : graph.outputs()) if (!m.containsValue(o)) m.put(o, o);
        return m;
    }

    static boolean isOnnx(String spec) {
        return spec.toLowerCase(Locale.ROOT).endsWith(".onnx");
    }

    /**
     * This model quantized by {@code plan} ({@link PlanRewrite#apply}). Plans written by {@code quantize} and
     * by the main job are made for the inference graph with BatchNorm folded; such a plan folds this
     * model first. A plan made for another model is refused with both fingerprints.
     */
    public Model withPlan(QuantPlan plan) {
        return withPlan(plan, PlanRewrite.Execution.PACKED);
    }

    /**
     * This model quantized by {@code plan} for {@code execution}: PACKED (the default of {@link #withPlan(QuantPlan)})
     * runs its convolutions on integer codes, SIMULATED as dequantized codes through float ops (a check).
     */
    public Model withPlan(QuantPlan plan, PlanRewrite.Execution execution) {
        if (this.plan != null) throw new IllegalArgumentException("model " + name + " is already quantized by plan '" + this.plan + "'; apply plans to the FP32 model");
        Graph target = graph;
        if (!plan.fingerprint().equals(graph.fingerprint())) {
            Graph folded = Passes.foldBatchNorm(graph);
            if (plan.fingerprint().equals(folded.fingerprint())) target = folded;
        }
        return new Model(name, source, PlanRewrite.apply(target, plan, execution), outputNames, plan.label(), metadata);
    }

    /** {@link #withPlan(QuantPlan)} with a plan file ({@code silhouette-plan-1} JSON). */
    public Model withPlan(Path planFile) {
        return withPlan(QuantPlanJson.load(planFile));
    }

    /** The same model with BatchNorm folded into the convolutions: the inference graph the plans are made for. */
    public Model foldBatchNorm() {
        return new Model(name, source, Passes.foldBatchNorm(graph), outputNames, plan, metadata);
    }

    /** Prepares this model on the best usable backend ({@code auto}). */
    public Session session() {
        return session("auto", 0);
    }

    /** Prepares this model on {@code backend} ({@code auto}, {@code cpu} or {@code cuda}), GPU 0. */
    public Session session(String backend) {
        return session(backend, 0);
    }

    /** Prepares this model on {@code backend} and GPU {@code device}; the session owns the backend and closes it. */
    public Session session(String backend, int device) {
        return new Session(this, Backends.create(backend, device));
    }

    /** Prepares this model on an open backend; the session closes it with itself. */
    public Session session(Backend backend) {
        return new Session(this, backend);
    }

    /** The architecture or file the model came from, e.g. {@code fmnist-resnet} or {@code onnx:model.onnx}. */
    public String name() { return name; }

    /** Where the weights came from, for reports. */
    public String source() { return source; }

    /** The graph as it runs (with the plan applied). */
    public Graph graph() { return graph; }

    /** The label of the plan applied, or {@code FP32}. */
    public String plan() { return plan == null ? "FP32" : plan; }

    /** Whether a quantization plan is applied. */
    public boolean quantized() { return plan != null; }

    /** The model file's metadata (ONNX producer and opset for ONNX files). */
    public Map<String, String> metadata() { return metadata; }

    /** Output names as clients use them, to the graph values holding them. */
    Map<String, String> outputNames() { return outputNames; }

    /** The graph's inputs with the batch axis as {@code -1}. */
    public List<TensorInfo> inputs() {
        List<TensorInfo> out = new ArrayList<>();
        for (Graph.Input in : graph.inputs()) out.add(info(in.name(), in.sampleShape()));
        return out;
    }

    /** The outputs by client name, with shapes inferred for a batch and the batch axis as {@code -1}. */
    public List<TensorInfo> outputs() {
        Map<String, Shape> shapes = graph.inferShapes(1);
        List<TensorInfo> out = new ArrayList<>();
        for (Map.Entry<String, String> e : outputNames.entrySet()) {
            Shape s = shapes.get(e.getValue());
            int[] sample = new int[s.rank() - 1];
            for (int d = 1; d < s.rank(); d++) sample[d - 1] = s.dim(d);
            out.add(info(e.getKey(), Shape.of(sample)));
        }
        return out;
    }

    private static TensorInfo info(String name, Shape sample) {
        List<Long> shape = new ArrayList<>();
        shape.add(TensorInfo.BATCH);
        for (int d : sample.dims()) shape.add((long) d);
        return new TensorInfo(name, TensorInfo.FP32, shape);
    }

    @Override
    public String toString() {
        return name + " (" + plan() + ")";
    }
}
