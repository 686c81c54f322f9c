package dev.silhouette.pipeline;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.quant.Aciq;
import dev.silhouette.quant.ActivationStats;
import dev.silhouette.quant.BitAllocation;
import dev.silhouette.quant.Entropy;
import dev.silhouette.quant.PtqRecipe;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlan.Activations;
import dev.silhouette.pipeline.QuantPlan.LayerPlan;
import dev.silhouette.pipeline.QuantPlan.Weights;
import dev.silhouette.quant.Quantizers;
import dev.silhouette.quant.WeightQuantization;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Post-training quantization: a {@link PtqRecipe} and calibration statistics of a (BatchNorm-folded)
 * graph turned into a {@link QuantPlan} over every weighted layer (Conv2d and Linear).
 */
public final class PostTraining {
    private PostTraining() {}

    /** One layer's weight widths and the entropy of its weight codes, for the report. */
    public record LayerReport(String layer, double averageBits, float maxClip, long weights, double entropyBits, double huffmanBits) {}

    public record Result(QuantPlan plan, List<LayerReport> layers) {
        /** Average weight bits over all weights of the quantized layers. */
        public double averageWeightBits() {
            double bits = 0;
            long count = 0;
            for (LayerReport l : layers) {
                bits += l.averageBits() * l.weights();
                count += l.weights();
            }
            return bits / count;
        }
    }

    /** Weighted layers (Conv2d, Linear) in graph order. */
    public static List<Node> weightedLayers(Graph graph) {
        return graph.nodes().stream().filter(n -> n.op() instanceof Op.Conv2d || n.op() instanceof Op.Linear).toList();
    }

    /** Applies {@code recipe} to a BatchNorm-folded graph using calibration statistics of that graph. */
    public static Result plan(Graph folded, String model, PtqRecipe recipe, Calibration calibration) {
        String fingerprint = folded.fingerprint();
        if (!fingerprint.equals(calibration.fingerprint())) {
            throw new IllegalArgumentException("calibration statistics were collected on another model ('" + calibration.model() + "')");
        }
        List<Node> weighted = weightedLayers(folded);
        if (weighted.isEmpty()) throw new IllegalArgumentException("model '" + model + "' has no Conv2d or Linear layer to quantize");
        String first = weighted.getFirst().name(), last = weighted.getLast().name();
        List<LayerReport> reports = new ArrayList<>();
        Map<String, Weights> weights = new LinkedHashMap<>();
        Map<String, Activations.Affine> activations = new LinkedHashMap<>();
        for (Node node : weighted) {
            boolean edge = recipe.firstLastBits() != 0 && (node.name().equals(first) || node.name().equals(last));
            int wBits = edge ? recipe.firstLastBits() : recipe.weightBits();
            int aBits = edge ? recipe.firstLastBits() : recipe.activationBits();
            Tensor w = folded.parameter(node, "weight");
            int channels = w.shape().dim(0), groups = recipe.perChannel() ? channels : 1;
            int[] bits = new int[groups];
            Arrays.fill(bits, wBits);
            if (recipe.channelBits() && !edge) {
                double[] ranges = new double[channels];
                float[] a = recipe.weightAciq() != null ? Aciq.symmetricAlpha(w, wBits, recipe.weightAciq(), channels) : Quantizers.maxAbs(w, channels);
                for (int o = 0; o < channels; o++) ranges[o] = a[o];
                bits = BitAllocation.allocate(ranges, wBits);
            }
            float[] clip = WeightQuantization.clips(w, bits, recipe.weightAciq());
            Entropy.Report entropy = Entropy.of(WeightQuantization.quantize(w, bits, clip, recipe.biasCorrection()).codes());
            Weights.Symmetric scheme = new Weights.Symmetric(bits, clip, recipe.biasCorrection());
            weights.put(node.name(), scheme);
            float maxClip = 0;
            for (float c : clip) maxClip = Math.max(maxClip, c);
            reports.add(new LayerReport(node.name(), scheme.averageBits(), maxClip, w.size(), entropy.entropyBits(), entropy.huffmanBits()));
            String input = node.inputs().getFirst();
            ActivationStats s = calibration.layer(input);
            Aciq.Prior prior = recipe.activationAciq();
            float[] range = prior != null ? s.aciqRange(prior, aBits) : new float[] {(float) s.min(), (float) s.max()};
            Activations.Affine activation = new Activations.Affine(aBits, range[0], range[1]);
            if (recipe.activationChannelBits() && !edge && !s.channels().isEmpty()) activation = perChannel(aBits, range, s.channels(), prior);
            // A value read by several layers is quantized once, at the widest width asked of it.
            Activations.Affine previous = activations.get(input);
            if (previous == null || previous.bits() < aBits) activations.put(input, activation);
        }
        List<LayerPlan> layers = new ArrayList<>();
        for (Node node : weighted) {
            String input = node.inputs().getFirst();
            layers.add(new LayerPlan(node.name(), input, weights.get(node.name()), activations.get(input)));
        }
        return new Result(new QuantPlan(model, fingerprint, recipe.label(), new QuantPlan.SilhouetteSource.Learned(), layers), reports);
    }

    /** Channel widths allocated by clip width under an average of {@code bits}, each channel clipped at its own width. */
    private static Activations.Affine perChannel(int bits, float[] range, List<ActivationStats.ChannelStats> channels, Aciq.Prior prior) {
        int c = channels.size();
        double[] widths = new double[c];
        for (int i = 0; i < c; i++) {
            ActivationStats.ChannelStats cs = channels.get(i);
            float[] r = prior != null ? cs.aciqRange(prior, bits) : new float[] {(float) cs.min(), (float) cs.max()};
            widths[i] = r[1] - r[0];
        }
        int[] channelBits = BitAllocation.allocate(widths, bits);
        float[] lo = new float[c], hi = new float[c];
        for (int i = 0; i < c; i++) {
            ActivationStats.ChannelStats cs = channels.get(i);
            float[] r = prior != null ? cs.aciqRange(prior, channelBits[i]) : new float[] {(float) cs.min(), (float) cs.max()};
            lo[i] = r[0];
            hi[i] = r[1];
        }
        return new Activations.Affine(bits, range[0], range[1], channelBits, lo, hi);
    }
}
