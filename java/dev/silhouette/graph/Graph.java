package dev.silhouette.graph;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An immutable dataflow graph: named inputs (per-sample shapes, batch size free), nodes in an order
 * where every input is defined before use (so the graph is acyclic by construction), named outputs, and
 * the parameter tensors of all nodes. The constructor validates all of it.
 */
public final class Graph {

    /** A graph input; {@code sampleShape} excludes the batch axis (C, H, W for images). */
    public record Input(String name, Shape sampleShape) {}

    private final List<Input> inputs;
    private final List<Node> nodes;
    private final List<String> outputs;
    private final Map<String, Tensor> parameters;
    private final Map<String, Node> nodesByName;

    public Graph(List<Input> inputs, List<Node> nodes, List<String> outputs, Map<String, Tensor> parameters) {
        this.inputs = List.copyOf(inputs);
        this.nodes = List.copyOf(nodes);
        this.outputs = List.copyOf(outputs);
        this.parameters = Collections.unmodifiableMap(new LinkedHashMap<>(parameters));
        this.nodesByName = new HashMap<>();
        validate();
    }

    private void validate() {
        Set<String> defined = new HashSet<>();
        for (Input in : inputs) {
            if (!defined.add(in.name())) throw new GraphException("graph input '" + in.name() + "' is declared twice");
        }
        Set<String> expectedParameters = new HashSet<>();
        for (Node node : nodes) {
            if (defined.contains(node.name())) throw new GraphException("node '" + node.name() + "' reuses a name already defined");
            int arity = node.op().arity();
            if (arity >= 0 && node.inputs().size() != arity) {
                throw new GraphException("node '" + node.name() + "' (" + opName(node.op()) + ") takes " + arity
                        + " input(s), got " + node.inputs().size() + " " + node.inputs());
            }
            if (node.inputs().isEmpty()) throw new GraphException("node '" + node.name() + "' has no inputs");
            for (String in : node.inputs()) {
                if (!defined.contains(in)) {
                    throw new GraphException("node '" + node.name() + "' reads '" + in
                            + "', which is not a graph input or an earlier node (unknown name or a cycle)");
                }
            }
            for (Op.Parameter p : node.op().parameters()) {
                String key = node.parameterName(p);
                expectedParameters.add(key);
                Tensor t = parameters.get(key);
                if (t == null) throw new GraphException("node '" + node.name() + "' needs parameter '" + key + "' of shape " + Arrays.toString(p.dims()) + ", which is missing");
                if (!t.shape().equals(Shape.of(p.dims()))) {
                    throw new GraphException("parameter '" + key + "' has shape " + t.shape() + " but node '" + node.name()
                            + "' (" + opName(node.op()) + ") needs " + Arrays.toString(p.dims()));
                }
            }
            defined.add(node.name());
            nodesByName.put(node.name(), node);
        }
        for (String key : parameters.keySet()) {
            if (!expectedParameters.contains(key)) throw new GraphException("parameter '" + key + "' belongs to no node of the graph");
        }
        if (outputs.isEmpty()) throw new GraphException("graph has no outputs");
        for (String out : outputs) {
            if (!defined.contains(out)) throw new GraphException("graph output '" + out + "' is not defined by any node or input");
        }
    }

    public List<Input> inputs() { return inputs; }
    public List<Node> nodes() { return nodes; }
    public List<String> outputs() { return outputs; }
    public Map<String, Tensor> parameters() { return parameters; }

    public Node node(String name) {
        Node n = nodesByName.get(name);
        if (n == null) throw new GraphException("no node named '" + name + "'");
        return n;
    }

    public Tensor parameter(Node node, String suffix) {
        return parameters.get(node.name() + "." + suffix);
    }

    /** The same structure with other parameter values, validated name by name and shape by shape. */
    public Graph withParameters(Map<String, Tensor> newParameters) {
        return new Graph(inputs, nodes, outputs, newParameters);
    }

    public Graph withOutputs(List<String> newOutputs) {
        return new Graph(inputs, nodes, newOutputs, parameters);
    }

    /** Shapes of every value for a batch of {@code batch} samples, checking every node. */
    public Map<String, Shape> inferShapes(int batch) {
        Map<String, Shape> shapes = new LinkedHashMap<>();
        for (Input in : inputs) {
            int[] sample = in.sampleShape().dims();
            int[] dims = new int[sample.length + 1];
            dims[0] = batch;
            System.arraycopy(sample, 0, dims, 1, sample.length);
            shapes.put(in.name(), Shape.of(dims));
        }
        for (Node node : nodes) {
            List<Shape> in = new ArrayList<>(node.inputs().size());
            for (String name : node.inputs()) in.add(shapes.get(name));
            shapes.put(node.name(), ShapeInference.infer(node, in));
        }
        return shapes;
    }

    /** Short op name for messages and listings, e.g. "Conv2d". */
    public static String opName(Op op) {
        return op.getClass().getSimpleName();
    }

    /** What plans and calibration statistics are keyed to: SHA-256 over the graph's inputs, nodes (name, op, inputs), outputs and every parameter's name, shape and bits. */
    public String fingerprint() {
        try {
            java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
            StringBuilder s = new StringBuilder();
            for (Graph.Input in : inputs) s.append("input ").append(in.name()).append(in.sampleShape()).append('\n');
            for (Node node : nodes) s.append("node ").append(node.name()).append(' ').append(node.op()).append(node.inputs()).append('\n');
            s.append("outputs ").append(outputs).append('\n');
            md.update(s.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            for (Map.Entry<String, Tensor> p : parameters.entrySet()) {
                md.update((p.getKey() + p.getValue().shape()).getBytes(java.nio.charset.StandardCharsets.UTF_8));
                java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * p.getValue().size());
                b.asFloatBuffer().put(p.getValue().data());
                md.update(b.array());
            }
            return java.util.HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

}
