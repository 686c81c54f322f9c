package dev.silhouette.graph;

import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Graph-to-graph rewrites for inference. */
public final class Passes {
    private Passes() {}

    /**
     * Folds every inference BatchNorm into the convolution feeding it, when that convolution's output
     * has no other reader. With s = gamma / sqrt(var + eps) per output channel o:
     * BN(conv(x))_o = s_o * (W_o . x + b_o - mean_o) + beta_o = (s_o W_o) . x + (s_o (b_o - mean_o) + beta_o),
     * so W'_o = s_o W_o and b'_o = s_o (b_o - mean_o) + beta_o. Readers of the BatchNorm read the
     * convolution instead, which keeps its name and gains a bias.
     */
    public static Graph foldBatchNorm(Graph graph) {
        Map<String, Integer> readers = new HashMap<>();
        for (Node n : graph.nodes()) for (String in : n.inputs()) readers.merge(in, 1, Integer::sum);
        for (String out : graph.outputs()) readers.merge(out, 1, Integer::sum);

        Map<String, Tensor> params = new LinkedHashMap<>(graph.parameters());
        Map<String, Node> replaced = new HashMap<>();
        Map<String, String> renamed = new HashMap<>();
        List<String> dropped = new ArrayList<>();
        for (Node n : graph.nodes()) {
            if (!(n.op() instanceof Op.BatchNorm bn)) continue;
            String producer = n.inputs().get(0);
            Node convNode = replaced.getOrDefault(producer, findNode(graph, producer));
            if (convNode == null || !(convNode.op() instanceof Op.Conv2d conv) || readers.getOrDefault(producer, 0) != 1) continue;

            float[] gamma = graph.parameter(n, "weight").data();
            float[] beta = graph.parameter(n, "bias").data();
            float[] mean = graph.parameter(n, "running_mean").data();
            float[] var = graph.parameter(n, "running_var").data();
            Tensor weight = params.get(convNode.name() + ".weight").copy();
            Tensor oldBias = params.get(convNode.name() + ".bias");
            float[] w = weight.data();
            float[] bias = new float[conv.outChannels()];
            int perChannel = w.length / conv.outChannels();
            for (int o = 0; o < conv.outChannels(); o++) {
                float s = (float) (gamma[o] / Math.sqrt((double) var[o] + bn.eps()));
                for (int i = o * perChannel; i < (o + 1) * perChannel; i++) w[i] *= s;
                bias[o] = s * ((oldBias == null ? 0f : oldBias.data()[o]) - mean[o]) + beta[o];
            }
            params.put(convNode.name() + ".weight", weight);
            params.put(convNode.name() + ".bias", new Tensor(oldBias == null ? dev.silhouette.tensor.Shape.of(conv.outChannels()) : oldBias.shape(), bias));
            replaced.put(convNode.name(), new Node(convNode.name(), new Op.Conv2d(conv.inChannels(), conv.outChannels(), conv.window(), conv.groups(), true), convNode.inputs()));
            renamed.put(n.name(), convNode.name());
            dropped.add(n.name());
            for (Op.Parameter p : bn.parameters()) params.remove(n.parameterName(p));
        }
        List<Node> nodes = new ArrayList<>();
        for (Node n : graph.nodes()) {
            if (dropped.contains(n.name())) continue;
            Node base = replaced.getOrDefault(n.name(), n);
            nodes.add(new Node(base.name(), base.op(), base.inputs().stream().map(i -> renamed.getOrDefault(i, i)).toList()));
        }
        List<String> outputs = graph.outputs().stream().map(o -> renamed.getOrDefault(o, o)).toList();
        return new Graph(graph.inputs(), nodes, outputs, params);
    }

    private static Node findNode(Graph graph, String name) {
        for (Node n : graph.nodes()) if (n.name().equals(name)) return n;
        return null;
    }
}
