package dev.silhouette.quant;

import dev.silhouette.tensor.Tensor;

/**
 * GDRQ: distribution reshaping, then group-based quantization folded into the following BatchNorm.
 *
 * <p>Scale-Clip reshapes a tensor toward a uniform distribution: x' = clip(x / (k mean|x|), -1, 1). For
 * data uniform on [-a, a], mean |x| = a / 2, so k = 2 maps it exactly onto [-1, 1]; heavier-tailed data
 * lose their tails to the clip and spread their bulk over the grid, which uniform low-bit grids suit.
 *
 * <p>Group-based quantization splits a layer's output filters into G contiguous groups (group g holds
 * filters [g O / G, (g + 1) O / G)); each group has its own statistic m_g = mean |w| over the group and
 * its own step s_g = k m_g / qmax, and codes q = rint(clip(w / (k m_g), -1, 1) qmax), signed symmetric.
 * The layer computes integer accumulators acc_o = q_o * x, its real output is s_g acc_o + b_o, and a
 * following inference BatchNorm makes it
 * <pre>
 *   gamma_o (s_g acc_o + b_o - mu_o) / sqrt(var_o + eps) + beta_o = A_o acc_o + B_o,
 *   A_o = gamma_o s_g / sqrt(var_o + eps),   B_o = beta_o + gamma_o (b_o - mu_o) / sqrt(var_o + eps),
 * </pre>
 * one per-channel affine map, so the per-group parameters cost nothing at inference.
 */
public final class Gdrq {
    private Gdrq() {}

    public record GroupQuantized(Tensor fullPrecision, int[] codes, int bits, float[] groupScales) {
        public int groups() {
            return groupScales.length;
        }

        /** Real weights: s_g q. */
        public Tensor dequantize() {
            float[] out = new float[codes.length];
            int per = codes.length / groupScales.length;
            for (int i = 0; i < out.length; i++) out[i] = codes[i] * groupScales[i / per];
            return new Tensor(fullPrecision.shape(), out);
        }

        /** The codes as a float tensor, the weights of the integer accumulator. */
        public Tensor codesAsWeights() {
            float[] out = new float[codes.length];
            for (int i = 0; i < out.length; i++) out[i] = codes[i];
            return new Tensor(fullPrecision.shape(), out);
        }
    }

    /** Scale-Clip with one statistic per group of axis 0 (groups must divide its size). */
    public static Tensor scaleClip(Tensor x, double k, int groups) {
        float[] m = groupMeanAbs(x, groups);
        float[] out = new float[x.size()];
        int per = x.size() / groups;
        for (int i = 0; i < out.length; i++) {
            float denom = (float) (k * m[i / per]);
            out[i] = denom == 0 ? 0 : Math.max(-1f, Math.min(1f, x.data()[i] / denom));
        }
        return new Tensor(x.shape(), out);
    }

    public static GroupQuantized quantize(Tensor w, int bits, int groups, double k) {
        BitWidths.weight(bits, "GDRQ");
        if (!(k > 0)) throw new IllegalArgumentException("Scale-Clip factor k " + k + " must be positive");
        float[] m = groupMeanAbs(w, groups);
        Tensor reshaped = scaleClip(w, k, groups);
        int qmax = Scheme.SYMMETRIC.qmax(bits);
        int[] codes = new int[w.size()];
        for (int i = 0; i < codes.length; i++) codes[i] = (int) Math.rint(reshaped.data()[i] * qmax);
        float[] scales = new float[groups];
        for (int g = 0; g < groups; g++) scales[g] = (float) (k * m[g] / qmax);
        return new GroupQuantized(w, codes, bits, scales);
    }

    /** Folds group steps, conv bias (may be null) and BatchNorm into one per-channel affine map of the accumulator. */
    public static ChannelAffine fold(GroupQuantized q, float[] bias, float[] gamma, float[] beta, float[] mean, float[] var, float eps) {
        int out = q.fullPrecision().shape().dim(0), perGroup = out / q.groups();
        float[] a = new float[out], b = new float[out];
        for (int o = 0; o < out; o++) {
            double inv = 1 / Math.sqrt((double) var[o] + eps);
            a[o] = (float) (gamma[o] * q.groupScales()[o / perGroup] * inv);
            b[o] = (float) (beta[o] + gamma[o] * ((bias == null ? 0 : bias[o]) - mean[o]) * inv);
        }
        return new ChannelAffine(a, b);
    }

    private static float[] groupMeanAbs(Tensor x, int groups) {
        int channels = x.shape().dim(0);
        if (groups < 1 || channels % groups != 0) {
            throw new IllegalArgumentException("GDRQ groups " + groups + " must divide the " + channels + " output channels");
        }
        float[] m = new float[groups];
        int per = x.size() / groups;
        for (int g = 0; g < groups; g++) {
            double s = 0;
            for (int i = g * per; i < (g + 1) * per; i++) s += Math.abs(x.data()[i]);
            m[g] = (float) (s / per);
        }
        return m;
    }
}
