package dev.silhouette.cli;

import dev.silhouette.graph.ModelLoader;
import dev.silhouette.onnx.OnnxImporter;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The --model argument of every command: an ONNX file (by its .onnx suffix) through the importer,
 * anything else (catalog name, Silhouette model file, bundled) through {@link ModelLoader}. Lives in
 * cli because the importer sits beside graph, not below it.
 */
final class AnyModel {
    private AnyModel() {}

    /** A loaded model plus, for ONNX files, the import details (null otherwise). */
    record Model(ModelLoader.Loaded loaded, OnnxImporter.Imported onnx) {
        /** Output name as the user sees it (ONNX output names for ONNX files) to the graph value holding it. */
        Map<String, String> outputNames() {
            Map<String, String> m = new LinkedHashMap<>();
            if (onnx != null) m.putAll(onnx.outputNames());
            for (String o : loaded.graph().outputs()) if (!m.containsValue(o)) m.put(o, o);
            return m;
        }
    }

    static boolean isOnnx(String spec) {
        return spec.toLowerCase(java.util.Locale.ROOT).endsWith(".onnx");
    }

    static Model load(String spec, String silhouetteOutput) {
        if (!isOnnx(spec)) {
            if (silhouetteOutput != null) throw new IllegalArgumentException("--silhouette-output applies to ONNX models, not to '" + spec + "'");
            return new Model(ModelLoader.load(spec), null);
        }
        OnnxImporter.Imported imported = OnnxImporter.read(Path.of(spec), new OnnxImporter.Options(silhouetteOutput));
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("onnx.producer", imported.producer());
        meta.put("onnx.opset", Integer.toString(imported.opset()));
        meta.put("silhouette", imported.note());
        String source = spec + " (ONNX opset " + imported.opset() + (imported.producer().isEmpty() ? "" : ", from " + imported.producer()) + ")";
        return new Model(new ModelLoader.Loaded("onnx:" + Path.of(spec).getFileName(), source, imported.graph(), meta), imported);
    }

    static ModelLoader.Loaded load(String spec) {
        return load(spec, null).loaded();
    }
}
