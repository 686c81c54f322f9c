package dev.silhouette.backend;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphException;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.HashMap;
import java.util.Map;

/** Input checking shared by every backend, so all of them refuse the same bad requests the same way. */
public final class Inputs {
    private Inputs() {}

    /**
     * Checks that every graph input is given once with its declared per-sample shape and that all share
     * one batch size; returns the batch size.
     */
    public static int bind(Graph graph, Map<String, Tensor> inputs) {
        Map<String, Tensor> bound = new HashMap<>();
        int batch = -1;
        for (Graph.Input in : graph.inputs()) {
            Tensor t = inputs.get(in.name());
            if (t == null) throw new GraphException("graph input '" + in.name() + "' was not given; inputs given: " + inputs.keySet());
            Shape s = t.shape();
            int[] sample = in.sampleShape().dims();
            boolean ok = s.rank() == sample.length + 1;
            for (int d = 0; ok && d < sample.length; d++) ok = s.dim(d + 1) == sample[d];
            if (!ok) throw new GraphException("graph input '" + in.name() + "' has shape " + s + ", expected N x " + in.sampleShape());
            if (s.dim(0) < 1) throw new GraphException("graph input '" + in.name() + "' has an empty batch");
            if (batch >= 0 && s.dim(0) != batch) throw new GraphException("graph inputs disagree on the batch size: " + s.dim(0) + " vs " + batch);
            batch = s.dim(0);
            bound.put(in.name(), t);
        }
        for (String name : inputs.keySet()) {
            if (!bound.containsKey(name)) {
                throw new GraphException("'" + name + "' is not an input of the graph; inputs are " + graph.inputs().stream().map(Graph.Input::name).toList());
            }
        }
        return batch;
    }

    /** Checks that every requested value exists in the graph. */
    public static void checkRequested(Graph graph, Iterable<String> requested) {
        java.util.Set<String> names = new java.util.HashSet<>();
        graph.inputs().forEach(i -> names.add(i.name()));
        graph.nodes().forEach(n -> names.add(n.name()));
        for (String r : requested) {
            if (!names.contains(r)) throw new GraphException("requested value '" + r + "' is not a node or input of the graph");
        }
    }
}
