package dev.silhouette.graph;

import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds a {@link Graph} node by node, inferring shapes as it goes (so callers need not repeat channel
 * counts) and initialising parameters reproducibly from a seed: convolutions He-normal (fan-out, as
 * torchvision), linear layers uniform(+-1/sqrt(in)), BatchNorm as identity.
 */
public final class GraphBuilder {
    private final long seed;
    private final List<Graph.Input> inputs = new ArrayList<>();
    private final List<Node> nodes = new ArrayList<>();
    private final List<String> outputs = new ArrayList<>();
    private final Map<String, Tensor> parameters = new LinkedHashMap<>();
    private final Map<String, Shape> shapes = new LinkedHashMap<>();

    public GraphBuilder(long seed) {
        this.seed = seed;
    }

    public String input(String name, int... sampleDims) {
        Shape sample = Shape.of(sampleDims);
        inputs.add(new Graph.Input(name, sample));
        int[] dims = new int[sampleDims.length + 1];
        dims[0] = 1;
        System.arraycopy(sampleDims, 0, dims, 1, sampleDims.length);
        shapes.put(name, Shape.of(dims));
        return name;
    }

    /** Shape of a value for batch 1. */
    public Shape shape(String value) {
        Shape s = shapes.get(value);
        if (s == null) throw new GraphException("no value named '" + value + "'");
        return s;
    }

    public String add(String name, Op op, String... in) {
        Node node = new Node(name, op, List.of(in));
        if (shapes.containsKey(name)) throw new GraphException("node '" + name + "' reuses a name already defined");
        List<Shape> inShapes = new ArrayList<>();
        for (String i : in) inShapes.add(shape(i));
        shapes.put(name, ShapeInference.infer(node, inShapes));
        for (Op.Parameter p : op.parameters()) parameters.put(node.parameterName(p), initial(node, p));
        nodes.add(node);
        return name;
    }

    public String conv(String name, String in, int outChannels, Window window, int groups, boolean bias) {
        return add(name, new Op.Conv2d(shape(in).c(), outChannels, window, groups, bias), in);
    }

    public String batchNorm(String name, String in) {
        return add(name, new Op.BatchNorm(shape(in).dim(1), 1e-5f), in);
    }

    public String relu(String name, String in) {
        return add(name, new Op.Relu(), in);
    }

    public String linear(String name, String in, int outFeatures) {
        return add(name, new Op.Linear(shape(in).dim(1), outFeatures, true), in);
    }

    public void output(String value) {
        shape(value);
        outputs.add(value);
    }

    public Graph build() {
        return new Graph(inputs, nodes, outputs, parameters);
    }

    private Tensor initial(Node node, Op.Parameter p) {
        Shape shape = Shape.of(p.dims());
        long s = seed * 0x9E3779B97F4A7C15L + node.parameterName(p).hashCode();
        return switch (node.op()) {
            case Op.Conv2d conv when p.suffix().equals("weight") -> {
                int fanOut = conv.outChannels() / conv.groups() * conv.window().taps();
                yield Tensor.normal(shape, (float) Math.sqrt(2.0 / fanOut), s);
            }
            case Op.Linear lin -> {
                float bound = (float) (1 / Math.sqrt(lin.inFeatures()));
                yield Tensor.uniform(shape, -bound, bound, s);
            }
            case Op.LogitBlend blend -> Tensor.filled(shape, Op.LogitBlend.INITIAL_GATE);
            case Op.BatchNorm bn when p.suffix().equals("weight") || p.suffix().equals("running_var") -> Tensor.filled(shape, 1f);
            default -> Tensor.zeros(shape);
        };
    }
}
