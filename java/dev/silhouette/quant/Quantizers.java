package dev.silhouette.quant;

import dev.silhouette.tensor.Tensor;

/**
 * The uniform quantizers (docs/QUANTIZATION.md). Every code is computed in float32 exactly as
 * {@code clamp(rint(x / scale) + zeroPoint, qmin, qmax)}: one correctly rounded division, then
 * round-half-to-even (IEEE's default, CUDA's {@code __float2int_rn}), so a kernel can match bit for bit.
 * Ranges come in per group: one value for a per-tensor quantizer, one per index of axis 0 (output
 * channel) for a per-channel one; {@link #maxAbs}, {@link #minimum}, {@link #maximum} and {@link Aciq}
 * compute them.
 */
public final class Quantizers {
    private Quantizers() {}

    /**
     * Signed symmetric: scale = alpha / qmax (b >= 2) and codes in [-qmax, qmax]; b = 1 is sign
     * binarization with scale alpha (codes -1, +1; 0 maps to +1). alpha = 0 gives scale 0 and all codes 0
     * (b >= 2), the only grid that holds an all-zero channel.
     */
    public static QuantizedTensor symmetric(Tensor x, int bits, float[] alpha) {
        BitWidths.code(bits, "symmetric quantizer");
        int groups = checkGroups(x, alpha.length, "alpha");
        int qmax = Scheme.SYMMETRIC.qmax(bits), qmin = Scheme.SYMMETRIC.qmin(bits);
        float[] scales = new float[groups];
        float[] v = x.data();
        int[] codes = new int[v.length];
        int per = v.length / groups;
        for (int g = 0; g < groups; g++) {
            checkRange(alpha[g], "alpha", g);
            scales[g] = bits == 1 ? alpha[g] : alpha[g] / qmax;
            for (int i = g * per; i < (g + 1) * per; i++) {
                if (bits == 1) codes[i] = v[i] >= 0 ? 1 : -1;
                else codes[i] = scales[g] == 0 ? 0 : code(v[i], scales[g], 0, qmin, qmax);
            }
        }
        return new QuantizedTensor(x.shape(), codes, bits, Scheme.SYMMETRIC, scales, new int[groups]);
    }

    /**
     * Unsigned affine over [lo, hi] widened to hold 0: scale = (hi - lo) / (2^b - 1), zero point
     * clamp(rint(-lo / scale), 0, 2^b - 1), so real 0 (padding, ReLU's zeros) is exactly a code.
     */
    public static QuantizedTensor affine(Tensor x, int bits, float[] lo, float[] hi) {
        BitWidths.code(bits, "affine quantizer");
        int groups = checkGroups(x, lo.length, "lo");
        checkGroups(x, hi.length, "hi");
        int qmax = Scheme.AFFINE.qmax(bits);
        float[] scales = new float[groups];
        int[] zeroPoints = new int[groups];
        float[] v = x.data();
        int[] codes = new int[v.length];
        int per = v.length / groups;
        for (int g = 0; g < groups; g++) {
            if (!(lo[g] <= hi[g]) || !Float.isFinite(lo[g]) || !Float.isFinite(hi[g])) {
                throw new IllegalArgumentException("affine range [" + lo[g] + ", " + hi[g] + "] of group " + g + " is not a finite interval");
            }
            AffineGrid grid = affineGrid(bits, lo[g], hi[g]);
            scales[g] = grid.scale();
            zeroPoints[g] = grid.zeroPoint();
            if (scales[g] == 0) continue;
            for (int i = g * per; i < (g + 1) * per; i++) {
                codes[i] = code(v[i], scales[g], zeroPoints[g], 0, qmax);
            }
        }
        return new QuantizedTensor(x.shape(), codes, bits, Scheme.AFFINE, scales, zeroPoints);
    }

    /** The grid of {@link #affine}: value = scale * (code - zeroPoint), codes 0..2^bits - 1. */
    public record AffineGrid(float scale, int zeroPoint) {}

