package dev.silhouette.fuzz;

import dev.silhouette.graph.ModelLoader;
import dev.silhouette.io.SafeTensors;
import dev.silhouette.tensor.Tensor;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Model-file metadata (architecture, classes, input size, branch place and form) against the bundled
 * model's real tensors: the input is key=value lines; a line "-NAME" drops that tensor from the file.
 */
public final class ModelMetadataFuzz {
    static final String SOURCE = "fuzzed-model.safetensors";
    static final Map<String, Tensor> TENSORS = bundledTensors();

    private ModelMetadataFuzz() {}

    public static void fuzzerInitialize() {
        Findings.warmUp(ModelMetadataFuzz::fuzzerTestOneInput, "ModelMetadataFuzz");
    }

    public static void fuzzerTestOneInput(byte[] data) {
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, Tensor> tensors = new LinkedHashMap<>(TENSORS);
        for (String line : new String(data, StandardCharsets.UTF_8).split("\n")) {
            int eq = line.indexOf('=');
            if (line.startsWith("-")) tensors.remove(line.substring(1));
            else if (eq >= 0) metadata.put(line.substring(0, eq), line.substring(eq + 1));
        }
        try {
            ModelLoader.fromContents(SOURCE, metadata, tensors);
        } catch (RuntimeException e) {
            Findings.refusal(e, SOURCE);
        }
    }

    private static Map<String, Tensor> bundledTensors() {
        Path copy = Findings.scratch().resolve("bundled.safetensors");
        try (var in = ModelLoader.class.getResourceAsStream("/dev/silhouette/models/fmnist-resnet.safetensors")) {
            java.nio.file.Files.copy(in, copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        copy.toFile().deleteOnExit();
        return SafeTensors.read(copy);
    }
}
