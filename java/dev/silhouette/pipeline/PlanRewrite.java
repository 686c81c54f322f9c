package dev.silhouette.pipeline;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlan.Activations;
import dev.silhouette.pipeline.QuantPlan.LayerPlan;
import dev.silhouette.pipeline.QuantPlan.SilhouetteSource;
import dev.silhouette.pipeline.QuantPlan.Weights;
import dev.silhouette.quant.WeightQuantization;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The one rewrite that applies a {@link QuantPlan} to the graph it was made for: the plan's silhouette
 * source first, then, before every planned layer, a quantization op on the value it reads (one op per
 * value and scheme, shared by every layer reading it the same way), and the layer's weights replaced by
 * their quantized values. Region and DRQ layers with per-region weights become one convolution per
 * region (or width), summed, the last sum keeping the layer's name so its readers are unchanged.
 * Only the planned layers read quantized values: residual shortcuts and other readers keep the float
 * value (docs/REGION_QUANTIZATION.md). Quantization is simulated in float32 here (dequantized codes
 * through the float ops), exact for the codes.
 */
public final class PlanRewrite {
    private PlanRewrite() {}

    /** The plan applied to {@code graph}, which must be the graph the plan was made for (same fingerprint). */
    public static Graph apply(Graph graph, QuantPlan plan) {
        return apply(graph, plan, Execution.SIMULATED);
    }

    /**
     * How quantized layers execute: SIMULATED puts quantizers before float ops (dequantized codes, the
     * accuracy studies' form); PACKED lowers every layer it can to {@link Op.LowBitConv2d} (integer codes,
     * exact int32 accumulators; {@link LowBitLowering#refusal} says which layers stay simulated and why).
     */
    public enum Execution { SIMULATED, PACKED }

    /** The plan applied for {@code execution}; the graph must be the one the plan was made for (same fingerprint). */
    public static Graph apply(Graph graph, QuantPlan plan, Execution execution) {
        String expected = graph.fingerprint();
        if (!expected.equals(plan.fingerprint())) {
            throw new IllegalArgumentException("quantization plan '" + plan.label() + "' was made for another model ('" + plan.model() + "', fingerprint "
                    + Calibration.abbreviate(plan.fingerprint()) + "); this model's fingerprint is " + Calibration.abbreviate(expected));
        }
        return rewrite(graph, plan, execution);
    }

    /**
     * The plan applied without the fingerprint check: for a training graph whose weights are about to change
     * (fine-tuning), whose plan was made for its starting point.
     */
    public static Graph applyStructure(Graph graph, QuantPlan plan) {
        return rewrite(graph, plan, Execution.SIMULATED);
    }

