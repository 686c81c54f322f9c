package dev.silhouette.quant;

/**
 * The two quantizers of region-based quantization (docs/REGION_QUANTIZATION.md is their spec): the
 * per-pixel PACT activation quantizer and the symmetric per-output-channel weight quantizer of the
 * shared-weight form, scalar forms of the library's {@link Quantizers#pact} and
 * {@link Quantizers#symmetric}, whose rounding (half to even, {@link Quantizers#code}) they share.
 */
public final class RegionQuantizer {
    private RegionQuantizer() {}

    /**
     * PACT code of one activation on the grid alpha / (2^bits - 1): clamp(rint(x / step), 0, 2^bits - 1),
     * so values below 0 (and NaN) give 0 and values above alpha give the top code.
     */
    public static int pactCode(float x, float alpha, int bits) {
        return Quantizers.code(x, pactStep(alpha, bits), 0, 0, (1 << bits) - 1);
    }

    /** The step of the PACT grid, alpha / (2^bits - 1): the per-region scale of the accumulator spec. */
    public static float pactStep(float alpha, int bits) {
        return alpha / ((1 << bits) - 1);
    }

    /** The dequantized PACT value: code * (alpha / (2^bits - 1)). */
    public static float pactValue(float x, float alpha, int bits) {
        return pactCode(x, alpha, bits) * pactStep(alpha, bits);
    }

    /** The largest weight code of a symmetric signed grid of {@code bits} ({@link BitWidths#weight}): 2^(bits-1) - 1. */
    public static int weightLimit(int bits) {
        return (1 << (BitWidths.weight(bits, "symmetric weight") - 1)) - 1;
    }

    /**
     * Weight scales, one per output channel (the leading axis of {@code weights}, {@code channels} rows):
     * max |w| of the row / (2^(bits-1) - 1); a row of zeros gets scale 1 (all its codes are 0).
     */
    public static float[] weightScales(float[] weights, int channels, int bits) {
        int limit = weightLimit(bits);
        if (channels < 1 || weights.length % channels != 0) {
            throw new IllegalArgumentException(weights.length + " weights do not split into " + channels + " output channels");
        }
        int row = weights.length / channels;
        float[] scales = new float[channels];
        for (int o = 0; o < channels; o++) {
            float max = 0f;
            for (int i = o * row; i < (o + 1) * row; i++) max = Math.max(max, Math.abs(weights[i]));
            scales[o] = max > 0f ? max / limit : 1f;
        }
        return scales;
    }

    /** Weight code: rint(w / scale), clamped to +-(2^(bits-1) - 1). */
    public static int weightCode(float w, float scale, int bits) {
        int limit = weightLimit(bits);
        return Quantizers.code(w, scale, 0, -limit, limit);
    }

    /** Weights replaced by their dequantized values code * scale of their output channel. */
    public static float[] quantizeWeights(float[] weights, int channels, int bits) {
        float[] scales = weightScales(weights, channels, bits);
        int row = weights.length / channels;
        float[] out = new float[weights.length];
        for (int i = 0; i < weights.length; i++) {
            float s = scales[i / row];
            out[i] = weightCode(weights[i], s, bits) * s;
        }
        return out;
    }
}
