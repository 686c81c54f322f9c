package dev.silhouette;

/**
 * Every float tolerance of the test suite, in one place with its reason. Integer and packed paths
 * have none: they compare exactly.
 */
public final class Tolerances {
    private Tolerances() {}

    /** The conformance suite's bound for a float32 dot product summed in another order (the reason is there). */
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