    private static Graph rewrite(Graph graph, QuantPlan plan, Execution execution) {
        Graph g = withSilhouette(graph, plan.silhouette());
        if (plan.usesSilhouette() && !g.outputs().contains(Models.SILHOUETTE)) {
            throw new IllegalArgumentException("region quantization needs a model with a '" + Models.SILHOUETTE + "' output; this one has " + g.outputs());
        }
        for (LayerPlan l : plan.layers()) check(g, l);
        Map<String, Tensor> params = new LinkedHashMap<>(g.parameters());
        Map<String, Op> quantNodes = new HashMap<>();
        Map<String, dev.silhouette.tensor.Shape> shapes = null;   // the packed lowering's region maps need the inputs' sizes
        List<Node> nodes = new ArrayList<>();
        for (Node n : g.nodes()) {
            LayerPlan l = plan.layer(n.name());
            if (l == null) {
                nodes.add(n);
                continue;
            }
            String in = l.input();
            if (execution == Execution.PACKED && LowBitLowering.refusal(n, l) == null) {
                if (shapes == null) shapes = g.inferShapes(1);
                LowBitLowering.lower(g, shapes, n, l, nodes, params, quantNodes);
                continue;
            }
            switch (l.activations()) {
                case Activations.Region r when r.perRegionWeights() -> {
                    int regions = r.policy().regions().size();
                    List<String> parts = new ArrayList<>();
                    for (int j = 0; j < regions; j++) {
                        String q = quantNode(nodes, quantNodes, in + ".region" + j, regionOp(r, j), in, Models.SILHOUETTE);
                        parts.add(regionConv(nodes, params, g.parameters(), n, j, regions, q, r.policy().bits(j)));
                    }
                    sum(nodes, n.name(), parts);
                    continue;
                }
                case Activations.Drq d -> {
                    List<String> parts = new ArrayList<>();
                    int[] bits = {d.lowBits(), d.highBits()};
                    for (int j = 0; j < 2; j++) {
                        Op.DrqQuantize op = new Op.DrqQuantize(d.block(), d.threshold(), d.lowBits(), d.highBits(), d.lowAlpha(), d.highAlpha(), j);
                        String q = quantNode(nodes, quantNodes, in + ".drq" + j, op, in);
                        parts.add(regionConv(nodes, params, g.parameters(), n, j, 2, q, bits[j]));
                    }
                    sum(nodes, n.name(), parts);
                    continue;
                }
                default -> {}
            }
            String reads = switch (l.activations()) {
                case Activations.Float f -> in;
                case Activations.Pact p -> quantNode(nodes, quantNodes, in + ".a" + p.bits(), new Op.PactQuantize(p.bits(), p.alpha()), in);
                case Activations.Affine a -> quantNode(nodes, quantNodes, in + ".q" + a.bits(), affineOp(a), in);
                case Activations.Region r -> quantNode(nodes, quantNodes, in + ".region", regionOp(r, -1), in, Models.SILHOUETTE);
                case Activations.Drq d -> throw new IllegalStateException("handled above");
            };
            List<String> inputs = new ArrayList<>(n.inputs());
            inputs.set(0, reads);
            nodes.add(new Node(n.name(), n.op(), inputs));
            if (l.weights() instanceof Weights.Symmetric s) {
                String key = n.name() + ".weight";
                params.put(key, WeightQuantization.quantize(params.get(key), s.bits(), s.clip(), s.biasCorrection()).values());
            }
        }
        return new Graph(g.inputs(), nodes, g.outputs(), params);
    }

    /** The graph with the silhouette the plan asks for. */
    public static Graph withSilhouette(Graph graph, SilhouetteSource source) {
        return switch (source) {
            case SilhouetteSource.Learned l -> graph;
            case SilhouetteSource.Squeeze s -> RegionQuantization.trainingFreeSilhouette(graph, s.featureMap(), new Op.ChannelSqueeze(s.mode(), s.k()));
            case SilhouetteSource.Noise s -> RegionQuantization.noiseSilhouette(graph, s.featureMap(), s.seed());
        };
    }

    private static void check(Graph g, LayerPlan l) {
        Node n;
        try {
            n = g.node(l.layer());
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("quantization plan names layer '" + l.layer() + "', which this model does not have");
        }
        boolean conv = n.op() instanceof Op.Conv2d;
        if (!conv && !(n.op() instanceof Op.Linear)) {
            throw new IllegalArgumentException("quantization plan: layer '" + l.layer() + "' is a " + Graph.opName(n.op()) + "; only Conv2d and Linear layers are quantized");
        }
        if (!n.inputs().getFirst().equals(l.input())) {
            throw new IllegalArgumentException("quantization plan: layer '" + l.layer() + "' reads '" + n.inputs().getFirst() + "', not '" + l.input() + "'");
        }
        boolean spatial = l.activations() instanceof Activations.Region || l.activations() instanceof Activations.Drq;
        if (spatial && !conv) {
            throw new IllegalArgumentException("quantization plan: layer '" + l.layer() + "' is a Linear layer; region and DRQ activations need a Conv2d");
        }
        if (l.weights() instanceof Weights.Symmetric s) {
            int out = g.parameter(n, "weight").shape().dim(0);
            if (s.bits().length != 1 && s.bits().length != out) {
                throw new IllegalArgumentException("quantization plan: layer '" + l.layer() + "' has " + s.bits().length + " weight groups; it has "
                        + out + " output channels (use 1 group or " + out + ")");
            }
        }
        if (l.activations() instanceof Activations.Affine a && a.channelBits() != null) {
            int channels = conv ? ((Op.Conv2d) n.op()).inChannels() : -1;
            if (channels != a.channelBits().length) {
                throw new IllegalArgumentException("quantization plan: layer '" + l.layer() + "' has " + a.channelBits().length
                        + " per-channel activation widths; its input has " + (conv ? channels + " channels" : "no channel axis"));
            }
        }
    }

