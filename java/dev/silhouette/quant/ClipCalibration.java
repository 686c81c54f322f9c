package dev.silhouette.quant;

/**
 * Clip levels (PACT alphas) for a layer without trained ones: from activations observed on
 * calibration images, the alpha that minimises the mean squared error of PACT quantization at a
 * given width, searched over a grid of {@value #CANDIDATES} candidates alpha = max * i / CANDIDATES.
 * The error is evaluated on a histogram of {@value #BINS} equal bins over [0, max] (each bin's values
 * taken at its centre), so the search costs bins x candidates whatever the sample size. Negative
 * values count as 0 (PACT clips them; the receiving layers read post-ReLU activations anyway).
 * Low widths get small alphas (rounding noise dominates), high widths large ones (clipping dominates),
 * the trade-off ACIQ solves analytically under a prior; here it is measured.
 */
public final class ClipCalibration {
    public static final int BINS = 2048, CANDIDATES = 256;

    private final long[] counts = new long[BINS];
    private final float max;
    private long total;

    /** A histogram over [0, max]; values above max land in the last bin. */
    public ClipCalibration(float max) {
        if (!(max > 0) || !Float.isFinite(max)) throw new IllegalArgumentException("calibration range [0, " + max + "] must have a positive, finite top");
        this.max = max;
    }

    public void add(float[] values, int from, int to) {
        for (int i = from; i < to; i++) {
            float v = values[i];
            int bin = v > 0f ? (int) Math.min(BINS - 1, (long) (v / max * BINS)) : 0;
            counts[bin]++;
        }
        total += to - from;
    }

    public long count() {
        return total;
    }

    public float max() {
        return max;
    }

    /** Mean squared PACT error at {@code alpha} and {@code bits} over the histogram. */
    public double meanSquaredError(float alpha, int bits) {
        if (total == 0) throw new IllegalStateException("no calibration values were added");
        double sum = 0;
        for (int b = 0; b < BINS; b++) {
            if (counts[b] == 0) continue;
            // Post-ReLU tensors are mostly exact zeros, which have no rounding error: bin 0 stands for 0.
            float centre = b == 0 ? 0f : (b + 0.5f) * max / BINS;
            double e = centre - RegionQuantizer.pactValue(centre, alpha, bits);
            sum += counts[b] * e * e;
        }
        return sum / total;
    }

    /** The MSE-minimising alpha at {@code bits} (the smallest candidate on ties). */
    public float alpha(int bits) {
        float best = max;
        double bestError = Double.POSITIVE_INFINITY;
        for (int i = 1; i <= CANDIDATES; i++) {
            float a = max * i / CANDIDATES;
            double e = meanSquaredError(a, bits);
            if (e < bestError) {
                bestError = e;
                best = a;
            }
        }
        return best;
    }
}
