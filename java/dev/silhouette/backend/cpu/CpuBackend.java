package dev.silhouette.backend.cpu;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.Inputs;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.ShapeInference;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The pure-Java backend: the reference every other backend is checked against, and the fallback. A
 * convolution whose only reader is an Add (the residual of a ResNet block) and/or a ReLU runs them in its
 * GEMM's epilogue, in the same order and rounding as the separate ops, so the outputs are the same bits.
 */
public final class CpuBackend implements Backend {

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public Map<String, Tensor> run(Graph graph, Map<String, Tensor> inputs, List<String> requested) {
        Inputs.bind(graph, inputs);
        Inputs.checkRequested(graph, requested);
        Map<String, Tensor> values = new HashMap<>(inputs);
        Set<String> wanted = new HashSet<>(requested);
        Map<String, Integer> lastUse = new HashMap<>();
        Map<String, List<Integer>> readers = new HashMap<>();
        List<Node> nodes = graph.nodes();
        for (int i = 0; i < nodes.size(); i++) {
            for (String in : nodes.get(i).inputs()) {
                lastUse.put(in, i);
                readers.computeIfAbsent(in, x -> new ArrayList<>()).add(i);
            }
        }
        boolean[] fused = new boolean[nodes.size()];
        for (int i = 0; i < nodes.size(); i++) {
            Node node = nodes.get(i);
            if (!fused[i]) {
                List<Tensor> args = new ArrayList<>(node.inputs().size());
                for (String in : node.inputs()) args.add(values.get(in));
                if (node.op() instanceof Op.Conv2d conv) {
                    convolve(graph, node, conv, args, i, values, wanted, readers, fused);
                } else {
                    values.put(node.name(), CpuOps.forward(graph, node, args));
                }
            }
            // Drop intermediates after their last reader so peak memory follows the live set, not the graph.
            for (String in : node.inputs()) {
                if (lastUse.get(in) == i && !wanted.contains(in)) values.remove(in);
            }
        }
        Map<String, Tensor> result = new LinkedHashMap<>();
        for (String r : requested) result.put(r, values.get(r));
        return result;
    }

    /** The convolution at {@code index}, with the Add and ReLU after it when nothing else reads what they consume. */
    private static void convolve(Graph graph, Node node, Op.Conv2d conv, List<Tensor> args, int index, Map<String, Tensor> values,
                                 Set<String> wanted, Map<String, List<Integer>> readers, boolean[] fused) {
        List<Node> nodes = graph.nodes();
        Shape out = ShapeInference.infer(node, List.of(args.getFirst().shape()));
        String last = node.name();
        Tensor residual = null;
        int next = soleReader(last, wanted, readers);
        if (next > index && nodes.get(next).op() instanceof Op.Add) {
            Node add = nodes.get(next);
            String other = add.inputs().get(0).equals(last) ? add.inputs().get(1) : add.inputs().get(0);
            Tensor skip = values.get(other);
            if (!other.equals(last) && skip != null && skip.shape().equals(out)) {
                residual = skip;
                fused[next] = true;
                last = add.name();
                next = soleReader(last, wanted, readers);
            }
        }
        boolean relu = false;
        if (next > index && nodes.get(next).op() instanceof Op.Relu) {
            relu = true;
            fused[next] = true;
            last = nodes.get(next).name();
        }
        Tensor x = args.getFirst();
        values.put(last, CpuOps.conv2d(x, graph.parameter(node, "weight"), conv.bias() ? graph.parameter(node, "bias") : null, conv, residual, relu));
    }

    /** The index of the one node reading {@code name}, or -1 when it is requested or read by none or several. */
    private static int soleReader(String name, Set<String> wanted, Map<String, List<Integer>> readers) {
        List<Integer> r = readers.get(name);
        return wanted.contains(name) || r == null || r.size() != 1 ? -1 : r.getFirst();
    }
}
