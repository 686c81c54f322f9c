package dev.silhouette.fuzz;

import dev.silhouette.onnx.OnnxImporter;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * An ONNX model whose initializers live in external data: the input is a 2-byte little-endian length L,
 * L bytes written as {@value #DATA} beside the model, then the model bytes (locations, offsets and
 * lengths all fuzzed).
 */
public final class OnnxExternalDataFuzz {
    static final String DATA = "model.onnx.data", SOURCE = "fuzzed-external.onnx";

    private OnnxExternalDataFuzz() {}

    public static void fuzzerInitialize() {
        Findings.warmUp(OnnxExternalDataFuzz::fuzzerTestOneInput, "OnnxExternalDataFuzz");
    }

    public static void fuzzerTestOneInput(byte[] data) {
        int length = data.length < 2 ? 0 : Math.min(data.length - 2, (data[0] & 0xff) | (data[1] & 0xff) << 8);
        int from = Math.min(2, data.length);
        Path weights = Findings.write(DATA, Arrays.copyOfRange(data, from, from + length));
        try {
            OnnxImporter.read(Arrays.copyOfRange(data, from + length, data.length), weights.getParent(), SOURCE, OnnxImporter.Options.defaults());
        } catch (RuntimeException e) {
            Findings.refusal(e, SOURCE);
        }
    }
}
