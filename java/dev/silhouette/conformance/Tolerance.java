package dev.silhouette.conformance;

/**
 * How closely a checked kernel must match the specification, with the reason for each bound. Integer
 * paths (accumulators, region maps, codes) are {@link #EXACT}.
 */
public enum Tolerance {
    /** Integer results and float kernels written to round as the CPU does: every bit equal (or both zero). */
    EXACT(0),
    /**
     * A float32 dot product of K terms, summed in any order, is within about K * 2^-24 of the exact sum
     * relative to the sum of absolute terms; blocked GEMM sums in blocks of at most 256, so 2^-24 * 256
     * (1.5e-5) relative to sum|x*w| bounds it with margin, far below any indexing or padding bug.
     */
    ACCUMULATION(1.5e-5),
    /**
     * A device library (cuDNN, cuBLAS) against the CPU, relative to the output's largest magnitude (at
     * least 1): another summation order and other fused multiply-adds; 2e-5 is a few float32 roundings of
     * a 256-term sum.
     */
    DEVICE_ACCUMULATION(2e-5),
    /** Elementwise float ops with a division or exp (averages, softmax, bilinear weights), relative to max(1, largest magnitude). */
    ELEMENTWISE(1e-6),
    /**
     * The low-bit epilogue (bias + sum_r step_r (scale A_r + offset S_r), in double, rounded once) against an
     * oracle that computes it in another order: per element, relative to max(1, |expected|).
     */
    EPILOGUE(1e-6);

    private final double bound;

    Tolerance(double bound) {
        this.bound = bound;
    }

    public double bound() {
        return bound;
    }
}
