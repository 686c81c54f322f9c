package dev.silhouette.train;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.RegionQuantization;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Quantization-aware fine-tuning with region quantization in the loop (docs/REGION_QUANTIZATION.md,
 * "Fine-tuning"). The training network is the region pass applied to the model as trained, BatchNorm
 * unfolded: the pass's PACT and region quantizers sit before the convolutions (straight-through in the
 * backward, clip levels fixed), and instead of the pass's pre-quantized weights every quantized
 * convolution keeps its float weight, fake-quantized in the forward by {@link SteQuantizers.SymmetricWeights}
 * at the plan's width. Per-output-channel symmetric quantization commutes with the per-channel scale
 * BatchNorm folding applies (the scale follows each channel's maximum), so the saved float weights, folded
 * and quantized by the main job, give the grid trained here.
 */
public final class RegionFinetune {
    private RegionFinetune() {}

    /**
     * The trainable network; its graph's parameters have the model's own names, so {@link Trainer#saveModel} writes a
     * loadable model. {@code regionTraining} says whether the branch (importance loss) and the clip levels learn too.
     */
    public static Network network(Graph model, RegionQuantization.Plan plan, RegionQuantization.ClipLevels clips,
                                  Network.RegionTraining regionTraining) {
        int receivingWeightBits = switch (plan.scheme()) {
            case RegionQuantization.Scheme.Region r when r.form() == RegionQuantization.WeightForm.SHARED -> r.weightBits();
            // The uniform scheme is the baseline fine-tuned the same way, so region and uniform compare at equal effort.
            case RegionQuantization.Scheme.Uniform u -> u.weightBits();
            default -> throw new IllegalArgumentException("fine-tuning supports the shared-weight region scheme and the uniform one, not " + plan.scheme());
        };
        // The pass's nodes with the model's float weights (the shared form keeps every parameter name).
        Graph quantized = RegionQuantization.apply(model, plan, clips);
        Graph training = quantized.withParameters(new LinkedHashMap<>(model.parameters()));
        RegionQuantization.Layers layers = RegionQuantization.layers(model);
        Map<String, SteQuantizers.WeightQuantizer> weights = new LinkedHashMap<>();
        if (plan.preBranchBits() != 32) {
            int bits = new RegionQuantization.Scheme.Uniform(plan.preBranchBits()).weightBits();
            for (Node n : layers.preBranch()) weights.put(n.name(), new SteQuantizers.SymmetricWeights(bits));
        }
        if (receivingWeightBits != 32) {
            for (Node n : layers.receiving()) weights.put(n.name(), new SteQuantizers.SymmetricWeights(receivingWeightBits));
        }
        return new Network(training, weights, Map.of(), regionTraining);
    }
}
