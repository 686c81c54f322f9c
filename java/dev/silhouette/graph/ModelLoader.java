package dev.silhouette.graph;

import dev.silhouette.io.Limit;
import dev.silhouette.io.SafeTensors;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Turns a model argument into a graph with weights: a catalog name (random weights from a seed), a
 * Silhouette model file (safetensors whose metadata names the architecture), or the bundled default.
 */
public final class ModelLoader {
    /** The main job's default: the small ResNet with its silhouette branch, trained on Fashion-MNIST. */
    public static final String BUNDLED = "bundled";
    /** The 60x60 cluttered Fashion-MNIST model ({@code silhouette data cluttered}, seed 0, 4 pieces), trained the same way. */
    public static final String BUNDLED_CLUTTERED = "bundled-cluttered";
    /**
     * Every bundled model by name: the two trained models and, for the main job's headline, each fine-tuned for one row
     * (seed 0 of its study: docs/results/studies.md for Fashion-MNIST, docs/results/cluttered.md for the cluttered set).
     */
    public static final Map<String, String> BUNDLED_MODELS = bundled();

    private static Map<String, String> bundled() {
        Map<String, String> m = new java.util.LinkedHashMap<>();
        String dir = "/dev/silhouette/models/";
        m.put(BUNDLED, dir + "fmnist-resnet.safetensors");
        m.put(BUNDLED + "-ft-region", dir + "fmnist-resnet-ft-region-2-50-3-30-4-20.safetensors");
        m.put(BUNDLED + "-ft-w4a3", dir + "fmnist-resnet-ft-w4a3.safetensors");
        m.put(BUNDLED + "-ft-w4a2", dir + "fmnist-resnet-ft-w4a2.safetensors");
        m.put(BUNDLED_CLUTTERED, dir + "cluttered-resnet.safetensors");
        m.put(BUNDLED_CLUTTERED + "-ft-region", dir + "cluttered-resnet-ft-region-2-50-3-30-4-20.safetensors");
        m.put(BUNDLED_CLUTTERED + "-ft-w4a3", dir + "cluttered-resnet-ft-w4a3.safetensors");
        m.put(BUNDLED_CLUTTERED + "-ft-w4a2", dir + "cluttered-resnet-ft-w4a2.safetensors");
        return java.util.Collections.unmodifiableMap(m);
    }

    /** Metadata keys of a model file. */
    public static final String META_MODEL = "silhouette.model";
    public static final String META_SILHOUETTE_AFTER = "silhouette.silhouette_after";
    public static final String META_CLASSES = "silhouette.num_classes";
    public static final String META_INPUT_SIZE = "silhouette.input_size";
    /** The silhouette branch's form ({@link Models#parseBranch}); absent means the 1x1 branch. */
    public static final String META_BRANCH = "silhouette.branch";

    private ModelLoader() {}

    public record Loaded(String architecture, String source, Graph graph, Map<String, String> metadata) {}

    /** Whether {@code spec} names a model that needs no file: a bundled model or a catalog architecture. */
    public static boolean isBuiltIn(String spec) {
        return BUNDLED_MODELS.containsKey(spec) || Models.CATALOG.containsKey(spec);
    }

    public static Loaded load(String spec) {
        if (BUNDLED_MODELS.containsKey(spec)) return fromResource(BUNDLED_MODELS.get(spec));
        if (Models.CATALOG.containsKey(spec)) {
            return new Loaded(spec, "random weights (seed 0)", Models.build(spec, Models.defaults(spec)), Map.of());
        }
        Path path = Path.of(spec);
        if (!Files.exists(path)) {
            throw new IllegalArgumentException("model '" + spec + "' is neither a file nor a known model; known models: "
                    + String.join(", ", new TreeSet<>(Models.CATALOG.keySet())) + ", " + String.join(", ", BUNDLED_MODELS.keySet()));
        }
        return fromContents(path.toString(), SafeTensors.readMetadata(path), SafeTensors.read(path));
    }

    /** Loads weights (e.g. a PyTorch state dict saved as safetensors) into a catalog architecture. */
    public static Loaded loadWeights(String architecture, Models.Options options, Path weights) {
        Graph graph = Models.build(architecture, options);
        return new Loaded(architecture, weights.toString(), withWeights(graph, SafeTensors.read(weights), weights.toString()),
                SafeTensors.readMetadata(weights));
    }

