package dev.silhouette.train;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlan.Activations;
import dev.silhouette.pipeline.QuantPlan.LayerPlan;
import dev.silhouette.pipeline.QuantPlan.Weights;
import dev.silhouette.quant.BitWidths;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What {@code --quant} selects, as a {@link QuantPlan}: the training network is that plan's rewrite
 * ({@link RegionFinetune#network}), and the trained model's plan ({@link #trained}) is what
 * {@code eval} and {@code run --plan} apply. As in the PACT paper, the first convolution (it reads the raw
 * image) and the classifier stay in full precision; every other Conv2d/Linear is a receiving layer, its
 * weights quantized per output channel and, in PACT mode, its input on a learned PACT grid. Like every
 * plan, PACT quantizes the inputs of those layers only: a value read also by a residual add or by the
 * pooling before the classifier reaches those readers in float.
 */
public sealed interface QuantMode permits QuantMode.Fp32, QuantMode.PactMode, QuantMode.BinaryWeights {

    /** The plan of this mode for {@code model} as it starts (named {@code name}); no layers for full precision. */
    QuantPlan plan(Graph model, String name);

    /** The spec it was parsed from, e.g. "pact:4/4". */
    String spec();

    /** The PACT paper's initial clipping level. */
    float PACT_INITIAL_ALPHA = 10f;
    /** L2 coefficient on alpha (the paper regularises alpha like the weights). */
    float PACT_ALPHA_DECAY = 5e-4f;

    record Fp32() implements QuantMode {
        @Override
        public QuantPlan plan(Graph model, String name) {
            return QuantMode.plan(model, name, spec(), List.of());
        }

        @Override
        public String spec() {
            return "fp32";
        }
    }

    /** W-bit symmetric per-channel weights, A-bit PACT activations at each receiving layer's input. */
    record PactMode(int weightBits, int activationBits) implements QuantMode {
        public PactMode {
            BitWidths.weight(weightBits, "--quant pact: weight");
            BitWidths.activation(activationBits, "--quant pact: activation");
        }

        @Override
        public QuantPlan plan(Graph model, String name) {
            List<LayerPlan> layers = new ArrayList<>();
            for (Node n : receivingLayers(model)) {
                requireNonNegativeInput(model, n);
                layers.add(new LayerPlan(n.name(), n.inputs().getFirst(), Weights.Symmetric.uniform(weightBits, outChannels(model, n)),
                        new Activations.Pact(activationBits, PACT_INITIAL_ALPHA)));
            }
            return QuantMode.plan(model, name, spec(), layers);
        }

        @Override
        public String spec() {
            return "pact:" + weightBits + "/" + activationBits;
        }
    }

    /**
     * Sign-binarised weights scaled per channel by mean |w| (binary-weight network: the plan's 1-bit
     * symmetric scheme); activations stay in float. A sign binariser for activations would need a signed
     * input, and in the zoo's ResNets every conv reads a ReLU output (never negative, so its sign would be
     * constant).
     */
    record BinaryWeights() implements QuantMode {
        @Override
        public QuantPlan plan(Graph model, String name) {
            List<LayerPlan> layers = new ArrayList<>();
            for (Node n : receivingLayers(model)) {
                layers.add(new LayerPlan(n.name(), n.inputs().getFirst(), Weights.Symmetric.uniform(1, outChannels(model, n)), new Activations.Float()));
            }
            return QuantMode.plan(model, name, spec(), layers);
        }

        @Override
        public String spec() {
            return "binary";
        }
    }

    /** The network that trains {@code plan} on {@code model}: the plan's rewrite, PACT clip levels learned under {@link #PACT_ALPHA_DECAY}. */
    static Network network(Graph model, QuantPlan plan) {
        return RegionFinetune.network(model, plan, new Network.RegionTraining(0f, true, false, PACT_ALPHA_DECAY));
    }

    /**
     * The plan of the trained network: keyed to the trained model (BatchNorm folded, as {@code eval} and {@code run}
     * load it), each PACT layer at the clip level it learned. {@code model} is the graph the network was built from.
     */
    static QuantPlan trained(Network network, Graph model, QuantPlan plan) {
        Graph trained = Passes.foldBatchNorm(model.withParameters(network.toGraph().parameters()));
        Map<String, Map<Integer, Float>> levels = network.clipLevels();
        List<LayerPlan> layers = new ArrayList<>();
        for (LayerPlan l : plan.layers()) {
            Activations a = switch (l.activations()) {
                case Activations.Pact p -> {
                    Float alpha = levels.getOrDefault(l.input(), Map.of()).get(p.bits());
                    if (alpha == null) throw new IllegalStateException("the network learned no clip level for '" + l.input() + "' at " + p.bits() + " bits");
                    yield new Activations.Pact(p.bits(), alpha);
                }
                case Activations.Float f -> f;
                default -> throw new IllegalArgumentException("training-time quantization learns float or PACT activations, not " + l.activations());
            };
            layers.add(new LayerPlan(l.layer(), l.input(), l.weights(), a));
        }
        return new QuantPlan(plan.model(), trained.fingerprint(), plan.label(), plan.silhouette(), layers);
    }

    /**
     * {@code plan} starting from the PACT clip levels {@code from} holds for the same layer, input and width
     * (a model trained before, for {@code --init}); the others keep theirs.
     */
    static QuantPlan startingFrom(QuantPlan plan, QuantPlan from) {
        List<LayerPlan> layers = new ArrayList<>();
        for (LayerPlan l : plan.layers()) {
            LayerPlan old = from.layer(l.layer());
            if (l.activations() instanceof Activations.Pact p && old != null && old.input().equals(l.input())
                    && old.activations() instanceof Activations.Pact q && q.bits() == p.bits()) {
                layers.add(new LayerPlan(l.layer(), l.input(), l.weights(), q));
            } else {
                layers.add(l);
            }
        }
        return new QuantPlan(plan.model(), plan.fingerprint(), plan.label(), plan.silhouette(), layers);
    }

    /** Every Conv2d and Linear but the first convolution and the last Linear (the classifier), in graph order. */
    private static List<Node> receivingLayers(Graph graph) {
        String firstConv = null, lastLinear = null;
        for (Node node : graph.nodes()) {
            if (node.op() instanceof Op.Conv2d && firstConv == null) firstConv = node.name();
            if (node.op() instanceof Op.Linear) lastLinear = node.name();
        }
        List<Node> out = new ArrayList<>();
        for (Node node : graph.nodes()) {
            boolean weighted = node.op() instanceof Op.Conv2d || node.op() instanceof Op.Linear;
            if (weighted && !node.name().equals(firstConv) && !node.name().equals(lastLinear)) out.add(node);
        }
        return out;
    }

    private static int outChannels(Graph graph, Node layer) {
        return graph.parameter(layer, "weight").shape().dim(0);
    }

    /** PACT's grid starts at 0: a layer reading signed values (not a ReLU output, or its max pool) would lose every negative one. */
    private static void requireNonNegativeInput(Graph graph, Node layer) {
        String value = layer.inputs().getFirst();
        Node producer = graph.nodes().stream().filter(n -> n.name().equals(value)).findFirst().orElse(null);
        while (producer != null && producer.op() instanceof Op.MaxPool) {
            String in = producer.inputs().getFirst();
            producer = graph.nodes().stream().filter(n -> n.name().equals(in)).findFirst().orElse(null);
        }
        if (producer == null || !(producer.op() instanceof Op.Relu)) {
            throw new IllegalArgumentException("--quant pact: layer '" + layer.name() + "' reads '" + value + "', which is not a ReLU output; "
                    + "PACT's [0, alpha] grid would drop its negative values");
        }
    }

    private static QuantPlan plan(Graph model, String name, String spec, List<LayerPlan> layers) {
        return new QuantPlan(name, Passes.foldBatchNorm(model).fingerprint(), "trained " + spec, new QuantPlan.SilhouetteSource.Learned(), layers);
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
