package dev.silhouette.fuzz;

import dev.silhouette.onnx.OnnxImporter;

/** ONNX model bytes, imported from memory (no external data): protobuf parsing, validation, constant folding, conversion. */
public final class OnnxModelFuzz {
    static final String SOURCE = "fuzzed.onnx";

    private OnnxModelFuzz() {}

    public static void fuzzerInitialize() {
        Findings.warmUp(OnnxModelFuzz::fuzzerTestOneInput, "OnnxModelFuzz");
    }

    public static void fuzzerTestOneInput(byte[] data) {
        try {
            OnnxImporter.read(data, null, SOURCE, OnnxImporter.Options.defaults());
        } catch (RuntimeException e) {
            Findings.refusal(e, SOURCE);
        }
    }
}
