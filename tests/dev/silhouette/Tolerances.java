package dev.silhouette;

/**
 * Every float tolerance of the test suite, in one place with its reason. Integer and packed paths
 * have none: they compare exactly.
 */
public final class Tolerances {
    private Tolerances() {}

    /**
     * A float32 dot product of K terms, summed in any order, is within about K * 2^-24 of the exact sum
     * relative to the sum of absolute terms; blocked GEMM sums in blocks of at most 256, so 2^-24 * 256
     * (1.5e-5) relative to sum|x*w| bounds it with margin, far below any indexing or padding bug.
     */
    public static final double ACCUMULATION_RELATIVE = dev.silhouette.conformance.Tolerance.ACCUMULATION.bound();

    /** Elementwise float ops (BatchNorm, folding, bilinear weights): a few float32 roundings. */
    public static final double ELEMENTWISE_ABS = 1e-5;

    /** Whole networks after BatchNorm folding: rounding differences through ~20 layers. */
    public static final double NETWORK_RELATIVE = 1e-4;

    /**
     * Silhouette against ONNX Runtime on one op, relative to the output's largest magnitude (at least 1):
     * both compute in float32 but sum in other orders and use other exp and division code; 2e-5 is a few
     * float32 roundings of a 256-term sum, far below any indexing, padding or broadcasting bug.
     */
    public static final double PEER_OP_RELATIVE = 2e-5;
}