    private static Op.AffineQuantize affineOp(Activations.Affine a) {
        if (a.channelBits() == null) return new Op.AffineQuantize(List.of(a.bits()), List.of(a.lo()), List.of(a.hi()));
        List<Integer> bits = new ArrayList<>();
        List<Float> lo = new ArrayList<>(), hi = new ArrayList<>();
        for (int c = 0; c < a.channelBits().length; c++) {
            bits.add(a.channelBits()[c]);
            lo.add(a.channelLo()[c]);
            hi.add(a.channelHi()[c]);
        }
        return new Op.AffineQuantize(bits, lo, hi);
    }

    private static Op.RegionQuantize regionOp(Activations.Region r, int onlyRegion) {
        return new Op.RegionQuantize(r.policy(), r.alphas(), r.resize(), r.order(), onlyRegion);
    }

    /**
     * One quantization node per (value, scheme), shared by every layer reading that value the same way; a
     * second scheme on the same value gets its own node.
     */
    static String quantNode(List<Node> nodes, Map<String, Op> made, String name, Op op, String... inputs) {
        String unique = name;
        for (int k = 2; made.containsKey(unique); k++) {
            if (made.get(unique).equals(op)) return unique;
            unique = name + "_" + k;
        }
        made.put(unique, op);
        nodes.add(new Node(unique, op, List.of(inputs)));
        return unique;
    }

    /** Region j's convolution: the original weights quantized at the region's width; only region 0 keeps the bias. */
    private static String regionConv(List<Node> nodes, Map<String, Tensor> params, Map<String, Tensor> original, Node n, int j, int regions,
                                     String input, int bits) {
        Op.Conv2d conv = (Op.Conv2d) n.op();
        // A one-region policy needs no sum: its single convolution keeps the original name.
        String name = regions == 1 ? n.name() : n.name() + ".r" + j;
        Tensor weight = original.get(n.name() + ".weight");
        params.put(name + ".weight", regionWeights(weight, bits, conv.outChannels()).values());
        boolean bias = conv.bias() && j == 0;
        if (regions > 1) {
            params.remove(n.name() + ".weight");
            params.remove(n.name() + ".bias");
        }
        if (bias) params.put(name + ".bias", original.get(n.name() + ".bias"));
        nodes.add(new Node(name, new Op.Conv2d(conv.inChannels(), conv.outChannels(), conv.window(), conv.groups(), bias), List.of(input)));
        return name;
    }

    /** One region's (or DRQ width's) weights: symmetric per output channel at that width, clipped at max |w|. */
    static WeightQuantization.QuantizedWeights regionWeights(Tensor weight, int bits, int outChannels) {
        return WeightQuantization.quantize(weight, Weights.Symmetric.uniform(bits, outChannels).bits(), null, false);
    }

    /** Sums the region convolutions; the last sum takes the original convolution's name so its readers are unchanged. */
    static void sum(List<Node> nodes, String name, List<String> parts) {
        String acc = parts.getFirst();
        for (int i = 1; i < parts.size(); i++) {
            String next = i == parts.size() - 1 ? name : name + ".sum" + i;
            nodes.add(new Node(next, new Op.Add(), List.of(acc, parts.get(i))));
            acc = next;
        }
    }
}
