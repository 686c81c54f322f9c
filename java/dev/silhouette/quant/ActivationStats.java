package dev.silhouette.quant;

import java.util.List;

/**
 * Statistics of one value (a layer's output) over a calibration set. Percentiles are read from the
 * histogram (linear inside a bin, so within one bin width, (max - min) / bins, of the exact value).
 * positiveMean and positiveRms are the one-sided ACIQ scales (Laplace b and Gaussian sigma of the
 * positive values). {@code channels} holds per-channel moments of NCHW values (empty otherwise).
 */
public record ActivationStats(long count, double min, double max, double mean, double meanAbsDeviation, double std,
                              double positiveMean, double positiveRms, double[] percentileLevels, double[] percentiles,
                              long[] histogram, List<ChannelStats> channels) {

    /** The same moments for one channel (axis 1) of an NCHW value; per-channel ranges and bit allocation use them. */
    public record ChannelStats(double min, double max, double mean, double meanAbsDeviation, double std, double positiveMean, double positiveRms) {
        public float[] aciqRange(Aciq.Prior prior, int bits) {
            return Aciq.affineRange(prior, bits, min, max, mean, scale(prior, false, meanAbsDeviation, std, positiveMean, positiveRms),
                    scale(prior, true, meanAbsDeviation, std, positiveMean, positiveRms));
        }
    }

    public ActivationStats {
        channels = channels == null ? List.of() : List.copyOf(channels);
    }

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
        return scale(prior, oneSided, meanAbsDeviation, std, positiveMean, positiveRms);
    }

    private static double scale(Aciq.Prior prior, boolean oneSided, double meanAbsDeviation, double std, double positiveMean, double positiveRms) {
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
