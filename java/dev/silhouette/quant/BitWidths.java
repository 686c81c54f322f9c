package dev.silhouette.quant;

/**
 * The bit widths the library accepts, checked here for every quantizer, op, kernel and file, so a bad
 * width is refused in the same words everywhere: what the width was for, the width, and the limits.
 * Codes are 1 to 8 bits: they fit a byte on every backend and the bit-serial kernels loop over at most
 * 8 planes.
 *
 * <p>One difference is real: symmetric weights with a zero and a level on each side need at least 2 bits,
 * so {@link #weight} starts at 2. A single bit holds only a sign, the binary grid {-1, +1}
 * ({@link Scheme#SYMMETRIC} at 1 bit, {@link BinaryNet}, the packed kernels' 1-bit planes); the places
 * that take that path check {@link #code}.
 */
public final class BitWidths {
    private BitWidths() {}

    /** Narrowest and widest code of any kind. */
    public static final int MIN = 1, MAX = 8;
    /** Narrowest symmetric weight grid with a zero: 2 bits give {-1, 0, +1}. */
    public static final int MIN_SYMMETRIC_WEIGHT = 2;

    /** An activation width (PACT, region and DRQ quantizers, learned clip levels): 1 to 8. */
    public static int activation(int bits, String what) {
        return check(bits, MIN, what, "");
    }

    /** A symmetric weight width with a zero level: 2 to 8. */
    public static int weight(int bits, String what) {
        return check(bits, MIN_SYMMETRIC_WEIGHT, what, " (a symmetric weight grid needs 2 bits for a zero and a level each side; 1 bit is the sign grid)");
    }

    /** Any code width, weights included where 1 bit means the sign grid (uniform grids, packed layouts and kernels): 1 to 8. */
    public static int code(int bits, String what) {
        return check(bits, MIN, what, "");
    }

    private static int check(int bits, int min, String what, String why) {
        if (bits < min || bits > MAX) throw new IllegalArgumentException(what + " bits " + bits + " outside the supported " + min + ".." + MAX + why);
        return bits;
    }
}
