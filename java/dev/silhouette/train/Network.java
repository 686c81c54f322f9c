package dev.silhouette.train;

import dev.silhouette.backend.cpu.CpuOps;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A graph made trainable: its parameters copied into mutable tensors, a forward pass that records what
 * the backward pass needs, and reverse-mode differentiation over the nodes in reverse order. The graph
 * is static, so the "tape" is simply the node list; values feeding several nodes (residual shortcuts)
 * sum their gradients.
 *
 * <p>Quantizers: a {@link SteQuantizers.WeightQuantizer} replaces a node's weight in the forward and passes
 * the gradient straight through (or through its window) to the float weight; activations are quantized
 * by the graph's own quantization ops (a plan's rewrite puts them there), whose clip levels can be
 * parameters of the network like any other ({@link RegionTraining#learnClipLevels}).
 */
public final class Network {
    /** PyTorch's default BatchNorm momentum: running = 0.9 running + 0.1 batch. */
    public static final float BN_MOMENTUM = 0.1f;

    private final Graph graph;
    private final Map<String, Tensor> parameters;
    private final Map<String, SteQuantizers.WeightQuantizer> weightQuantizers;
    private final float silhouetteWeight;
    private final boolean branchOnly;
    private final float clipLevelDecay;
    /** Whether the branch learns from its importance loss alone, which then stops at the branch's input. */
    private final boolean importanceStopsAtBranch;
    /** Quantizer node name -> the parameter holding its learned clip levels. */
    private final Map<String, String> clipLevelParameters;
    /** The smallest clip level training may reach (activation units). */
    public static final float MIN_CLIP_LEVEL = 1e-3f;

    public Network(Graph graph) {
        this(graph, Map.of(), RegionTraining.NONE);
    }

    /**
     * What training learns besides the weights, with a plan's quantizers in the loop (region fine-tuning, train --quant).
     *
     * @param silhouetteWeight weight of the silhouette's importance loss through every region quantizer
     *                         ({@link OpGradients#silhouetteImportance}); 0 leaves the silhouette without gradient.
     *                         Where the branch feeds nothing but region masks, this loss trains the branch only: it
     *                         stops at the branch's input, so it does not pull the shared blocks away from the task
     * @param learnClipLevels  whether the clip levels of the PACT and region quantizers are parameters (PACT's
     *                         straight-through alpha gradient, {@link OpGradients#regionQuantize}), named
     *                         {@code <node>.alpha}, one per region
     * @param branchOnly       whether only the silhouette branch (nodes named {@code silhouette} and {@code silhouette.*})
     *                         learns: every other node is frozen, its BatchNorm on running statistics, so the rest of the
     *                         model comes out bit for bit as it went in
     * @param clipLevelDecay   L2 coefficient of the regulariser decay / 2 * alpha^2 on learned clip levels (PACT's), added
     *                         to their gradient on top of the optimizer's weight decay
     */
    public record RegionTraining(float silhouetteWeight, boolean learnClipLevels, boolean branchOnly, float clipLevelDecay) {
        public static final RegionTraining NONE = new RegionTraining(0f, false, false);

        public RegionTraining {
            if (!(silhouetteWeight >= 0f) || Float.isInfinite(silhouetteWeight)) {
                throw new IllegalArgumentException("silhouette loss weight " + silhouetteWeight + " must be finite and at least 0");
            }
            if (branchOnly && learnClipLevels) {
                throw new IllegalArgumentException("training the silhouette branch only keeps the clip levels as they are; do not also learn them");
            }
            if (!(clipLevelDecay >= 0f) || Float.isInfinite(clipLevelDecay)) {
                throw new IllegalArgumentException("clip level decay " + clipLevelDecay + " must be finite and at least 0");
            }
            if (clipLevelDecay > 0f && !learnClipLevels) throw new IllegalArgumentException("a clip level decay needs learned clip levels");
        }

        public RegionTraining(float silhouetteWeight, boolean learnClipLevels, boolean branchOnly) {
            this(silhouetteWeight, learnClipLevels, branchOnly, 0f);
        }

        public RegionTraining(float silhouetteWeight, boolean learnClipLevels) {
            this(silhouetteWeight, learnClipLevels, false);
        }
    }

    /** @param weightQuantizers by node name (Conv2d or Linear): fake-quantizes that node's weight */
    public Network(Graph graph, Map<String, SteQuantizers.WeightQuantizer> weightQuantizers, RegionTraining regionTraining) {
        this.silhouetteWeight = regionTraining.silhouetteWeight();
        this.branchOnly = regionTraining.branchOnly();
        this.clipLevelDecay = regionTraining.clipLevelDecay();
        List<String> untrainable = new ArrayList<>();
        for (Node node : graph.nodes()) {
            if (!hasBackward(node.op())) untrainable.add(node.name() + " (" + Graph.opName(node.op()) + ")");
        }
        if (!untrainable.isEmpty()) {
            throw new IllegalArgumentException("training has no backward yet for " + String.join(", ", untrainable)
                    + "; train the model before importing or quantizing it");
        }
        this.graph = graph;
        this.importanceStopsAtBranch = silhouetteWeight > 0f && branchFeedsOnlyRegionMasks(graph);
        this.parameters = new LinkedHashMap<>();
        graph.parameters().forEach((name, t) -> parameters.put(name, t.copy()));
        for (String node : weightQuantizers.keySet()) {
            Op op = graph.node(node).op();
            if (!(op instanceof Op.Conv2d) && !(op instanceof Op.Linear)) {
                throw new IllegalArgumentException("weight quantizer on node '" + node + "' (" + Graph.opName(op) + "): only Conv2d and Linear have weights");
            }
        }
        this.weightQuantizers = Map.copyOf(weightQuantizers);
        Map<String, String> clipNodes = new LinkedHashMap<>();
        if (regionTraining.learnClipLevels()) {
            for (Node node : graph.nodes()) {
                float[] alphas = switch (node.op()) {
                    case Op.PactQuantize q -> new float[] {q.alpha()};
                    case Op.RegionQuantize q -> toArray(q.alphas());
                    default -> null;
                };
                if (alphas == null) continue;
                String name = node.name() + ".alpha";
                parameters.put(name, new Tensor(Shape.of(alphas.length), alphas));
                clipNodes.put(node.name(), name);
            }
        }
        this.clipLevelParameters = Map.copyOf(clipNodes);
    }

    /**
     * Whether branch values reach the rest of the graph only as RegionQuantize's silhouette (the 1x1 branch): then
     * its only gradient is the importance loss. The attention branch also feeds the prediction and is not such a one.
     */
    private static boolean branchFeedsOnlyRegionMasks(Graph graph) {
        boolean hasBranch = false;
        for (Node node : graph.nodes()) {
            if (inBranch(node.name())) {
                hasBranch = true;
                continue;
            }
            for (int i = 0; i < node.inputs().size(); i++) {
                if (inBranch(node.inputs().get(i)) && !(node.op() instanceof Op.RegionQuantize && i == 1)) return false;
            }
        }
        return hasBranch;
    }

    private static float[] toArray(List<Float> values) {
        float[] out = new float[values.size()];
        for (int i = 0; i < out.length; i++) out[i] = values.get(i);
        return out;
    }

    /**
     * The clip levels as they stand, by the value each quantizer reads and its width (the form
     * the plan asks for); empty unless they are learned.
     */
    public Map<String, Map<Integer, Float>> clipLevels() {
        Map<String, Map<Integer, Float>> out = new java.util.TreeMap<>();
        clipLevelParameters.forEach((nodeName, parameter) -> {
            Node node = graph.node(nodeName);
            float[] alphas = parameters.get(parameter).data();
            Map<Integer, Float> byBits = out.computeIfAbsent(node.inputs().getFirst(), k -> new java.util.TreeMap<>());
            switch (node.op()) {
                case Op.PactQuantize q -> byBits.put(q.bits(), clipped(alphas[0]));
                case Op.RegionQuantize q -> {
                    for (int r = 0; r < alphas.length; r++) byBits.put(q.policy().bits(r), clipped(alphas[r]));
                }
                default -> throw new IllegalStateException("node '" + nodeName + "' has no clip level");
            }
        });
        return out;
    }

    /** PACT keeps alpha positive; a step that would cross zero stops just above it. */
    private static float clipped(float alpha) {
        return Math.max(alpha, MIN_CLIP_LEVEL);
    }

    /** The op with its clip levels as learned so far (the op itself when they are not learned). */
    private Op.PactQuantize withClipLevels(Node node, Op.PactQuantize op) {
        String name = clipLevelParameters.get(node.name());
        return name == null ? op : new Op.PactQuantize(op.bits(), clipped(parameters.get(name).data()[0]));
    }

    /** The node with its clip levels as learned so far (the node itself when they are not learned). */
    private Node withClipLevels(Node node) {
        Op op = switch (node.op()) {
            case Op.PactQuantize q -> withClipLevels(node, q);
            case Op.RegionQuantize q -> withClipLevels(node, q);
            default -> node.op();
        };
        return op == node.op() ? node : new Node(node.name(), op, node.inputs());
    }

    private Op.RegionQuantize withClipLevels(Node node, Op.RegionQuantize op) {
        String name = clipLevelParameters.get(node.name());
        if (name == null) return op;
        List<Float> alphas = new ArrayList<>();
        for (float a : parameters.get(name).data()) alphas.add(clipped(a));
        return new Op.RegionQuantize(op.policy(), alphas, op.resize(), op.order(), op.onlyRegion());
    }

    public Graph graph() {
        return graph;
    }

    /**
     * Whether this class differentiates {@code op}: the catalog's ops and the region-quantization pass's
     * PACT and region quantizers (straight-through) do; imported-model ops, DRQ and the training-free
     * silhouettes not yet.
     */
    static boolean hasBackward(Op op) {
        return switch (op) {
            case Op.Conv2d o -> true;
            case Op.BatchNorm o -> true;
            case Op.Relu o -> true;
            case Op.Clip o -> true;
            case Op.Add o -> true;
            case Op.MaxPool o -> true;
            case Op.AvgPool o -> true;
            case Op.GlobalAvgPool o -> true;
            case Op.Linear o -> true;
            case Op.Flatten o -> true;
            case Op.Sigmoid o -> true;
            case Op.Softmax o -> true;
            case Op.Interpolate o -> true;
            case Op.Concat o -> true;
            case Op.Elementwise o -> false;
            case Op.ElementwiseConstant o -> false;
            case Op.HardSigmoid o -> false;
            case Op.HardSwish o -> false;
            case Op.Reshape o -> false;
            case Op.Pad o -> false;
            case Op.PactQuantize o -> true;
            case Op.AffineQuantize o -> false;
            case Op.LowBitConv2d o -> false;
            case Op.RegionMap o -> false;
            case Op.RegionQuantize o -> true;
            case Op.DrqQuantize o -> false;
            // Forward only: the attention branch's squeeze feeds only RegionQuantize's silhouette input, which
            // passes no gradient (hard thresholds), so no gradient ever reaches it; backwardNode refuses one.
            case Op.ChannelSqueeze o -> true;
            case Op.NoiseSilhouette o -> false;
            case Op.LogitBlend o -> true;
        };
    }

    private static IllegalStateException refused(Node node) {
        return new IllegalStateException("node '" + node.name() + "' has no backward; the constructor refuses such graphs");
    }

    /** The weight quantizers by node and the graph's activation quantizers (as they started), in a stable order (empty for a float network). */
    public String quantization() {
        Map<String, Op> activations = new java.util.TreeMap<>();
        for (Node node : graph.nodes()) {
            switch (node.op()) {
                case Op.PactQuantize q -> activations.put(node.name(), q);
                case Op.RegionQuantize q -> activations.put(node.name(), q);
                default -> {}
            }
        }
        return new java.util.TreeMap<>(weightQuantizers) + " " + activations;
    }

    /** All live values: the graph's parameters and buffers, then the quantizers' parameters. Mutated by training. */
    public Map<String, Tensor> parameters() {
        return parameters;
    }

    /** Names an optimizer updates: everything but BatchNorm running statistics. */
    public List<String> trainable() {
        List<String> names = new ArrayList<>();
        for (String name : parameters.keySet()) if (!isBuffer(name)) names.add(name);
        return names;
    }

    static boolean isBuffer(String name) {
        return name.substring(name.lastIndexOf('.') + 1).startsWith("running_");
    }

    /** The graph with the current parameter values (copies), ready for inference or saving. */
    public Graph toGraph() {
        Map<String, Tensor> p = new LinkedHashMap<>();
        for (String name : graph.parameters().keySet()) p.put(name, parameters.get(name).copy());
        return graph.withParameters(p);
    }

    /** Overwrites parameter values by name (e.g. from a checkpoint); shapes must match. */
    public void load(Map<String, Tensor> values) {
        values.forEach((name, t) -> {
            Tensor mine = parameters.get(name);
            if (mine == null) return;
            if (!mine.shape().equals(t.shape())) {
                throw new IllegalArgumentException("parameter '" + name + "' has shape " + t.shape() + ", the network needs " + mine.shape());
            }
            System.arraycopy(t.data(), 0, mine.data(), 0, t.size());
        });
    }

    /** Everything one forward pass leaves for its backward pass. */
    public static final class Pass {
        final boolean training;
        final Map<String, Tensor> values = new HashMap<>();
        final Map<String, Tensor> quantizedWeights = new HashMap<>();
        final Map<String, OpGradients.BatchStats> batchStats = new HashMap<>();

        Pass(boolean training) {
            this.training = training;
        }

        public Tensor value(String name) {
            Tensor t = values.get(name);
            if (t == null) throw new IllegalArgumentException("no value named '" + name + "' in this pass");
            return t;
        }
    }

    /**
     * Runs the graph. In training mode BatchNorm normalises with the batch's statistics and updates its
     * running statistics (as PyTorch's train()); otherwise it uses the running statistics.
     */
    public Pass forward(Map<String, Tensor> inputs, boolean training) {
        Pass pass = new Pass(training);
        for (Graph.Input in : graph.inputs()) {
            Tensor t = inputs.get(in.name());
            if (t == null) throw new IllegalArgumentException("missing graph input '" + in.name() + "'");
            int[] dims = t.shape().dims();
            if (!Shape.of(java.util.Arrays.copyOfRange(dims, 1, dims.length)).equals(in.sampleShape())) {
                throw new IllegalArgumentException("input '" + in.name() + "' has shape " + t.shape() + ", the model takes N x " + in.sampleShape());
            }
            pass.values.put(in.name(), t);
        }
        for (Node node : graph.nodes()) {
            List<Tensor> xs = new ArrayList<>(node.inputs().size());
            for (String i : node.inputs()) xs.add(pass.values.get(i));
            pass.values.put(node.name(), forwardNode(node, xs, pass));
        }
        return pass;
    }

    private Tensor param(Node node, String suffix) {
        return parameters.get(node.name() + "." + suffix);
    }

    private Tensor weight(Node node, Pass pass) {
        Tensor w = param(node, "weight");
        SteQuantizers.WeightQuantizer q = weightQuantizers.get(node.name());
        if (q == null) return w;
        Tensor wq = q.forward(w);
        pass.quantizedWeights.put(node.name(), wq);
        return wq;
    }

    /**
     * The backend's dispatch on training's values: the live parameters, the weight quantizers' weights and
     * the clip levels learned so far. Training-mode BatchNorm is the one op that does not go through it: it
     * normalises with the batch's statistics, updates the running ones and keeps the batch's for the
     * backward, training state the inference kernels have no business holding (a training flag there
     * would make the backend depend on this package).
     */
    private Tensor forwardNode(Node node, List<Tensor> xs, Pass pass) {
        if (node.op() instanceof Op.BatchNorm op && pass.training && !frozen(node.name())) {
            Tensor x = xs.getFirst();
            OpGradients.BatchStats stats = OpGradients.batchStats(x, op.eps());
            pass.batchStats.put(node.name(), stats);
            OpGradients.updateRunningStats(param(node, "running_mean"), param(node, "running_var"), stats, BN_MOMENTUM);
            return OpGradients.batchNormTrain(x, param(node, "weight"), param(node, "bias"), stats);
        }
        return CpuOps.forward(withClipLevels(node), xs, suffix -> suffix.equals("weight") ? weight(node, pass) : param(node, suffix));
    }

    /**
     * Gradients of the loss with respect to every parameter the given output gradients reach. Parameters
     * no gradient reaches (e.g. a branch whose output feeds no loss) are absent, so optimizers leave
     * them alone, as PyTorch does with parameters whose grad is None.
     */
    public Map<String, Tensor> backward(Pass pass, Map<String, Tensor> outputGrads) {
        return backward(pass, outputGrads, false);
    }

    /** As {@link #backward(Pass, Map)}; with {@code inputGrads} the graph inputs' gradients are included under their names. */
    public Map<String, Tensor> backward(Pass pass, Map<String, Tensor> outputGrads, boolean inputGrads) {
        if (!pass.training) {
            // Inference-mode BatchNorm is differentiable too, but training code should not mix them up silently.
            throw new IllegalStateException("backward needs a training-mode forward pass");
        }
        Map<String, Tensor> grads = new HashMap<>();
        outputGrads.forEach((name, g) -> addGrad(grads, name, g));
        Map<String, Tensor> paramGrads = new LinkedHashMap<>();
        List<Node> nodes = graph.nodes();
        for (int i = nodes.size() - 1; i >= 0; i--) {
            Node node = nodes.get(i);
            Tensor dy = grads.remove(node.name());
            if (dy == null) continue;
            if (importanceStopsAtBranch && inBranch(node.name())) {
                Map<String, Tensor> withinBranch = new HashMap<>();
                backwardNode(node, pass, dy, withinBranch, paramGrads, inputGrads);
                withinBranch.forEach((name, g) -> {
                    if (inBranch(name)) addGrad(grads, name, g);
                });
            } else {
                backwardNode(node, pass, dy, grads, paramGrads, inputGrads);
            }
        }
        if (inputGrads) {
            for (Graph.Input in : graph.inputs()) if (grads.containsKey(in.name())) paramGrads.put(in.name(), grads.get(in.name()));
        }
        if (branchOnly) paramGrads.keySet().removeIf(name -> !inBranch(name));
        return paramGrads;
    }

    /** Whether a node (or a parameter, by its node's name) belongs to the silhouette branch. */
    private static boolean inBranch(String name) {
        return name.equals(Models.SILHOUETTE) || name.startsWith(Models.SILHOUETTE + ".");
    }

    private boolean frozen(String node) {
        return branchOnly && !inBranch(node);
    }

    private static void addGrad(Map<String, Tensor> grads, String name, Tensor g) {
        Tensor existing = grads.get(name);
        if (existing == null) grads.put(name, g);
        else {
            Tensor sum = existing.copy();
            OpGradients.accumulate(sum.data(), g.data());
            grads.put(name, sum);
        }
    }

    /** Whether a silhouette comes from a node that can learn: not a graph input, a channel squeeze or noise. */
    private boolean learnable(String silhouette) {
        if (isGraphInput(silhouette)) return false;
        return switch (graph.node(silhouette).op()) {
            case Op.ChannelSqueeze o -> false;
            case Op.NoiseSilhouette o -> false;
            default -> true;
        };
    }

    private boolean isGraphInput(String name) {
        for (Graph.Input in : graph.inputs()) if (in.name().equals(name)) return true;
        return false;
    }

    private void backwardNode(Node node, Pass pass, Tensor dy, Map<String, Tensor> grads, Map<String, Tensor> paramGrads, boolean inputGrads) {
        String in0 = node.inputs().getFirst();
        Tensor x = pass.values.get(in0);
        Tensor y = pass.values.get(node.name());
        boolean needInput = inputGrads || !isGraphInput(in0);
        String prefix = node.name() + ".";
        switch (node.op()) {
            case Op.Conv2d op -> {
                Tensor w = pass.quantizedWeights.getOrDefault(node.name(), param(node, "weight"));
                // A frozen layer's weight gradient would be dropped anyway, so it is not computed.
                OpGradients.ConvGrads g = OpGradients.conv2d(x, w, dy, op, needInput, !frozen(node.name()));
                if (g.weight() != null) paramGrads.put(prefix + "weight", weightGrad(node, g.weight()));
                if (g.bias() != null) paramGrads.put(prefix + "bias", g.bias());
                if (needInput) addGrad(grads, in0, g.input());
            }
            case Op.BatchNorm op when frozen(node.name()) -> {
                if (needInput) {
                    addGrad(grads, in0, OpGradients.batchNormEval(x, param(node, "weight"), param(node, "running_mean"), param(node, "running_var"),
                            op.eps(), dy).input());
                }
            }
            case Op.BatchNorm op -> {
                OpGradients.BatchNormGrads g = OpGradients.batchNormTrain(x, param(node, "weight"), pass.batchStats.get(node.name()), dy);
                paramGrads.put(prefix + "weight", g.gamma());
                paramGrads.put(prefix + "bias", g.beta());
                if (needInput) addGrad(grads, in0, g.input());
            }
            case Op.Relu op -> addGrad(grads, in0, OpGradients.relu(y, dy));
            case Op.Clip op -> addGrad(grads, in0, OpGradients.clip(x, dy, op));
            case Op.Add op -> {
                addGrad(grads, in0, dy);
                addGrad(grads, node.inputs().get(1), dy);
            }
            case Op.MaxPool op -> addGrad(grads, in0, OpGradients.maxPool(x, dy, op));
            case Op.AvgPool op -> addGrad(grads, in0, OpGradients.avgPool(x, dy, op));
            case Op.GlobalAvgPool op -> addGrad(grads, in0, OpGradients.globalAvgPool(x.shape(), dy));
            case Op.Linear op -> {
                Tensor w = pass.quantizedWeights.getOrDefault(node.name(), param(node, "weight"));
                OpGradients.LinearGrads g = OpGradients.linear(x, w, dy, op, needInput);
                paramGrads.put(prefix + "weight", weightGrad(node, g.weight()));
                if (g.bias() != null) paramGrads.put(prefix + "bias", g.bias());
                if (needInput) addGrad(grads, in0, g.input());
            }
            case Op.Flatten op -> addGrad(grads, in0, dy.reshape(x.shape()));
            case Op.Sigmoid op -> addGrad(grads, in0, OpGradients.sigmoid(y, dy));
            case Op.Softmax op -> addGrad(grads, in0, OpGradients.softmax(y, dy));
            case Op.Interpolate op -> addGrad(grads, in0, OpGradients.interpolate(x.shape(), dy, op));
            case Op.Concat op -> {
                List<Shape> shapes = new ArrayList<>();
                for (String i : node.inputs()) shapes.add(pass.values.get(i).shape());
                List<Tensor> parts = OpGradients.concat(shapes, dy, op);
                for (int i = 0; i < parts.size(); i++) {
                    if (inputGrads || !isGraphInput(node.inputs().get(i))) addGrad(grads, node.inputs().get(i), parts.get(i));
                }
            }
            case Op.Elementwise op -> throw refused(node);
            case Op.ElementwiseConstant op -> throw refused(node);
            case Op.HardSigmoid op -> throw refused(node);
            case Op.HardSwish op -> throw refused(node);
            case Op.Reshape op -> throw refused(node);
            case Op.Pad op -> throw refused(node);
            case Op.AffineQuantize op -> throw refused(node);
            case Op.LowBitConv2d op -> throw refused(node);
            case Op.RegionMap op -> throw refused(node);
            case Op.PactQuantize stored -> {
                OpGradients.QuantizerGrads g = OpGradients.pactQuantize(x, dy, withClipLevels(node, stored));
                if (needInput) addGrad(grads, in0, g.input());
                String alpha = clipLevelParameters.get(node.name());
                if (alpha != null) paramGrads.put(alpha, decayed(g.clipLevels(), alpha));
            }
            // The silhouette (input 1) only picks each pixel's region, so the hard masks pass it no gradient; with a
            // silhouette weight it gets its importance loss instead, where a learnable branch produces it.
            case Op.RegionQuantize stored -> {
                Op.RegionQuantize op = withClipLevels(node, stored);
                String in1 = node.inputs().get(1);
                Tensor silhouette = pass.values.get(in1);
                OpGradients.QuantizerGrads g = OpGradients.regionQuantize(x, silhouette, dy, op);
                if (needInput) addGrad(grads, in0, g.input());
                String alpha = clipLevelParameters.get(node.name());
                if (alpha != null) paramGrads.put(alpha, decayed(g.clipLevels(), alpha));
                if (silhouetteWeight > 0f && op.onlyRegion() < 0 && learnable(in1)) {
                    addGrad(grads, in1, OpGradients.silhouetteImportance(x, silhouette, dy, op, silhouetteWeight));
                }
            }
            case Op.DrqQuantize op -> throw refused(node);
            // Its per-image min-max rescale and top-k choice are not differentiated: the silhouette only picks
            // regions through RegionQuantize, which passes it no gradient, so a gradient here is a caller's mistake.
            case Op.ChannelSqueeze op -> throw new IllegalArgumentException("node '" + node.name()
                    + "' (channel squeeze, a silhouette) is not differentiated; request gradients of the logits, not of the silhouette");
            case Op.NoiseSilhouette op -> throw refused(node);
            case Op.LogitBlend op -> {
                String in1 = node.inputs().get(1);
                OpGradients.BlendGrads g = OpGradients.logitBlend(x, pass.values.get(in1), param(node, "gate"), dy);
                paramGrads.put(prefix + "gate", g.gate());
                if (needInput) addGrad(grads, in0, g.main());
                if (inputGrads || !isGraphInput(in1)) addGrad(grads, in1, g.aux());
            }
        }
    }

    /** A clip level's gradient with its L2 term {@code decay * alpha} (of the live, unclamped value the optimizer moves). */
    private Tensor decayed(Tensor grad, String parameter) {
        if (clipLevelDecay == 0f) return grad;
        float[] g = grad.data().clone(), alpha = parameters.get(parameter).data();
        for (int i = 0; i < g.length; i++) g[i] += clipLevelDecay * alpha[i];
        return new Tensor(grad.shape(), g);
    }

    /** The gradient reaching the float weight: through the weight quantizer's straight-through estimator if any. */
    private Tensor weightGrad(Node node, Tensor dQuantized) {
        SteQuantizers.WeightQuantizer q = weightQuantizers.get(node.name());
        return q == null ? dQuantized : q.backward(param(node, "weight"), dQuantized);
    }
}
