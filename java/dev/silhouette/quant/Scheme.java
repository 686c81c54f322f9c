package dev.silhouette.quant;

/**
 * The two integer grids of the uniform quantizers (docs/QUANTIZATION.md, section "Uniform grids"), at
 * the widths {@link BitWidths#code} accepts.
 */
public enum Scheme {
    /**
     * Signed, zero point 0. For b >= 2 the restricted range [-(2^(b-1) - 1), 2^(b-1) - 1] (symmetric, so
     * negating a tensor negates its codes and -2^(b-1) is never produced); for b = 1 the binary grid
     * {-1, +1} (sign, 0 maps to +1), as a 1-level-per-side symmetric grid would only hold 0.
     */
    SYMMETRIC,
    /** Unsigned [0, 2^b - 1] with an integer zero point, gemmlowp style: real 0 is exactly a code. */
    AFFINE;

    /** {@link BitWidths#MAX}, still read by FakeQuantRunner while it moves to the pipeline package; new code reads BitWidths. */
    public static final int MAX_BITS = BitWidths.MAX;

    public int qmin(int bits) {
        return switch (this) {
            case SYMMETRIC -> bits == 1 ? -1 : -((1 << (bits - 1)) - 1);
            case AFFINE -> 0;
        };
    }

    public int qmax(int bits) {
        return switch (this) {
            case SYMMETRIC -> bits == 1 ? 1 : (1 << (bits - 1)) - 1;
            case AFFINE -> (1 << bits) - 1;
        };
    }
}
