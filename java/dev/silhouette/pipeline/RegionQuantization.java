package dev.silhouette.pipeline;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Where region-based quantization acts on a graph (docs/REGION_QUANTIZATION.md). Convolutions on the
 * main path split at the silhouette: those that run before the silhouette exists ("pre-branch": the
 * stem and the blocks the branch reads) and those after it ("receiving"). Also the graph changes that
 * swap the learned silhouette for a training-free one or for noise (the control).
 */
public final class RegionQuantization {
    private RegionQuantization() {}

    /** The main-path convolutions before the silhouette and after it, in graph order. */
    public record Layers(List<Node> preBranch, List<Node> receiving) {}

    public static Layers layers(Graph graph) {
        Set<String> main = mainPath(graph);
        int branchPoint = branchPointIndex(graph, main);
        List<Node> pre = new ArrayList<>(), receiving = new ArrayList<>();
        for (int i = 0; i < graph.nodes().size(); i++) {
            Node n = graph.nodes().get(i);
            if (!(n.op() instanceof Op.Conv2d) || !main.contains(n.name())) continue;
            (i <= branchPoint ? pre : receiving).add(n);
        }
        return new Layers(pre, receiving);
    }

    /**
     * The main-path value the silhouette is computed from (the latest one in graph order), e.g.
     * "layer1.0.relu" for the bundled model; null when the graph has no silhouette or it reads only inputs.
     */
    public static String branchPoint(Graph graph) {
        int i = branchPointIndex(graph, mainPath(graph));
        return i < 0 ? null : graph.nodes().get(i).name();
    }

    private static Set<String> mainPath(Graph graph) {
        Set<String> main = new HashSet<>();
        for (String out : graph.outputs()) if (!out.equals(Models.SILHOUETTE)) main.addAll(ancestors(graph, out));
        // The attention branch reaches the prediction through its auxiliary logits, but it is the branch, not
        // the main path: its nodes are named "silhouette.*" (Models), and they stay unquantized like the 1x1 branch.
        main.removeIf(name -> name.startsWith(Models.SILHOUETTE + "."));
        return main;
    }

    private static int branchPointIndex(Graph graph, Set<String> main) {
        int branchPoint = -1;
        if (graph.outputs().contains(Models.SILHOUETTE)) {
            Set<String> silhouetteReads = ancestors(graph, Models.SILHOUETTE);
            for (int i = 0; i < graph.nodes().size(); i++) {
                String name = graph.nodes().get(i).name();
                if (silhouetteReads.contains(name) && main.contains(name) && !name.equals(Models.SILHOUETTE)) branchPoint = i;
            }
        }
        return branchPoint;
    }

    /**
     * The graph with its silhouette replaced by a training-free one: the nodes only the old branch used
     * are dropped (with their parameters) and {@link Models#SILHOUETTE} becomes a channel squeeze of
     * {@code featureMap}, placed right after it. A graph without a silhouette gains one as an output.
     */
    public static Graph trainingFreeSilhouette(Graph graph, String featureMap, Op.ChannelSqueeze squeeze) {
        return replaceSilhouette(graph, featureMap, squeeze);
    }

    /**
     * The graph with a control silhouette of noise at {@code featureMap}'s size (same placement as
     * {@link #trainingFreeSilhouette}), drawn from the hash of the input image, not of the feature map: the
     * feature map's last bits depend on how the layers before it execute (packed or simulated), and a
     * control must be the same draw on every path.
     */
    public static Graph noiseSilhouette(Graph graph, String featureMap, long seed) {
        String image = graph.inputs().getFirst().name();
        return replaceSilhouette(graph, featureMap, List.of(new Node(Models.SILHOUETTE, new Op.NoiseSilhouette(seed), List.of(featureMap, image))));
    }

    private static void requireKnown(Graph graph, String featureMap) {
        boolean known = graph.inputs().stream().anyMatch(i -> i.name().equals(featureMap))
                || graph.nodes().stream().anyMatch(n -> n.name().equals(featureMap));
        if (!known) {
            throw new IllegalArgumentException("no feature map named '" + featureMap + "' to squeeze into a silhouette; try a block output such as "
                    + graph.nodes().stream().filter(n -> n.op() instanceof Op.Relu).map(Node::name).limit(6).toList());
        }
    }

    private static Graph replaceSilhouette(Graph graph, String featureMap, Op squeeze) {
        return replaceSilhouette(graph, featureMap, List.of(new Node(Models.SILHOUETTE, squeeze, List.of(featureMap))));
    }

    private static Graph replaceSilhouette(Graph graph, String featureMap, List<Node> squeezeNodes) {
        requireKnown(graph, featureMap);
        Set<String> keep = new HashSet<>();
        for (String out : graph.outputs()) if (!out.equals(Models.SILHOUETTE)) keep.addAll(ancestors(graph, out));
        keep.addAll(ancestors(graph, featureMap));
        Set<String> drop = new HashSet<>();
        if (graph.outputs().contains(Models.SILHOUETTE)) {
            for (String a : ancestors(graph, Models.SILHOUETTE)) if (!keep.contains(a)) drop.add(a);
        }
        if (drop.contains(featureMap) || featureMap.equals(Models.SILHOUETTE)) {
            throw new IllegalArgumentException("'" + featureMap + "' belongs to the silhouette branch being replaced; squeeze a main-path feature map");
        }
        List<Node> nodes = new ArrayList<>();
        boolean placed = false;
        if (graph.inputs().stream().anyMatch(i -> i.name().equals(featureMap))) {
            nodes.addAll(squeezeNodes);
            placed = true;
        }
        Map<String, Tensor> params = new LinkedHashMap<>(graph.parameters());
        for (Node n : graph.nodes()) {
            if (drop.contains(n.name())) {
                for (Op.Parameter p : n.op().parameters()) params.remove(n.parameterName(p));
                continue;
            }
            nodes.add(n);
            if (!placed && n.name().equals(featureMap)) {
                nodes.addAll(squeezeNodes);
                placed = true;
            }
        }
        List<String> outputs = new ArrayList<>(graph.outputs());
        if (!outputs.contains(Models.SILHOUETTE)) outputs.add(Models.SILHOUETTE);
        return new Graph(graph.inputs(), nodes, outputs, params);
    }

    /** {@code value} and every value it is computed from. */
    static Set<String> ancestors(Graph graph, String value) {
        Map<String, Node> byName = new HashMap<>();
        for (Node n : graph.nodes()) byName.put(n.name(), n);
        Set<String> seen = new HashSet<>();
        Deque<String> todo = new ArrayDeque<>(List.of(value));
        while (!todo.isEmpty()) {
            String v = todo.pop();
            if (!seen.add(v)) continue;
            Node n = byName.get(v);
            if (n != null) todo.addAll(n.inputs());
        }
        return seen;
    }

    private static Set<String> names(List<Node> nodes) {
        Set<String> s = new HashSet<>();
        for (Node n : nodes) s.add(n.name());
        return s;
    }
}
