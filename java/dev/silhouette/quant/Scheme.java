package dev.silhouette.quant;

/**
 * The two integer grids of the uniform quantizers (docs/QUANTIZATION.md, section "Uniform grids").
 * Bits are 1 to 8: codes fit a byte on every backend and the bit-serial kernels loop over at most 8
 * planes.
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

    public static final int MIN_BITS = 1, MAX_BITS = 8;

    /** Rejects a bit width outside 1..8 with one message naming what the width was for. */
    public static int checkBits(int bits, String what) {
        if (bits < MIN_BITS || bits > MAX_BITS) {
            throw new IllegalArgumentException(what + " bits " + bits + " outside the supported " + MIN_BITS + ".." + MAX_BITS);
        }
        return bits;
    }

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
