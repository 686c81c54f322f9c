package dev.silhouette.quant;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

/**
 * Per-image region thresholds of a silhouette: the CPU specification that the CUDA kernels
 * ({@code cuda/silhouette_threshold.cu}) match bit for bit.
 *
 * <p>A policy such as {@code 2:50,3:30,4:20} splits each image's pixels by the quantiles of its own
 * silhouette values at the interior cumulative fractions (0.5 and 0.8 there; see
 * {@link #cumulativeFractions(int...)}). For an image of n values and a fraction q the threshold is the
 * linear-interpolated quantile of numpy's and torch's default ('linear') method:
 * p = q (n - 1) in double, lo = floor(p), hi = min(lo + 1, n - 1), frac = (float) (p - lo), and
 * t = v_lo + (v_hi - v_lo) * frac in float32 with each operation rounded to nearest (no fused
 * multiply-add), where v_r is the value of rank r in ascending order.
 *
 * <p>Ranks follow the float total order (-0.0 before +0.0), found by selection on order-preserving
 * integer keys rather than a full sort. Ties: equal values are one order statistic each, exactly as in
 * a sorted list, and a pixel is in region j when t_j &lt;= v &lt; t_(j+1) (region 0 below t_1, the top
 * region including its lower bound), so every pixel equal to a threshold goes to the higher region.
 * A constant image therefore puts all its pixels in the top region. NaN silhouettes are outside the
 * contract (a sigmoid never produces them).
 */
public final class SilhouetteThresholds {
    /** Region indices are stored in a byte, as by the kernel. */
    public static final int MAX_REGIONS = 256;

    private SilhouetteThresholds() {}

    /**
     * The interior cumulative fractions of region shares: {@code 50, 30, 20} gives {@code [0.5, 0.8]}.
     * Shares are integers (percent or any unit) so the running sums are exact and each fraction is one
     * correctly rounded division.
     */
    public static double[] cumulativeFractions(int... shares) {
        if (shares.length < 1 || shares.length > MAX_REGIONS) {
            throw new IllegalArgumentException("a policy has 1 to " + MAX_REGIONS + " regions, got " + shares.length);
        }
        long total = 0;
        for (int share : shares) {
            if (share <= 0) throw new IllegalArgumentException("region share " + share + " is not positive");
            total += share;
        }
        double[] fractions = new double[shares.length - 1];
        long sum = 0;
        for (int j = 0; j < fractions.length; j++) {
            sum += shares[j];
            fractions[j] = (double) sum / total;
        }
        return fractions;
    }

    /**
     * Checks a B x 1 x H x W silhouette with at least one pixel and fractions in [0, 1] (at most
     * {@link #MAX_REGIONS} - 1 of them); the CUDA path checks its arguments with this too.
     *
     * @return the pixels of one image
     */
    public static int validate(Shape silhouette, double[] cumulativeFractions) {
        if (silhouette.rank() != 4 || silhouette.c() != 1) {
            throw new IllegalArgumentException("a silhouette is B x 1 x H x W, got " + silhouette);
        }
        int pixels = silhouette.h() * silhouette.w();
        if (pixels < 1) throw new IllegalArgumentException("silhouette " + silhouette + " has no pixels");
        if (cumulativeFractions.length > MAX_REGIONS - 1) {
            throw new IllegalArgumentException(cumulativeFractions.length + " thresholds make more than " + MAX_REGIONS + " regions");
        }
        for (double q : cumulativeFractions) {
            if (!(q >= 0 && q <= 1)) throw new IllegalArgumentException("cumulative fraction " + q + " is outside [0, 1]");
        }
        return pixels;
    }

    /** @return B x fractions.length thresholds, row-major: image b's j-th threshold at b * fractions.length + j */
    public static float[] thresholds(Tensor silhouette, double[] cumulativeFractions) {
        Shape s = silhouette.shape();
        int pixels = validate(s, cumulativeFractions);
        int count = cumulativeFractions.length;
        float[] data = silhouette.data();
        float[] out = new float[s.n() * count];
        int[] keys = new int[pixels];
        for (int b = 0; b < s.n(); b++) {
            for (int i = 0; i < pixels; i++) keys[i] = orderKey(data[b * pixels + i]);
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

    /**
     * Region index of every pixel, B x H x W row-major: the number of its image's thresholds t_j with
     * value &gt;= t_j, so region j is [t_j, t_(j+1)) and a pixel equal to a threshold goes up.
     *
     * @param thresholds B x (regions - 1) values from {@link #thresholds}
     * @param regions    regions of the policy (thresholds per image + 1)
     */
    public static byte[] regionMap(Tensor silhouette, float[] thresholds, int regions) {
        Shape s = silhouette.shape();
        if (s.rank() != 4 || s.c() != 1) throw new IllegalArgumentException("a silhouette is B x 1 x H x W, got " + s);
        if (regions < 1 || regions > MAX_REGIONS) throw new IllegalArgumentException("a policy has 1 to " + MAX_REGIONS + " regions, got " + regions);
        int count = regions - 1;
        if (thresholds.length != s.n() * count) {
            throw new IllegalArgumentException(s.n() + " images of " + regions + " regions need " + s.n() * count
                    + " thresholds, got " + thresholds.length);
        }
        int pixels = s.h() * s.w();
        float[] data = silhouette.data();
        byte[] region = new byte[data.length];
        for (int i = 0; i < region.length; i++) {
            float v = data[i];
            int row = i / pixels * count;
            int r = 0;
            for (int j = 0; j < count; j++) if (v >= thresholds[row + j]) r++;
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

    /**
     * The rank-k key, by quickselect with a median-of-three pivot. Permutes {@code keys} but keeps the
     * multiset, so later calls on the same array stay valid. The partition stops on keys equal to the
     * pivot, so heavy ties split evenly instead of degrading to quadratic time.
     */
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
