package dev.silhouette.backend;

import dev.silhouette.graph.Graph;
import dev.silhouette.tensor.Tensor;

import java.util.List;
import java.util.Map;

/**
 * Runs graphs. The CPU backend is the specification; every other backend must match it (bit-exactly
 * on integer paths, within named tolerances on float paths). Inputs and results are host tensors; a
 * device backend uploads once and downloads once per call.
 */
public interface Backend extends AutoCloseable {

    /** Short name used on the command line and in reports, e.g. "cpu" or "cuda:0". */
    String name();

    /**
     * Runs {@code graph} on a batch. {@code inputs} maps every graph input name to an N x sample-shape
     * tensor (one N for all); the result maps each requested value name to its tensor.
     */
    Map<String, Tensor> run(Graph graph, Map<String, Tensor> inputs, List<String> requested);

    /** Runs the graph and returns its declared outputs. */
    default Map<String, Tensor> run(Graph graph, Map<String, Tensor> inputs) {
        return run(graph, inputs, graph.outputs());
    }

    @Override
    default void close() {}
}
