package dev.silhouette.pipeline;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Op.LowBitConv2d.ActivationCodes;
import dev.silhouette.pipeline.QuantPlan.Activations;
import dev.silhouette.pipeline.QuantPlan.LayerPlan;
import dev.silhouette.pipeline.QuantPlan.Weights;
import dev.silhouette.quant.LowBitWeights;
import dev.silhouette.quant.Quantizers;
import dev.silhouette.quant.RegionQuantizer;
import dev.silhouette.quant.WeightQuantization;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The packed half of {@link PlanRewrite}: a planned convolution becomes an {@link Op.LowBitConv2d}, its
 * weights quantized to integer codes once, here (the model's preparation), with the grid its input is
 * quantized on. Region layers read an {@link Op.RegionMap} node shared by every layer of the same size;
 * DRQ layers become one low-bit convolution per sensitivity class, summed. The convolution's float output
 * stays float: the next layer quantizes it when it reads it, and residual shortcuts read it as it is.
 */
final class LowBitLowering {
    private LowBitLowering() {}

    /** Why the layer stays simulated on the packed path, or null when it lowers. */
    static String refusal(Node n, LayerPlan l) {
        if (!(n.op() instanceof Op.Conv2d)) return "only convolutions run on integer codes; " + Graph.opName(n.op()) + " layers stay simulated";
        if (l.weights() instanceof Weights.Float) return "float weights";
        return switch (l.activations()) {
            case Activations.Float f -> "float activations";
            case Activations.Pact p -> null;
            case Activations.Affine a when a.channelBits() != null -> "per-channel activation grids cannot share one integer accumulator";
            case Activations.Affine a -> affineGrid(a) == null ? "an empty activation range (every code 0)" : null;
            case Activations.Region r -> null;
            case Activations.Drq d -> null;
        };
    }

    static void lower(Graph g, Map<String, Shape> shapes, Node n, LayerPlan l, List<Node> nodes, Map<String, Tensor> params, Map<String, Op> quantNodes) {
        Op.Conv2d conv = (Op.Conv2d) n.op();
        Tensor weight = g.parameters().get(n.name() + ".weight");
        params.remove(n.name() + ".weight");
        String in = l.input();
        switch (l.activations()) {
            case Activations.Pact p -> add(nodes, n.name(), conv, new ActivationCodes.Grid(p.bits(), RegionQuantizer.pactStep(p.alpha(), p.bits()), 0),
                    shared(conv, weight, (Weights.Symmetric) l.weights()), List.of(in));
            case Activations.Affine a -> add(nodes, n.name(), conv, affineGrid(a), shared(conv, weight, (Weights.Symmetric) l.weights()), List.of(in));
            case Activations.Region r -> {
                Shape x = shapes.get(in);
                Op.RegionMap mapOp = new Op.RegionMap(r.policy(), r.resize(), r.order(), x.h(), x.w());
                String map = PlanRewrite.quantNode(nodes, quantNodes, Models.SILHOUETTE + ".map" + x.h() + "x" + x.w(), mapOp, Models.SILHOUETTE);
                int regions = r.policy().regions().size();
                List<Integer> bits = new ArrayList<>();
                List<Float> steps = new ArrayList<>();
                for (int j = 0; j < regions; j++) {
                    bits.add(r.policy().bits(j));
                    steps.add(RegionQuantizer.pactStep(r.alphas().get(j), r.policy().bits(j)));
                }
                LowBitWeights w = l.weights() instanceof Weights.Symmetric s ? shared(conv, weight, s) : perRegion(conv, weight, bits);
                add(nodes, n.name(), conv, new ActivationCodes.Regions(bits, steps), w, List.of(in, map));
            }
            case Activations.Drq d -> {
                List<String> parts = new ArrayList<>();
                int[] bits = {d.lowBits(), d.highBits()};
                float[] alphas = {d.lowAlpha(), d.highAlpha()};
                for (int j = 0; j < 2; j++) {
                    String name = n.name() + ".r" + j;
                    boolean bias = conv.bias() && j == 0;
                    if (bias) params.put(name + ".bias", params.remove(n.name() + ".bias"));
                    Op.Conv2d part = new Op.Conv2d(conv.inChannels(), conv.outChannels(), conv.window(), conv.groups(), bias);
                    var codes = new ActivationCodes.DrqClass(d.block(), d.threshold(), j == 1, bits[j], RegionQuantizer.pactStep(alphas[j], bits[j]));
                    add(nodes, name, part, codes, perRegion(conv, weight, List.of(bits[j])), List.of(in));
                    parts.add(name);
                }
                PlanRewrite.sum(nodes, n.name(), parts);
            }
            case Activations.Float f -> throw new IllegalStateException("refused above");
        }
    }

    private static void add(List<Node> nodes, String name, Op.Conv2d conv, ActivationCodes codes, LowBitWeights w, List<String> inputs) {
        nodes.add(new Node(name, new Op.LowBitConv2d(conv, codes, w), inputs));
    }

    /** The grid of {@link Quantizers#affine} over the plan's range; null when the range is empty (every code 0). */
    static ActivationCodes.Grid affineGrid(Activations.Affine a) {
        Quantizers.AffineGrid grid = Quantizers.affineGrid(a.bits(), a.lo(), a.hi());
        return grid.scale() > 0 ? new ActivationCodes.Grid(a.bits(), grid.scale(), grid.zeroPoint()) : null;
    }

    private static LowBitWeights shared(Op.Conv2d conv, Tensor weight, Weights.Symmetric s) {
        WeightQuantization.QuantizedWeights q = WeightQuantization.quantize(weight, s.bits(), s.clip(), s.biasCorrection());
        int maxBits = java.util.Arrays.stream(s.bits()).max().orElseThrow();
        return LowBitWeights.of(conv.groups(), conv.outChannels(), conv.inPerGroup(), conv.window().taps(), new int[] {maxBits}, List.of(q));
    }

    /** One weight set per region at that region's width, symmetric per output channel at max |w| (the simulated form's regionConv). */
    private static LowBitWeights perRegion(Op.Conv2d conv, Tensor weight, List<Integer> bits) {
        List<WeightQuantization.QuantizedWeights> sets = new ArrayList<>();
        int[] widths = new int[bits.size()];
        for (int j = 0; j < bits.size(); j++) {
            widths[j] = bits.get(j);
            sets.add(PlanRewrite.regionWeights(weight, bits.get(j), conv.outChannels()));
        }
        return LowBitWeights.of(conv.groups(), conv.outChannels(), conv.inPerGroup(), conv.window().taps(), widths, sets);
    }
}