    /**
     * The affine grid over [lo, hi] widened to hold 0: scale (high - low) / (2^b - 1), zero point
     * clamp(rint(-low / scale), 0, 2^b - 1); an empty range gives scale 0 and zero point 0 (every code 0).
     */
    public static AffineGrid affineGrid(int bits, float lo, float hi) {
        int qmax = Scheme.AFFINE.qmax(bits);
        float low = Math.min(lo, 0f), high = Math.max(hi, 0f);
        float scale = (high - low) / qmax;
        return new AffineGrid(scale, scale == 0 ? 0 : clamp(Math.rint(-low / scale), 0, qmax));
    }

    /**
     * PACT: clip to [0, alpha] on the grid alpha / (2^b - 1), i.e. the affine quantizer over [0, alpha]
     * (zero point 0, so codes are the unsigned activation codes of the bit-serial layout).
     */
    public static QuantizedTensor pact(Tensor x, int bits, float alpha) {
        if (!(alpha > 0) || !Float.isFinite(alpha)) throw new IllegalArgumentException("PACT alpha " + alpha + " must be positive and finite");
        return affine(x, bits, new float[] {0f}, new float[] {alpha});
    }

    /** max |x| per group (groups = 1 or the size of axis 0). */
    public static float[] maxAbs(Tensor x, int groups) {
        return reduce(x, groups, 0f, (acc, v) -> Math.max(acc, Math.abs(v)));
    }

    public static float[] minimum(Tensor x, int groups) {
        return reduce(x, groups, Float.POSITIVE_INFINITY, Math::min);
    }

    public static float[] maximum(Tensor x, int groups) {
        return reduce(x, groups, Float.NEGATIVE_INFINITY, Math::max);
    }

    /** Number of groups of a per-tensor (1) or per-output-channel (size of axis 0) quantizer. */
    public static int groups(Tensor x, boolean perChannel) {
        return perChannel ? x.shape().dim(0) : 1;
    }

    private interface FloatReducer {
        float apply(float acc, float v);
    }

    private static float[] reduce(Tensor x, int groups, float init, FloatReducer op) {
        checkGroups(x, groups, "groups");
        float[] v = x.data();
        float[] out = new float[groups];
        int per = v.length / groups;
        for (int g = 0; g < groups; g++) {
            float acc = init;
            for (int i = g * per; i < (g + 1) * per; i++) acc = op.apply(acc, v[i]);
            out[g] = acc;
        }
        return out;
    }

    static int checkGroups(Tensor x, int groups, String what) {
        if (x.size() == 0) throw new IllegalArgumentException("cannot quantize an empty tensor " + x.shape());
        if (groups == 1 || (x.shape().rank() > 0 && groups == x.shape().dim(0))) return groups;
        throw new IllegalArgumentException(what + " has " + groups + " values; tensor " + x.shape() + " needs 1 (per tensor) or "
                + (x.shape().rank() > 0 ? x.shape().dim(0) : 1) + " (per channel)");
    }

    private static void checkRange(float alpha, String what, int group) {
        if (!(alpha >= 0) || !Float.isFinite(alpha)) throw new IllegalArgumentException(what + " " + alpha + " of group " + group + " must be finite and >= 0");
    }

    /**
     * One code of a uniform grid: clamp(rint(x / scale) + zeroPoint, qmin, qmax), the float32 division
     * rounded half to even. NaN becomes code 0 (the clamp passes NaN and the int cast makes it 0). Every
     * quantizer of the project computes its codes here.
     */
    public static int code(float x, float scale, int zeroPoint, int qmin, int qmax) {
        return clamp(Math.rint(x / scale) + zeroPoint, qmin, qmax);
    }

    static int clamp(double rounded, int qmin, int qmax) {
        return (int) Math.max(qmin, Math.min(qmax, rounded));
    }
}
