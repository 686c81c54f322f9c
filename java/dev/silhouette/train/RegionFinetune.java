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
 * weight, fake-quantized in the forward by {@link SteQuantizers.SymmetricWeights} at the plan's width
 * ({@link SteQuantizers.SignWeights} at 1 bit). Training-time quantization ({@link QuantMode}) builds its
 * network here too.
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
        // The rewrite's nodes (it checks the plan's layers against the model) with the model's float weights (the shared form
        // keeps every parameter name).
        Graph quantized = PlanRewrite.applyStructure(model, plan);
        Map<String, SteQuantizers.WeightQuantizer> weights = new LinkedHashMap<>();
        for (QuantPlan.LayerPlan l : plan.layers()) {
            switch (l.activations()) {
                case QuantPlan.Activations.Float f -> {}
                case QuantPlan.Activations.Pact p -> {}
                case QuantPlan.Activations.Region r when !r.perRegionWeights() -> {}
                default -> throw new IllegalArgumentException("training supports float, PACT and shared-weight region activations, not "
                        + l.activations() + " (layer " + l.layer() + ")");
            }
            switch (l.weights()) {
                case QuantPlan.Weights.Float f -> {}
                // Per-channel widths are all one here: the straight-through quantizer takes a single width.
                case QuantPlan.Weights.Symmetric s when s.clip() == null && !s.biasCorrection() && perChannelAtOneWidth(model, l.layer(), s.bits()) ->
                        weights.put(l.layer(), s.bits()[0] == 1 ? new SteQuantizers.SignWeights() : new SteQuantizers.SymmetricWeights(s.bits()[0]));
                default -> throw new IllegalArgumentException("training quantizes weights symmetric per output channel at one width and max |w| "
                        + "(mean |w| at 1 bit), not " + l.weights() + " (layer " + l.layer() + ")");
            }
        }
        Graph training = quantized.withParameters(new LinkedHashMap<>(model.parameters()));
        return new Network(training, weights, regionTraining);
    }

    /** The straight-through quantizers scale each output channel by its own max |w|; a per-tensor plan would be another grid. */
    private static boolean perChannelAtOneWidth(Graph model, String layer, int[] bits) {
        int channels = model.parameters().get(layer + ".weight").shape().dim(0);
        return bits.length == channels && java.util.Arrays.stream(bits).distinct().count() == 1;
    }
}
