package dev.silhouette.train;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.quant.BitWidths;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What {@code --quant} selects: which quantizers the training network carries. As in the PACT paper,
 * the first convolution (it reads the raw image) and the classifier stay in full precision; every
 * other Conv2d/Linear weight is quantized, and in PACT mode every ReLU output too.
 */
public sealed interface QuantMode permits QuantMode.Fp32, QuantMode.PactMode, QuantMode.BinaryWeights {

    /** The trainable network of the graph with this mode's quantizers attached. */
    Network apply(Graph graph);

    /** The PACT paper's initial clipping level. */
    float PACT_INITIAL_ALPHA = 10f;
    /** L2 coefficient on alpha (the paper regularises alpha like the weights). */
    float PACT_ALPHA_DECAY = 5e-4f;

    record Fp32() implements QuantMode {
        @Override
        public Network apply(Graph graph) {
            return new Network(graph, Map.of(), Map.of());
        }
    }

    /** W-bit symmetric per-channel weights, A-bit PACT activations after every ReLU. */
    record PactMode(int weightBits, int activationBits) implements QuantMode {
        @Override
        public Network apply(Graph graph) {
            Map<String, SteQuantizers.WeightQuantizer> w = new LinkedHashMap<>();
            Map<String, SteQuantizers.ActivationQuantizer> a = new LinkedHashMap<>();
            for (String node : quantizedWeights(graph)) w.put(node, new SteQuantizers.SymmetricWeights(weightBits));
            for (Node node : graph.nodes()) {
                if (node.op() instanceof Op.Relu) a.put(node.name(), new SteQuantizers.Pact(activationBits, PACT_INITIAL_ALPHA, PACT_ALPHA_DECAY));
            }
            return new Network(graph, w, a);
        }
    }

    /**
     * Sign-binarised weights scaled per channel (binary-weight network); activations stay in float. The
     * sign binariser for activations ({@link SteQuantizers.SignActivations}) needs a signed input, and in
     * the zoo's ResNets every conv reads a ReLU output (never negative, so its sign would be constant).
     */
    record BinaryWeights() implements QuantMode {
        @Override
        public Network apply(Graph graph) {
            Map<String, SteQuantizers.WeightQuantizer> w = new LinkedHashMap<>();
            for (String node : quantizedWeights(graph)) w.put(node, new SteQuantizers.SignWeights());
            return new Network(graph, w, Map.of());
        }
    }

    private static java.util.List<String> quantizedWeights(Graph graph) {
        java.util.List<String> names = new java.util.ArrayList<>();
        String firstConv = null, lastLinear = null;
        for (Node node : graph.nodes()) {
            if (node.op() instanceof Op.Conv2d && firstConv == null) firstConv = node.name();
            if (node.op() instanceof Op.Linear) lastLinear = node.name();
        }
        for (Node node : graph.nodes()) {
            boolean weighted = node.op() instanceof Op.Conv2d || node.op() instanceof Op.Linear;
            if (weighted && !node.name().equals(firstConv) && !node.name().equals(lastLinear)) names.add(node.name());
        }
        return names;
    }

    static QuantMode parse(String spec) {
        if (spec.equals("fp32")) return new Fp32();
        if (spec.equals("binary")) return new BinaryWeights();
        var m = java.util.regex.Pattern.compile("pact:(\\d+)/(\\d+)").matcher(spec);
        if (m.matches()) {
            int w = Integer.parseInt(m.group(1)), a = Integer.parseInt(m.group(2));
            BitWidths.weight(w, "--quant " + spec + ": weight");
            BitWidths.activation(a, "--quant " + spec + ": activation");
            return new PactMode(w, a);
        }
        throw new IllegalArgumentException("--quant " + spec + ": expected fp32, pact:W/A (e.g. pact:4/4) or binary");
    }
}
