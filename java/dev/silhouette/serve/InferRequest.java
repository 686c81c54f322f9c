package dev.silhouette.serve;

import java.util.List;

/**
 * An inference request as both endpoints decode it: values already float32, shapes checked against the
 * model ({@link ServedModel#checkInput}); {@code outputs} empty asks for every output.
 */
record InferRequest(String model, String version, String id, List<Input> inputs, List<String> outputs) {
    record Input(String name, List<Long> shape, float[] data) {}
}
