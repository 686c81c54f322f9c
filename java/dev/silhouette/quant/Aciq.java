package dev.silhouette.quant;

import dev.silhouette.tensor.Tensor;
import org.apache.commons.math3.optim.MaxEval;
import org.apache.commons.math3.optim.nonlinear.scalar.GoalType;
import org.apache.commons.math3.optim.univariate.BrentOptimizer;
import org.apache.commons.math3.optim.univariate.SearchInterval;
import org.apache.commons.math3.optim.univariate.UnivariateObjectiveFunction;
import org.apache.commons.math3.special.Erf;

/**
 * ACIQ (Banner, Nahshan, Soudry 2019): the clipping value alpha that minimises the expected
 * clipping-plus-rounding error under a Laplace or Gaussian prior, solved numerically with Brent's method.
 *
 * <p>With the prior at unit scale and M bits spread over [-a, a] (2^M bins of width 2a / 2^M, rounding
 * noise a^2 / (3 4^M)), the error is
 * <pre>
 *   Laplace(b = 1):      E(a) = 2 e^(-a)                              + a^2 / (3 4^M)
 *   Gaussian(sigma = 1): E(a) = 2 [(1 + a^2) Q(a) - a phi(a)]        + a^2 / (3 4^M)
 * </pre>
 * where the clipping term is twice the integral over (a, inf) of (x - a)^2 times the density (Q is the
 * upper tail of N(0, 1), phi its density). Both terms are convex in a, so the minimum is unique. The
 * optimal clip is alpha = multiplier * scale. Non-negative data (after ReLU) spend all 2^M bins on
 * [0, a]: the bins are half as wide, the rounding term becomes a^2 / (3 4^(M+1)) and only one tail is
 * clipped (the factor 2 then comes from the half-density), so the one-sided multiplier at M bits is the
 * two-sided one at M + 1 bits.
 */
public final class Aciq {
    private Aciq() {}

    public enum Prior { LAPLACE, GAUSSIAN }

    /** Expected squared error of clipping unit-scale data at a with M bits over [-a, a]. */
    public static double expectedError(Prior prior, int bits, double a) {
        double rounding = a * a / (3 * Math.pow(4, bits));
        double clipping = switch (prior) {
            case LAPLACE -> 2 * Math.exp(-a);
            case GAUSSIAN -> {
                double tail = 0.5 * Erf.erfc(a / Math.sqrt(2));
                double density = Math.exp(-a * a / 2) / Math.sqrt(2 * Math.PI);
                yield 2 * ((1 + a * a) * tail - a * density);
            }
        };
        return clipping + rounding;
    }

    /** The optimal clip in units of the prior's scale (b or sigma), for data of both signs or one. */
    public static double multiplier(Prior prior, int bits, boolean oneSided) {
        BitWidths.code(bits, "ACIQ");
        int m = oneSided ? bits + 1 : bits;
        var result = new BrentOptimizer(1e-12, 1e-14).optimize(new MaxEval(10_000),
                new UnivariateObjectiveFunction(a -> expectedError(prior, m, a)), GoalType.MINIMIZE, new SearchInterval(0, 64));
        return result.getPoint();
    }

    /**
     * The prior's scale estimated from one group of values. Two-sided around {@code center}: Laplace b =
     * mean |x - center|, Gaussian sigma = sqrt(mean (x - center)^2). One-sided (positive values only,
     * the half-prior they follow): b = mean x, sigma = sqrt(mean x^2).
     */
    public static double scale(Prior prior, float[] v, int from, int to, double center, boolean oneSided) {
        double sum = 0;
        int n = 0;
        for (int i = from; i < to; i++) {
            if (oneSided && !(v[i] > 0)) continue;
            double d = v[i] - center;
            sum += prior == Prior.LAPLACE ? Math.abs(d) : d * d;
            n++;
        }
        if (n == 0) return 0;
        return prior == Prior.LAPLACE ? sum / n : Math.sqrt(sum / n);
    }

    /**
     * ACIQ clips for a zero-centred signed symmetric grid (weights): alpha = min(k b, max |x|) per group,
     * the scale measured about 0 because the grid is centred there.
     */
    public static float[] symmetricAlpha(Tensor x, int bits, Prior prior, int groups) {
        Quantizers.checkGroups(x, groups, "groups");
        double k = multiplier(prior, bits, false);
        float[] maxAbs = Quantizers.maxAbs(x, groups);
        float[] alpha = new float[groups];
        int per = x.size() / groups;
        for (int g = 0; g < groups; g++) {
            alpha[g] = (float) Math.min(k * scale(prior, x.data(), g * per, (g + 1) * per, 0, false), maxAbs[g]);
        }
        return alpha;
    }

    /**
     * ACIQ range of an affine grid from observed statistics of one tensor (or group): non-negative data
     * get [0, min(k1 s+, max)] with the one-sided multiplier; other data [max(min, mean - k s),
     * min(max, mean + k s)] with the two-sided one.
     */
    public static float[] affineRange(Prior prior, int bits, double min, double max, double mean, double twoSidedScale, double oneSidedScale) {
        if (min >= 0) {
            return new float[] {0f, (float) Math.min(max, multiplier(prior, bits, true) * oneSidedScale)};
        }
        double k = multiplier(prior, bits, false);
        return new float[] {(float) Math.max(min, mean - k * twoSidedScale), (float) Math.min(max, mean + k * twoSidedScale)};
    }

    /** {@link #affineRange} per group of a tensor; returns {lo[], hi[]}. */
    public static float[][] affineRanges(Tensor x, int bits, Prior prior, int groups) {
        Quantizers.checkGroups(x, groups, "groups");
        float[] lo = new float[groups], hi = new float[groups];
        float[] min = Quantizers.minimum(x, groups), max = Quantizers.maximum(x, groups);
        int per = x.size() / groups;
        for (int g = 0; g < groups; g++) {
            double mean = 0;
            for (int i = g * per; i < (g + 1) * per; i++) mean += x.data()[i];
            mean /= per;
            float[] r = affineRange(prior, bits, min[g], max[g], mean,
                    scale(prior, x.data(), g * per, (g + 1) * per, mean, false), scale(prior, x.data(), g * per, (g + 1) * per, 0, true));
            lo[g] = r[0];
            hi[g] = r[1];
        }
        return new float[][] {lo, hi};
    }
}
