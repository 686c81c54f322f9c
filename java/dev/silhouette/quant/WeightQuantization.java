package dev.silhouette.quant;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.Arrays;

/**
 * The one weight quantizer of every plan: weights [out, ...] split into groups (one, or one per output
 * channel, each with its own width), quantized signed symmetric ({@link Quantizers#symmetric}) at each
 * group's clip, optionally bias-corrected per output channel ({@link BiasCorrection}).
 */
public final class WeightQuantization {
    private WeightQuantization() {}

    /** The weights quantized and dequantized, with their codes (for entropy) and per-output-channel scales and offsets. */
    public record QuantizedWeights(Tensor values, int[] codes, float[] scales, float[] offsets) {}

    /**
     * Quantizes {@code w} group by group at {@code bits[g]}, clipped at {@code clip[g]}, or, with {@code clip}
     * null, at {@link #clips} without a prior.
     */
    public static QuantizedWeights quantize(Tensor w, int[] bits, float[] clip, boolean biasCorrection) {
        int channels = w.shape().dim(0), groups = bits.length;
        if (groups != 1 && groups != channels) {
            throw new IllegalArgumentException(groups + " weight groups for " + channels + " output channels; use 1 (per tensor) or " + channels + " (per channel)");
        }
        float[] alpha = clip != null ? clip : clips(w, bits, null);
        if (alpha.length != groups) throw new IllegalArgumentException(alpha.length + " weight clips for " + groups + " groups");
        int perGroup = w.size() / groups, channelsInGroup = channels / groups;
        float[] values = new float[w.size()];
        int[] codes = new int[w.size()];
        float[] scales = new float[channels], offsets = new float[channels];
        for (int g = 0; g < groups; g++) {
            Tensor slice = new Tensor(Shape.of(channelsInGroup, perGroup / channelsInGroup), Arrays.copyOfRange(w.data(), g * perGroup, (g + 1) * perGroup));
            QuantizedTensor q = Quantizers.symmetric(slice, bits[g], new float[] {alpha[g]});
            Tensor deq;
            if (biasCorrection) {
                BiasCorrection.Corrected c = BiasCorrection.correct(slice, q);
                deq = c.dequantize();
                for (int k = 0; k < channelsInGroup; k++) {
                    scales[g * channelsInGroup + k] = c.quantized().scales()[k];
                    offsets[g * channelsInGroup + k] = c.offsets()[k];
                }
            } else {
                deq = q.dequantize();
                for (int k = 0; k < channelsInGroup; k++) scales[g * channelsInGroup + k] = q.scales()[0];
            }
            System.arraycopy(deq.data(), 0, values, g * perGroup, perGroup);
            System.arraycopy(q.codes(), 0, codes, g * perGroup, perGroup);
        }
        return new QuantizedWeights(new Tensor(w.shape(), values), codes, scales, offsets);
    }

    /** Clip per group: the ACIQ clip of {@code prior} or max |w| at each group's width; 1-bit groups use the binary scale mean |w|. */
    public static float[] clips(Tensor w, int[] bits, Aciq.Prior prior) {
        int groups = bits.length, per = w.size() / groups;
        float[] alpha = new float[groups];
        for (int g = 0; g < groups; g++) {
            Tensor slice = new Tensor(Shape.of(per), Arrays.copyOfRange(w.data(), g * per, (g + 1) * per));
            if (bits[g] == 1) {
                double sum = 0;
                for (float v : slice.data()) sum += Math.abs(v);
                alpha[g] = (float) (sum / per);
            } else {
                alpha[g] = prior != null ? Aciq.symmetricAlpha(slice, bits[g], prior, 1)[0] : Quantizers.maxAbs(slice, 1)[0];
            }
        }
        return alpha;
    }
}
