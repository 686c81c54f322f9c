package dev.silhouette.graph;

import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.quant.RegionQuantizer;
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
 * Graph passes of region-based quantization (docs/REGION_QUANTIZATION.md). Convolutions on the main
 * path split at the silhouette: those that run before the silhouette exists ("pre-branch": the stem
 * and the blocks the branch reads) keep a high uniform width (8 bits by default, as the original keeps
 * its stem at 8), those after it ("receiving") take the scheme under study; the classifier stays FP32.
 * Quantization is simulated in float32: activations and weights are replaced by their dequantized
 * values, which is exact for the codes and equals the integer accumulator spec up to float rounding.
 */
public final class RegionQuantization {
    private RegionQuantization() {}

    /** How the receiving convolutions quantize their input activations and weights. */
    public sealed interface Scheme {
        /** Activations at one width, weights at {@code weightBits} (the same by default). */
        record Uniform(int bits, int weightBits) implements Scheme {
            public Uniform {
                RegionQuantizer.weightLimit(weightBits);
            }

            public Uniform(int bits) {
                this(bits, Math.max(2, bits));
            }
        }

        /**
         * Per-pixel widths from the silhouette. SHARED: one weight tensor at {@code weightBits} (32 keeps
         * FP32 weights); PER_REGION: the original code's form, one convolution per region whose weights
         * and activations use that region's width, each reading its region only, outputs summed.
         */
        record Region(RegionPolicy policy, WeightForm form, int weightBits, Op.Interpolate.Mode resize,
                      Op.RegionQuantize.MaskOrder order) implements Scheme {
            public Region {
                if (form == WeightForm.SHARED && weightBits != 32) RegionQuantizer.weightLimit(weightBits);
                if (form == WeightForm.PER_REGION) {
                    for (int r = 0; r < policy.regions().size(); r++) {
                        if (policy.bits(r) < 2) {
                            throw new IllegalArgumentException("region policy " + policy + " with per-region weights: region " + (r + 1)
                                    + " has " + policy.bits(r) + " bit, symmetric weights need at least 2; use the shared-weight form");
                        }
                    }
                }
            }
        }

        /** DRQ: sensitivity from the input's own block means; one convolution per width (as the thesis reproduces it). */
        record Drq(int lowBits, int highBits, int block, Map<String, Float> thresholds) implements Scheme {
            public Drq {
                thresholds = Map.copyOf(thresholds);
                RegionQuantizer.weightLimit(lowBits);
                RegionQuantizer.weightLimit(highBits);
            }
        }
    }

    public enum WeightForm { SHARED, PER_REGION }

    /** A scheme for the receiving convolutions and the width of the pre-branch ones (32: FP32). */
    public record Plan(Scheme scheme, int preBranchBits) {}

    /** PACT clip level of the activations a convolution reads ({@code value}) at a width. */
    public interface ClipLevels {
        float alpha(String value, int bits);
    }

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

    /** The graph with every main-path convolution's input (and weights) quantized by the plan. */
    public static Graph apply(Graph graph, Plan plan, ClipLevels clips) {
        Layers layers = layers(graph);
        if (plan.scheme() instanceof Scheme.Region && !graph.outputs().contains(Models.SILHOUETTE)) {
            throw new IllegalArgumentException("region quantization needs a model with a '" + Models.SILHOUETTE + "' output; this one has "
                    + graph.outputs());
        }
        Set<String> pre = names(layers.preBranch()), receiving = names(layers.receiving());
        Map<String, Tensor> params = new LinkedHashMap<>(graph.parameters());
        Map<String, String> quantNodes = new HashMap<>();
        List<Node> nodes = new ArrayList<>();
        for (Node n : graph.nodes()) {
            boolean isPre = pre.contains(n.name()) && plan.preBranchBits() != 32;
            if (!isPre && !receiving.contains(n.name())) {
                nodes.add(n);
                continue;
            }
            Op.Conv2d conv = (Op.Conv2d) n.op();
            String in = n.inputs().getFirst();
            Scheme scheme = isPre ? new Scheme.Uniform(plan.preBranchBits()) : plan.scheme();
            switch (scheme) {
                case Scheme.Uniform u -> {
                    String q = quantNode(nodes, quantNodes, in + ".a" + u.bits(), new Op.PactQuantize(u.bits(), clips.alpha(in, u.bits())), in);
                    nodes.add(new Node(n.name(), conv, List.of(q)));
                    quantizeWeights(params, n.name(), conv, u.weightBits());
                }
                case Scheme.Region r when r.form() == WeightForm.SHARED -> {
                    String q = quantNode(nodes, quantNodes, in + ".region", regionOp(r, clips, in, -1), in, Models.SILHOUETTE);
                    nodes.add(new Node(n.name(), conv, List.of(q)));
                    if (r.weightBits() != 32) quantizeWeights(params, n.name(), conv, r.weightBits());
                }
                case Scheme.Region r -> {
                    int regions = r.policy().regions().size();
                    List<String> parts = new ArrayList<>();
                    for (int j = 0; j < regions; j++) {
                        String q = quantNode(nodes, quantNodes, in + ".region" + j, regionOp(r, clips, in, j), in, Models.SILHOUETTE);
                        parts.add(regionConv(nodes, params, graph.parameters(), n, conv, j, regions, q, r.policy().bits(j)));
                    }
                    sum(nodes, n.name(), parts);
                }
                case Scheme.Drq d -> {
                    Float threshold = d.thresholds().get(in);
                    if (threshold == null) throw new IllegalArgumentException("DRQ has no calibrated threshold for '" + in + "', the input of " + n.name());
                    List<String> parts = new ArrayList<>();
                    int[] bits = {d.lowBits(), d.highBits()};
                    for (int j = 0; j < 2; j++) {
                        Op.DrqQuantize op = new Op.DrqQuantize(d.block(), threshold, d.lowBits(), d.highBits(),
                                clips.alpha(in, d.lowBits()), clips.alpha(in, d.highBits()), j);
                        String q = quantNode(nodes, quantNodes, in + ".drq" + j, op, in);
                        parts.add(regionConv(nodes, params, graph.parameters(), n, conv, j, 2, q, bits[j]));
                    }
                    sum(nodes, n.name(), parts);
                }
            }
        }
        return new Graph(graph.inputs(), nodes, graph.outputs(), params);
    }

