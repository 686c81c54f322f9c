package dev.silhouette.quant;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

/**
 * Per-image region thresholds of a silhouette: the CPU specification that the CUDA kernels
 * ({@code cuda/silhouette_threshold.cu}) match bit for bit.
 *
 * <p>For an image of n values and an interior cumulative fraction q (0.5 and 0.8 for policy
 * {@code 2:50,3:30,4:20}), the threshold is the linear-interpolated quantile:
 * p = q (n - 1) in double, lo = floor(p), hi = min(lo + 1, n - 1), frac = (float) (p - lo), and
 * t = v_lo + (v_hi - v_lo) * frac in float32 with each operation rounded (no fused multiply-add), where
 * v_r is the value of rank r.
 *
 * <p>Ranks follow the float total order (-0.0 before +0.0), found by selection on order-preserving
 * integer keys rather than a full sort. Ties: equal values occupy consecutive ranks, and a pixel is in
 * region j when t_j &lt;= v &lt; t_(j+1), so every pixel equal to a threshold goes to the higher region.
 * NaN silhouettes are outside the contract (a sigmoid never produces them).
 */
public final class SilhouetteThresholds {
    private SilhouetteThresholds() {}

    /** @return B x fractions.length thresholds, row-major */
    public static float[] thresholds(Tensor silhouette, double[] cumulativeFractions) {
        Shape s = silhouette.shape();
        if (s.rank() != 4 || s.c() != 1) throw new IllegalArgumentException("a silhouette is B x 1 x H x W, got " + s);
        int pixels = s.h() * s.w();
        if (pixels < 1) throw new IllegalArgumentException("silhouette " + s + " has no pixels");
        for (double q : cumulativeFractions) {
            if (!(q >= 0 && q <= 1)) throw new IllegalArgumentException("cumulative fraction " + q + " is outside [0, 1]");
        }
        int count = cumulativeFractions.length;
        float[] out = new float[s.n() * count];
        int[] keys = new int[pixels];
        for (int b = 0; b < s.n(); b++) {
            for (int i = 0; i < pixels; i++) keys[i] = orderKey(silhouette.data()[b * pixels + i]);
            for (int j = 0; j < count; j++) {
                double p = cumulativeFractions[j] * (pixels - 1);
                int lo = (int) Math.floor(p);
                int hi = Math.min(lo + 1, pixels - 1);
                float frac = (float) (p - lo);
                float vLo = keyValue(select(keys, lo));
                float vHi = hi == lo ? vLo : keyValue(select(keys, hi));
                out[b * count + j] = vLo + (vHi - vLo) * frac;
            }
        }
        return out;
    }

    /** Region index of every pixel: the number of its image's thresholds it reaches (value >= t). */
    public static byte[] regionMap(Tensor silhouette, float[] thresholds, int count) {
        Shape s = silhouette.shape();
        int pixels = s.size() / s.dim(0);
        byte[] region = new byte[s.size()];
        for (int i = 0; i < region.length; i++) {
            float v = silhouette.data()[i];
            int r = 0;
            for (int j = 0; j < count; j++) if (v >= thresholds[(i / pixels) * count + j]) r++;
            region[i] = (byte) r;
        }
        return region;
    }

    /**
     * Signed-int key whose order is the float total order: the unsigned key of the kernels
     * (positives with the sign bit set, negatives inverted) shifted by 2^31 into signed range.
     */
    static int orderKey(float f) {
        int bits = Float.floatToRawIntBits(f);
        int unsigned = bits < 0 ? ~bits : bits | 0x80000000;
        return unsigned ^ 0x80000000;
    }

    static float keyValue(int key) {
        int unsigned = key ^ 0x80000000;
        return Float.intBitsToFloat(unsigned < 0 ? unsigned & 0x7fffffff : ~unsigned);
    }

    /** The rank-k key (quickselect with median-of-three; permutes {@code keys}, keeps the multiset). */
    static int select(int[] keys, int k) {
        int lo = 0, hi = keys.length - 1;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (keys[mid] < keys[lo]) swap(keys, mid, lo);
            if (keys[hi] < keys[lo]) swap(keys, hi, lo);
            if (keys[hi] < keys[mid]) swap(keys, hi, mid);
            int pivot = keys[mid];
            int i = lo, j = hi;
            while (i <= j) {
                while (keys[i] < pivot) i++;
                while (keys[j] > pivot) j--;
                if (i <= j) swap(keys, i++, j--);
            }
            if (k <= j) hi = j;
            else if (k >= i) lo = i;
            else return keys[k];
        }
        return keys[k];
    }

    private static void swap(int[] a, int i, int j) {
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
