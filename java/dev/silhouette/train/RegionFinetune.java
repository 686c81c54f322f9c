package dev.silhouette.train;

import dev.silhouette.graph.Graph;
import dev.silhouette.pipeline.PlanRewrite;
import dev.silhouette.pipeline.QuantPlan;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Quantization-aware fine-tuning with region quantization in the loop (docs/REGION_QUANTIZATION.md,
 * "Fine-tuning"). The training network is the plan's rewrite applied to the model as trained, BatchNorm
 * unfolded: the plan's PACT and region quantizers sit before the convolutions (straight-through in the
 * backward), and instead of the rewrite's pre-quantized weights every planned convolution keeps its float
 * weight, fake-quantized in the forward by {@link SteQuantizers.SymmetricWeights} at the plan's width.
 * Per-output-channel symmetric quantization commutes with the per-channel scale BatchNorm folding
 * applies (the scale follows each channel's maximum), so the saved float weights, folded and quantized
 * by the main job, give the grid trained here.
 */
public final class RegionFinetune {
    private RegionFinetune() {}

    /**
     * The trainable network; its graph's parameters have the model's own names, so {@link Trainer#saveModel} writes a
     * loadable model. {@code plan} was made for the model folded (the values and layers it names are the same
     * unfolded); {@code regionTraining} says whether the branch (importance loss) and the clip levels learn too.
     */
    public static Network network(Graph model, QuantPlan plan, Network.RegionTraining regionTraining) {
        Map<String, SteQuantizers.WeightQuantizer> weights = new LinkedHashMap<>();
        for (QuantPlan.LayerPlan l : plan.layers()) {
            switch (l.activations()) {
                case QuantPlan.Activations.Pact p -> {}
                case QuantPlan.Activations.Region r when !r.perRegionWeights() -> {}
                default -> throw new IllegalArgumentException("fine-tuning supports PACT and shared-weight region activations, not "
                        + l.activations() + " (layer " + l.layer() + ")");
            }
            switch (l.weights()) {
                case QuantPlan.Weights.Float f -> {}
                // Per-channel widths are all one here: the straight-through quantizer takes a single width.
                case QuantPlan.Weights.Symmetric s when s.clip() == null && !s.biasCorrection() && java.util.Arrays.stream(s.bits()).distinct().count() == 1 ->
                        weights.put(l.layer(), new SteQuantizers.SymmetricWeights(s.bits()[0]));
                default -> throw new IllegalArgumentException("fine-tuning quantizes weights symmetric at one width and max |w|, not " + l.weights()
                        + " (layer " + l.layer() + ")");
            }
        }
        // The rewrite's nodes with the model's float weights (the shared form keeps every parameter name).
        Graph quantized = PlanRewrite.applyStructure(model, plan);
        Graph training = quantized.withParameters(new LinkedHashMap<>(model.parameters()));
        return new Network(training, weights, Map.of(), regionTraining);
    }
}
