package dev.silhouette.quant;

import dev.silhouette.tensor.Tensor;

/**
 * Bias correction of quantized weights (Banner et al. 2019): quantization shifts each output channel's
 * mean and shrinks or stretches its spread, which shifts the layer's outputs systematically. Per output
 * channel o, with w the full-precision weights and w^ = s (q - z) the dequantized ones,
 * <pre>
 *   w~ = xi_o (w^ - mean(w^)) + mean(w),   xi_o = std(w) / std(w^)
 *      = (xi_o s) (q - z) + (mean(w) - xi_o mean(w^))
 * </pre>
 * so the codes stay as they are, the channel's scale becomes xi_o s, and a per-channel offset is added.
 * In a convolution the offset contributes offset_o * (sum of the input window), one extra window sum
 * per pixel shared by all output channels (the same term gemmlowp computes for a zero point). A channel
 * whose quantized weights are constant (std 0) keeps xi = 1: no spread can be restored from one level.
 */
public final class BiasCorrection {
    private BiasCorrection() {}

    /** Codes with per-channel scales xi_o s and zero points, plus the per-channel offsets. */
    public record Corrected(QuantizedTensor quantized, float[] offsets) {
        public Tensor dequantize() {
            Tensor t = quantized.dequantize();
            int per = t.size() / offsets.length;
            for (int i = 0; i < t.size(); i++) t.data()[i] += offsets[i / per];
            return t;
        }
    }

    public static Corrected correct(Tensor fullPrecision, QuantizedTensor quantized) {
        if (!fullPrecision.shape().equals(quantized.shape())) {
            throw new IllegalArgumentException("weights " + fullPrecision.shape() + " and quantized weights " + quantized.shape() + " differ in shape");
        }
        int channels = fullPrecision.shape().dim(0);
        int per = fullPrecision.size() / channels;
        float[] w = fullPrecision.data();
        float[] wq = quantized.dequantize().data();
        float[] scales = new float[channels], offsets = new float[channels];
        int[] zeroPoints = new int[channels];
        int perGroup = quantized.groupSize();
        for (int o = 0; o < channels; o++) {
            int g = (o * per) / perGroup;
            double[] fp = meanStd(w, o * per, per), q = meanStd(wq, o * per, per);
            double xi = q[1] > 0 ? fp[1] / q[1] : 1;
            scales[o] = (float) (xi * quantized.scales()[g]);
            zeroPoints[o] = quantized.zeroPoints()[g];
            offsets[o] = (float) (fp[0] - xi * q[0]);
        }
        return new Corrected(new QuantizedTensor(quantized.shape(), quantized.codes(), quantized.bits(), quantized.scheme(), scales, zeroPoints), offsets);
    }

    /** Mean and population standard deviation of v[from, from + n), in double. */
    static double[] meanStd(float[] v, int from, int n) {
        double mean = 0;
        for (int i = from; i < from + n; i++) mean += v[i];
        mean /= n;
        double var = 0;
        for (int i = from; i < from + n; i++) var += (v[i] - mean) * (v[i] - mean);
        return new double[] {mean, Math.sqrt(var / n)};
    }
}
