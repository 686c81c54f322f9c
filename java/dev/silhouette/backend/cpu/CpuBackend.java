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

/** The pure-Java backend: the reference every other backend is checked against, and the fallback. */
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
        List<Node> nodes = graph.nodes();
        for (int i = 0; i < nodes.size(); i++) for (String in : nodes.get(i).inputs()) lastUse.put(in, i);
        for (int i = 0; i < nodes.size(); i++) {
            Node node = nodes.get(i);
            List<Tensor> args = new ArrayList<>(node.inputs().size());
            List<Shape> shapes = new ArrayList<>(node.inputs().size());
            for (String in : node.inputs()) {
                Tensor t = values.get(in);
                args.add(t);
                shapes.add(t.shape());
            }
            Shape expected = ShapeInference.infer(node, shapes);
            values.put(node.name(), execute(graph, node, args, expected));
            // Drop intermediates after their last reader so peak memory follows the live set, not the graph.
            for (String in : node.inputs()) {
                if (lastUse.get(in) == i && !wanted.contains(in)) values.remove(in);
            }
        }
        Map<String, Tensor> result = new LinkedHashMap<>();
        for (String r : requested) result.put(r, values.get(r));
        return result;
    }

    private static Tensor execute(Graph graph, Node node, List<Tensor> in, Shape expected) {
        Tensor x = in.get(0);
        return switch (node.op()) {
            case Op.Conv2d conv -> CpuOps.conv2d(x, graph.parameter(node, "weight"), graph.parameter(node, "bias"), conv);
            case Op.BatchNorm bn -> CpuOps.batchNorm(x, graph.parameter(node, "weight"), graph.parameter(node, "bias"),
                    graph.parameter(node, "running_mean"), graph.parameter(node, "running_var"), bn);
            case Op.Relu r -> CpuOps.relu(x);
            case Op.Clip c -> CpuOps.clip(x, c);
            case Op.Add a -> CpuOps.add(x, in.get(1));
            case Op.MaxPool p -> CpuOps.maxPool(x, p);
            case Op.AvgPool p -> CpuOps.avgPool(x, p);
            case Op.GlobalAvgPool g -> CpuOps.globalAvgPool(x);
            case Op.Linear l -> CpuOps.linear(x, graph.parameter(node, "weight"), graph.parameter(node, "bias"), l);
            case Op.Flatten f -> CpuOps.flatten(x);
            case Op.Sigmoid s -> CpuOps.sigmoid(x);
            case Op.Softmax s -> CpuOps.softmax(x);
            case Op.Interpolate i -> CpuOps.interpolate(x, i);
            case Op.Concat c -> CpuOps.concat(in, expected, c);
            case Op.Elementwise e -> CpuOps.elementwise(x, in.get(1), e.arithmetic(), expected);
            case Op.ElementwiseConstant e -> CpuOps.elementwiseConstant(x, graph.parameter(node, "constant"), e);
            case Op.HardSigmoid h -> CpuOps.hardSigmoid(x, h);
            case Op.HardSwish h -> CpuOps.hardSwish(x);
            case Op.Reshape r -> CpuOps.reshape(x, expected);
            case Op.Pad p -> CpuOps.pad(x, p);
            case Op.PactQuantize q -> RegionOps.pactQuantize(x, q);
            case Op.AffineQuantize q -> RegionOps.affineQuantize(x, q);
            case Op.RegionQuantize q -> RegionOps.regionQuantize(x, in.get(1), q);
            case Op.DrqQuantize q -> RegionOps.drqQuantize(x, q);
            case Op.ChannelSqueeze q -> RegionOps.channelSqueeze(x, q);
            case Op.NoiseSilhouette q -> RegionOps.noiseSilhouette(x, q);
            case Op.LogitBlend q -> CpuOps.logitBlend(x, in.get(1), graph.parameter(node, "gate"));
        };
    }
}
