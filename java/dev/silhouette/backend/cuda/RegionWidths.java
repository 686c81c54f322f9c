package dev.silhouette.backend.cuda;

import dev.silhouette.quant.BitWidths;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.quant.RegionQuantizer;

import java.util.Arrays;

/**
 * Activation width and PACT clip level of each region, lowest silhouette values first (one region for
 * uniform quantization), in the form the low-bit kernels take: the widths packed 4 bits per region into
 * one 32-bit argument (packed_layout.cuh, {@code region_bits}), the clip levels as a float array, and the
 * plane count of the bit-plane layout, the widest region's width.
 */
public record RegionWidths(int[] bits, float[] alphas) {
    /** Regions whose widths fit the 32-bit argument (packed::MAX_PACKED_REGIONS). */
    public static final int MAX_PACKED_REGIONS = 8;
    /** Bits per region in the packed argument (packed::REGION_BITS_FIELD). */
    public static final int FIELD_BITS = 4;

    public RegionWidths {
        bits = bits.clone();
        alphas = alphas.clone();
        if (bits.length < 1) throw new IllegalArgumentException("region widths: at least one region is needed");
        if (bits.length != alphas.length) throw new IllegalArgumentException(bits.length + " region widths but " + alphas.length + " clip levels");
        for (int r = 0; r < bits.length; r++) {
            BitWidths.activation(bits[r], "region " + r);
            if (!(alphas[r] > 0) || !Float.isFinite(alphas[r])) {
                throw new IllegalArgumentException("region " + r + " clip level " + alphas[r] + " must be positive and finite");
            }
        }
    }

    public static RegionWidths uniform(int bits, float alpha) {
        return new RegionWidths(new int[] {bits}, new float[] {alpha});
    }

    /** The policy's widths with one clip level per region. */
    public static RegionWidths of(RegionPolicy policy, float[] alphas) {
        return new RegionWidths(policy.regions().stream().mapToInt(RegionPolicy.Region::bits).toArray(), alphas);
    }

    public int regions() {
        return bits.length;
    }

    /** Planes per pixel of the bit-plane layout: the widest region's width. */
    public int planeBits() {
        return Arrays.stream(bits).max().orElseThrow();
    }

    /** Refuses more regions than the packed argument holds. */
    public KernelSupport supported() {
        return regions() > MAX_PACKED_REGIONS
                ? KernelSupport.no(KernelSupport.Reason.TOO_MANY_REGIONS, regions() + " regions; the kernels take at most " + MAX_PACKED_REGIONS)
                : KernelSupport.YES;
    }

    /** Region r's width at bits 4r..4r+3 (packed::region_bits reads it back). */
    public int packed() {
        supported().require("region widths");
        int packed = 0;
        for (int r = 0; r < bits.length; r++) packed |= bits[r] << (FIELD_BITS * r);
        return packed;
    }

    /** PACT steps alpha_r / (2^b_r - 1) in float ({@link RegionQuantizer#pactStep}), the per-region scales of the accumulator combination. */
    public float[] steps() {
        float[] steps = new float[bits.length];
        for (int r = 0; r < steps.length; r++) steps[r] = RegionQuantizer.pactStep(alphas[r], bits[r]);
        return steps;
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("RegionWidths[");
        for (int r = 0; r < bits.length; r++) s.append(r == 0 ? "" : ", ").append(bits[r]).append(" bits @ ").append(alphas[r]);
        return s.append(']').toString();
    }
}
