package dev.silhouette.quant;

import java.util.Arrays;
import java.util.List;

/**
 * The integer weights of one low-bit convolution, quantized once when the model is lowered: signed codes
 * per region (one set for shared weights, one per region or DRQ width otherwise) with the per-output-
 * channel dequantization w = scale_o * code + offset_o of {@link WeightQuantization} (offset 0 without
 * bias correction).
 *
 * <p>Codes are stored output-channel innermost, {@code [group][tap][channel in group][output in group]}
 * with the output axis padded to {@link #outStride()} lanes of zeros: the CPU kernel loads one vector of
 * output channels per (tap, channel) and multiplies it by one broadcast activation code, so this is the
 * order it reads. Tap t is ky * kernelW + kx.
 */
public record LowBitWeights(int groups, int inPerGroup, int outPerGroup, int taps, int[] bits, List<short[]> codes, List<float[]> scales,
                            List<float[]> offsets) {
    /** Output lanes per (tap, channel) row: the output channels of a group rounded up to a multiple of 32 (the widest short vector). */
    public static final int LANE_MULTIPLE = 32;

    public LowBitWeights {
        int regions = bits.length;
        int stride = (outPerGroup + LANE_MULTIPLE - 1) / LANE_MULTIPLE * LANE_MULTIPLE;   // outStride(): fields are not set yet
        if (regions < 1 || codes.size() != regions || scales.size() != regions || offsets.size() != regions) {
            throw new IllegalArgumentException("low-bit weights need codes, scales and offsets for each of " + regions + " regions");
        }
        for (int r = 0; r < regions; r++) {
            BitWidths.code(bits[r], "low-bit weight");
            if (codes.get(r).length != groups * taps * inPerGroup * stride) {
                throw new IllegalArgumentException("region " + r + " has " + codes.get(r).length + " weight codes, layout needs " + groups * taps * inPerGroup * outStride());
            }
            if (scales.get(r).length != groups * outPerGroup || offsets.get(r).length != groups * outPerGroup) {
                throw new IllegalArgumentException("region " + r + " needs one scale and offset per output channel (" + groups * outPerGroup + ")");
            }
        }
        codes = List.copyOf(codes);
        scales = List.copyOf(scales);
        offsets = List.copyOf(offsets);
    }

    public int regions() {
        return bits.length;
    }

    public int outStride() {
        return (outPerGroup + LANE_MULTIPLE - 1) / LANE_MULTIPLE * LANE_MULTIPLE;
    }

    /** Index of (group, tap, channel, output 0) in a region's codes. */
    public int row(int group, int tap, int channel) {
        return ((group * taps + tap) * inPerGroup + channel) * outStride();
    }

    /** Largest |code| of region r: bounds the products the kernel's narrow accumulators must hold. */
    public int maxAbsCode(int r) {
        int max = 0;
        for (short c : codes.get(r)) max = Math.max(max, Math.abs(c));
        return max;
    }

    /** Whether any region carries bias-correction offsets (then the kernel also sums activation codes). */
    public boolean hasOffsets() {
        for (float[] o : offsets) for (float v : o) if (v != 0f) return true;
        return false;
    }

    /**
     * Lays out one region's quantized weights (OIHW codes of {@code q}) for the kernel.
     * {@code weightShape} is [out, inPerGroup, kh, kw].
     */
    public static LowBitWeights of(int groups, int outChannels, int inPerGroup, int taps, int[] bits, List<WeightQuantization.QuantizedWeights> perRegion) {
        if (perRegion.size() != bits.length) throw new IllegalArgumentException(perRegion.size() + " weight sets for " + bits.length + " regions");
        int og = outChannels / groups;
        int stride = (og + LANE_MULTIPLE - 1) / LANE_MULTIPLE * LANE_MULTIPLE;
        List<short[]> codes = new java.util.ArrayList<>();
        List<float[]> scales = new java.util.ArrayList<>(), offsets = new java.util.ArrayList<>();
        for (WeightQuantization.QuantizedWeights q : perRegion) {
            if (q.codes().length != outChannels * inPerGroup * taps) {
                throw new IllegalArgumentException(q.codes().length + " weight codes for " + outChannels + " x " + inPerGroup + " x " + taps);
            }
            short[] laid = new short[groups * taps * inPerGroup * stride];
            for (int o = 0; o < outChannels; o++) {
                int g = o / og, oi = o % og;
                for (int c = 0; c < inPerGroup; c++)
                    for (int t = 0; t < taps; t++) {
                        laid[((g * taps + t) * inPerGroup + c) * stride + oi] = (short) q.codes()[(o * inPerGroup + c) * taps + t];
                    }
            }
            codes.add(laid);
            scales.add(q.scales().clone());
            offsets.add(q.offsets().clone());
        }
        return new LowBitWeights(groups, inPerGroup, og, taps, bits.clone(), codes, scales, offsets);
    }

    @Override
    public boolean equals(Object o) {
        return this == o;
    }

    @Override
    public int hashCode() {
        return System.identityHashCode(this);
    }

    @Override
    public String toString() {
        return "LowBitWeights" + Arrays.toString(bits) + "[" + groups + " groups, " + inPerGroup + " in, " + outPerGroup + " out, " + taps + " taps]";
    }
}