    private static Op.RegionQuantize regionOp(Scheme.Region r, ClipLevels clips, String in, int onlyRegion) {
        List<Float> alphas = new ArrayList<>();
        for (int j = 0; j < r.policy().regions().size(); j++) alphas.add(clips.alpha(in, r.policy().bits(j)));
        return new Op.RegionQuantize(r.policy(), alphas, r.resize(), r.order(), onlyRegion);
    }

    /** One quantization node per (value, form), shared by every convolution reading that value. */
    private static String quantNode(List<Node> nodes, Map<String, String> made, String name, Op op, String... inputs) {
        return made.computeIfAbsent(name, k -> {
            nodes.add(new Node(name, op, List.of(inputs)));
            return name;
        });
    }

    /** Region j's convolution: the original weights quantized at the region's width; only region 0 keeps the bias. */
    private static String regionConv(List<Node> nodes, Map<String, Tensor> params, Map<String, Tensor> original, Node n, Op.Conv2d conv, int j, int regions, String input, int bits) {
        // A one-region policy needs no sum: its single convolution keeps the original name.
        String name = regions == 1 ? n.name() : n.name() + ".r" + j;
        Tensor weight = original.get(n.name() + ".weight");
        params.put(name + ".weight", new Tensor(weight.shape(), RegionQuantizer.quantizeWeights(weight.data(), conv.outChannels(), bits)));
        boolean bias = conv.bias() && j == 0;
        if (regions > 1) {
            params.remove(n.name() + ".weight");
            params.remove(n.name() + ".bias");
        }
        if (bias) params.put(name + ".bias", original.get(n.name() + ".bias"));
        nodes.add(new Node(name, new Op.Conv2d(conv.inChannels(), conv.outChannels(), conv.window(), conv.groups(), bias), List.of(input)));
        return name;
    }

    /** Sums the region convolutions; the last sum takes the original convolution's name so its readers are unchanged. */
    private static void sum(List<Node> nodes, String name, List<String> parts) {
        String acc = parts.getFirst();
        for (int i = 1; i < parts.size(); i++) {
            String next = i == parts.size() - 1 ? name : name + ".sum" + i;
            nodes.add(new Node(next, new Op.Add(), List.of(acc, parts.get(i))));
            acc = next;
        }
    }

    private static void quantizeWeights(Map<String, Tensor> params, String conv, Op.Conv2d op, int bits) {
        Tensor w = params.get(conv + ".weight");
        params.put(conv + ".weight", new Tensor(w.shape(), RegionQuantizer.quantizeWeights(w.data(), op.outChannels(), bits)));
    }

    /**
     * The graph with its silhouette replaced by a training-free one: the nodes only the old branch used
     * are dropped (with their parameters) and {@link Models#SILHOUETTE} becomes a channel squeeze of
     * {@code featureMap}, placed right after it. A graph without a silhouette gains one as an output.
     */
    public static Graph trainingFreeSilhouette(Graph graph, String featureMap, Op.ChannelSqueeze squeeze) {
        return replaceSilhouette(graph, featureMap, squeeze);
    }

    /** The graph with a control silhouette of noise (same placement as {@link #trainingFreeSilhouette}). */
    public static Graph noiseSilhouette(Graph graph, String featureMap, long seed) {
        return replaceSilhouette(graph, featureMap, new Op.NoiseSilhouette(seed));
    }

    private static Graph replaceSilhouette(Graph graph, String featureMap, Op squeeze) {
        boolean known = graph.inputs().stream().anyMatch(i -> i.name().equals(featureMap))
                || graph.nodes().stream().anyMatch(n -> n.name().equals(featureMap));
        if (!known) {
            throw new IllegalArgumentException("no feature map named '" + featureMap + "' to squeeze into a silhouette; try a block output such as "
                    + graph.nodes().stream().filter(n -> n.op() instanceof Op.Relu).map(Node::name).limit(6).toList());
        }
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
        Node squeezeNode = new Node(Models.SILHOUETTE, squeeze, List.of(featureMap));
        List<Node> nodes = new ArrayList<>();
        boolean placed = false;
        if (graph.inputs().stream().anyMatch(i -> i.name().equals(featureMap))) {
            nodes.add(squeezeNode);
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
                nodes.add(squeezeNode);
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