    private static Loaded fromResource(String resource) {
        try (InputStream in = ModelLoader.class.getResourceAsStream(resource)) {
            if (in == null) throw new IllegalStateException("bundled model " + resource + " is missing from the jar");
            Path tmp = Files.createTempFile("silhouette-model", ".safetensors");
            try {
                Files.copy(in, tmp, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                Loaded l = fromContents(tmp.toString(), SafeTensors.readMetadata(tmp), SafeTensors.read(tmp));
                return new Loaded(l.architecture(), "bundled (" + resource + ")", l.graph(), l.metadata());
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read bundled model " + resource, e);
        }
    }

    /** A model from the metadata and tensors of a model file ({@code source} names it in errors). */
    public static Loaded fromContents(String source, Map<String, String> meta, Map<String, Tensor> tensors) {
        String arch = meta.get(META_MODEL);
        if (arch == null) {
            throw new IllegalArgumentException("model file " + source + " has no '" + META_MODEL + "' metadata naming its architecture; "
                    + "load plain weights with --arch NAME --weights FILE");
        }
        Models.Options d;
        try {
            d = Models.defaults(arch);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("model file " + source + ": metadata '" + META_MODEL + "': " + e.getMessage(), e);
        }
        int classes = intMeta(meta, META_CLASSES, d.numClasses(), source, Limit.MODEL_CLASSES);
        // The architecture is built (and its parameters allocated) before the file's tensors are matched to
        // it, so the classifier's declared size is checked against the tensor the file really holds first.
        Tensor classifier = tensors.get(Models.LOGITS + ".weight");
        if (classifier != null && classifier.shape().rank() == 2 && classifier.shape().dim(0) != classes) {
            throw new GraphException("model file " + source + ": metadata '" + META_CLASSES + "' = " + classes + " but its classifier "
                    + Models.LOGITS + ".weight has " + classifier.shape().dim(0) + " rows");
        }
        int inputSize = intMeta(meta, META_INPUT_SIZE, d.inputSize(), source, Limit.IMAGE_SIDE);
        Graph graph;
        try {
            graph = Models.build(arch, new Models.Options(classes, inputSize, meta.getOrDefault(META_SILHOUETTE_AFTER, d.silhouetteAfter()), 0,
                    Models.parseBranch(meta.getOrDefault(META_BRANCH, "1x1"))));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("model file " + source + ": its metadata describes no model Silhouette builds: " + e.getMessage(), e);
        }
        return new Loaded(arch, source, withWeights(graph, tensors, source), meta);
    }

    private static int intMeta(Map<String, String> meta, String key, int fallback, String path, Limit limit) {
        String v = meta.get(key);
        if (v == null) return fallback;
        int value;
        try {
            value = Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("model file " + path + ": metadata '" + key + "' = '" + v + "' is not an integer");
        }
        if (!limit.allows(value)) throw new IllegalArgumentException(limit.refusal("model file " + path + ": metadata '" + key + "' declares", value));
        return value;
    }

    /**
     * The graph with every parameter taken from {@code tensors}. Names must match exactly; PyTorch's
     * num_batches_tracked counters are ignored (inference does not use them).
     */
    public static Graph withWeights(Graph graph, Map<String, Tensor> tensors, String source) {
        Map<String, Tensor> params = new LinkedHashMap<>();
        List<String> missing = new ArrayList<>(), unexpected = new ArrayList<>();
        for (String name : graph.parameters().keySet()) {
            Tensor t = tensors.get(name);
            if (t == null) missing.add(name);
            else if (!t.shape().equals(graph.parameters().get(name).shape())) {
                throw new GraphException(source + ": tensor '" + name + "' has shape " + t.shape() + ", the model needs "
                        + graph.parameters().get(name).shape());
            } else params.put(name, t);
        }
        for (String name : tensors.keySet()) {
            if (!graph.parameters().containsKey(name) && !name.endsWith(".num_batches_tracked")) unexpected.add(name);
        }
        if (!missing.isEmpty() || !unexpected.isEmpty()) {
            throw new GraphException(source + " does not fit the model: " + (missing.isEmpty() ? "" : "missing " + summary(missing))
                    + (missing.isEmpty() || unexpected.isEmpty() ? "" : "; ") + (unexpected.isEmpty() ? "" : "unexpected " + summary(unexpected)));
        }
        return graph.withParameters(params);
    }

    private static String summary(List<String> names) {
        return names.size() <= 8 ? names.toString() : names.subList(0, 8) + " and " + (names.size() - 8) + " more";
    }
}
