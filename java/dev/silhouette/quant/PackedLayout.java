package dev.silhouette.quant;

/**
 * Every packed code layout, declared once (docs/QUANTIZATION.md, "Packed layouts"); a CUDA header will
 * mirror these constants and index formulas, and a test will check that the two agree.
 *
 * <p>Words are 64-bit ({@code long} here, {@code uint64_t} there), bits numbered from the least
 * significant. Codes are stored in their low {@code bits} bits: unsigned codes as they are, signed codes
 * in two's complement (so in bit planes, plane {@code bits - 1} weighs -2^(bits-1)).
 */
public final class PackedLayout {
    private PackedLayout() {}

    public static final int WORD_BITS = 64;

    /**
     * Bit planes along channels, for bit-serial convolution. For every pixel (activations, NCHW codes)
     * or every kernel tap (weights, OIHW codes) there are {@code bits} planes of
     * {@link #words} words; channel c sits in word c / 64 at bit c % 64, and plane p holds bit p of each
     * channel's code. Bits of channels past C (the last word's tail) are 0, so an AND with any plane
     * counts nothing there. Word order:
     * <pre>
     *   activations: ((n * H + y) * W + x) * bits * words + plane * words + word
     *   weights:     ((o * KH + ky) * KW + kx) * bits * words + plane * words + word
     * </pre>
     * Channels innermost makes one tap's planes contiguous: a dot product over C is {@code bits} runs of
     * {@code words} consecutive words on each side.
     */
    public record BitPlanes(int bits, int channels) {
        public BitPlanes {
            BitWidths.code(bits, "bit-plane layout");
            if (channels < 1) throw new IllegalArgumentException("bit-plane layout needs at least one channel, got " + channels);
        }

        public int words() {
            return (channels + WORD_BITS - 1) / WORD_BITS;
        }

        /** Words of one pixel or one kernel tap: all planes. */
        public int wordsPerPosition() {
            return bits * words();
        }

        /** First word of (position, plane); position is (n * H + y) * W + x or (o * KH + ky) * KW + kx. */
        public int index(int position, int plane, int word) {
            return (position * bits + plane) * words() + word;
        }
    }

    /**
     * Dense packing for storage and transfer: floor(64 / bits) codes per word, code i in word
     * i / perWord at bit (i % perWord) * bits, in tensor order; unused high bits of each word are 0. For
     * 1, 2, 4 and 8 bits no bit is wasted; 3 bits store 21 codes per word (one bit spare), 5 bits 12,
     * 6 bits 10, 7 bits 9.
     */
    public record Dense(int bits) {
        public Dense {
            BitWidths.code(bits, "dense layout");
        }

        public int codesPerWord() {
            return WORD_BITS / bits;
        }

        public int words(int codes) {
            return (codes + codesPerWord() - 1) / codesPerWord();
        }

        public long[] pack(int[] codes, boolean signed) {
            long[] out = new long[words(codes.length)];
            long mask = (1L << bits) - 1;
            for (int i = 0; i < codes.length; i++) {
                checkCode(codes[i], bits, signed, i);
                out[i / codesPerWord()] |= (codes[i] & mask) << (i % codesPerWord() * bits);
            }
            return out;
        }

        public int[] unpack(long[] words, int count, boolean signed) {
            int[] out = new int[count];
            long mask = (1L << bits) - 1;
            for (int i = 0; i < count; i++) {
                int v = (int) ((words[i / codesPerWord()] >>> (i % codesPerWord() * bits)) & mask);
                out[i] = signed && v >= 1 << (bits - 1) ? v - (1 << bits) : v;
            }
            return out;
        }
    }

    /** Range of a code of this width: unsigned [0, 2^b - 1], signed two's complement [-2^(b-1), 2^(b-1) - 1]. */
    public static void checkCode(int code, int bits, boolean signed, int index) {
        int lo = signed ? -(1 << (bits - 1)) : 0, hi = signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
        if (code < lo || code > hi) {
            throw new IllegalArgumentException("code " + code + " at index " + index + " does not fit " + bits + " " + (signed ? "signed" : "unsigned")
                    + " bits [" + lo + ", " + hi + "]");
        }
    }
}
