package dev.silhouette.quant;

import dev.silhouette.backend.Backend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * Runs a {@link QuantizedModel} in fake-quantized form for accuracy studies: weights replaced by their
 * quantized values, and each quantized activation replaced by its dequantized codes right after it is
 * computed, so every reader sees what integer hardware would store. The graph runs node by node, each
 * node as a one-node graph on the given backend; this keeps the graph IR and every backend free of a
 * fake-quantization op. Histograms of the activation codes are kept for their entropy.
 */
public final class FakeQuantRunner {
    private final Backend backend;
    private final Graph graph;
    private final List<Graph> steps = new ArrayList<>();
    private final Map<String, QuantizedModel.Activation> activations = new LinkedHashMap<>();
    private final Map<String, long[]> codeCounts = new LinkedHashMap<>();

    public FakeQuantRunner(Backend backend, Graph folded, QuantizedModel model) {
        this.backend = backend;
        this.graph = model.applyWeights(folded);
        for (QuantizedModel.Activation a : model.activations()) {
            activations.put(a.value(), a);
            codeCounts.put(a.value(), new long[1 << (a.channelBits() == null ? a.bits() : Scheme.MAX_BITS)]);
        }
        Map<String, Shape> shapes = graph.inferShapes(1);
        for (Node node : graph.nodes()) {
            List<Graph.Input> inputs = new ArrayList<>();
            for (String in : new LinkedHashSet<>(node.inputs())) {
                int[] dims = shapes.get(in).dims();
                inputs.add(new Graph.Input(in, Shape.of(java.util.Arrays.copyOfRange(dims, 1, dims.length))));
            }
            Map<String, Tensor> params = new LinkedHashMap<>();
            for (var p : node.op().parameters()) params.put(node.parameterName(p), graph.parameters().get(node.parameterName(p)));
            steps.add(new Graph(inputs, List.of(node), List.of(node.name()), params));
        }
    }

    /** Runs a batch and returns the requested values (after their own fake quantization, if any). */
    public Map<String, Tensor> run(Tensor input, List<String> requested) {
        Map<String, Tensor> values = new HashMap<>();
        String inputName = graph.inputs().getFirst().name();
        values.put(inputName, fakeQuantize(inputName, input));
        Map<String, Integer> lastUse = new HashMap<>();
        for (int i = 0; i < steps.size(); i++) for (String in : graph.nodes().get(i).inputs()) lastUse.put(in, i);
        for (int i = 0; i < steps.size(); i++) {
            Graph step = steps.get(i);
            Node node = graph.nodes().get(i);
            Map<String, Tensor> args = new HashMap<>();
            for (Graph.Input in : step.inputs()) args.put(in.name(), values.get(in.name()));
            Tensor out = backend.run(step, args, List.of(node.name())).get(node.name());
            values.put(node.name(), fakeQuantize(node.name(), out));
            for (String in : node.inputs()) if (lastUse.get(in) == i && !requested.contains(in)) values.remove(in);
        }
        Map<String, Tensor> result = new LinkedHashMap<>();
        for (String r : requested) {
            Tensor t = values.get(r);
            if (t == null) throw new IllegalArgumentException("'" + r + "' is not a value of the graph");
            result.put(r, t);
        }
        return result;
    }

    private Tensor fakeQuantize(String value, Tensor t) {
        QuantizedModel.Activation a = activations.get(value);
        if (a == null) return t;
        long[] counts = codeCounts.get(value);
        if (a.channelBits() == null) {
            QuantizedTensor q = Quantizers.affine(t, a.bits(), new float[] {a.lo()}, new float[] {a.hi()});
            count(counts, q.codes());
            return q.dequantize();
        }
        // Per channel (axis 1 of NCHW): each (image, channel) plane on its own grid.
        Shape s = t.shape();
        if (s.rank() != 4 || s.c() != a.channelBits().length) {
            throw new IllegalArgumentException("value '" + value + "' of shape " + s + " does not have the " + a.channelBits().length + " channels its quantization was made for");
        }
        int plane = s.h() * s.w();
        float[] out = new float[t.size()];
        for (int n = 0; n < s.n(); n++) {
            for (int c = 0; c < s.c(); c++) {
                int from = (n * s.c() + c) * plane;
                Tensor slice = new Tensor(Shape.of(plane), java.util.Arrays.copyOfRange(t.data(), from, from + plane));
                QuantizedTensor q = Quantizers.affine(slice, a.channelBits()[c], new float[] {a.channelLo()[c]}, new float[] {a.channelHi()[c]});
                count(counts, q.codes());
                System.arraycopy(q.dequantize().data(), 0, out, from, plane);
            }
        }
        return new Tensor(s, out);
    }

    private static void count(long[] counts, int[] codes) {
        synchronized (counts) {
            for (int c : codes) counts[c]++;
        }
    }

    /** Entropy of each quantized activation's codes over everything run so far. */
    public Map<String, Entropy.Report> activationEntropy() {
        Map<String, Entropy.Report> out = new LinkedHashMap<>();
        codeCounts.forEach((v, counts) -> {
            if (java.util.Arrays.stream(counts).sum() > 0) out.put(v, Entropy.ofCounts(counts));
        });
        return out;
    }
}
