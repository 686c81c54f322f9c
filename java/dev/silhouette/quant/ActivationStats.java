package dev.silhouette.quant;

/**
 * Statistics of one value (a layer's output) over a calibration set. Percentiles are read from the
 * histogram (linear inside a bin, so within one bin width, (max - min) / bins, of the exact value).
 * positiveMean and positiveRms are the one-sided ACIQ scales (Laplace b and Gaussian sigma of the
 * positive values).
 */
public record ActivationStats(long count, double min, double max, double mean, double meanAbsDeviation, double std,
                              double positiveMean, double positiveRms, double[] percentileLevels, double[] percentiles,
                              long[] histogram) {

    /** Levels (in percent) stored for every value. */
    public static final double[] LEVELS = {0.1, 1, 5, 25, 50, 75, 95, 99, 99.9, 99.99};
    public static final int HISTOGRAM_BINS = 2048;

    /** The percentile at one of {@link #LEVELS}. */
    public double percentile(double level) {
        for (int i = 0; i < percentileLevels.length; i++) if (percentileLevels[i] == level) return percentiles[i];
        throw new IllegalArgumentException("percentile " + level + " was not collected; collected: " + java.util.Arrays.toString(percentileLevels));
    }

    /** The ACIQ scale of the prior: two-sided (about the mean) or one-sided (positive values). */
    public double aciqScale(Aciq.Prior prior, boolean oneSided) {
        return switch (prior) {
            case LAPLACE -> oneSided ? positiveMean : meanAbsDeviation;
            case GAUSSIAN -> oneSided ? positiveRms : std;
        };
    }

    /** ACIQ affine range {lo, hi} for this value at {@code bits}. */
    public float[] aciqRange(Aciq.Prior prior, int bits) {
        return Aciq.affineRange(prior, bits, min, max, mean, aciqScale(prior, false), aciqScale(prior, true));
    }
}
