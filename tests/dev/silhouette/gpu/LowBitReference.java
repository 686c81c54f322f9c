package dev.silhouette.gpu;

import dev.silhouette.backend.cpu.CpuOps;
import dev.silhouette.backend.cuda.PactRule;
import dev.silhouette.backend.cuda.RegionMaskKernel;
import dev.silhouette.backend.cuda.RegionWidths;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Window;
import dev.silhouette.quant.BitSerialConv;
import dev.silhouette.quant.Quantizers;
import dev.silhouette.quant.SilhouetteThresholds;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The CPU answers the low-bit kernels are compared with, composed from the specification's own pieces
 * (SilhouetteThresholds, CpuOps.interpolate, Quantizers.pact, BitSerialConv.reference), plus the
 * named region maps and silhouettes of the problem lists. Two pieces restate region quantization's
 * specification (docs/REGION_QUANTIZATION.md), whose CPU code (RegionOps.regionMap,
 * RegionQuantizer.pactCode, Reference.regionConv2d) is on the region branch, not yet merged here: they
 * are written from the spec's text and checked on the CPU by LowBitReferenceTest.
 */
final class LowBitReference {
    private LowBitReference() {}

    // ---- Region maps of a silhouette (docs/REGION_QUANTIZATION.md section 3) ----

    static byte[] regionMap(Tensor silhouette, double[] fractions, int outH, int outW, Op.Interpolate.Mode mode, RegionMaskKernel.Order order) {
        Shape s = silhouette.shape();
        int regions = fractions.length + 1;
        boolean sameSize = s.h() == outH && s.w() == outW;
        if (order == RegionMaskKernel.Order.RESIZE_THEN_THRESHOLD || sameSize) {
            Tensor resized = sameSize ? silhouette : CpuOps.interpolate(silhouette, new Op.Interpolate(mode, outH, outW));
            return SilhouetteThresholds.regionMap(resized, SilhouetteThresholds.thresholds(resized, fractions), regions);
        }
        byte[] source = SilhouetteThresholds.regionMap(silhouette, SilhouetteThresholds.thresholds(silhouette, fractions), regions);
        int pixels = s.h() * s.w();
        float[] oneHot = new float[s.n() * regions * pixels];
        for (int i = 0; i < source.length; i++) oneHot[(i / pixels * regions + source[i]) * pixels + i % pixels] = 1f;
        float[] m = CpuOps.interpolate(new Tensor(Shape.of(s.n(), regions, s.h(), s.w()), oneHot), new Op.Interpolate(mode, outH, outW)).data();
        int out = outH * outW;
        byte[] map = new byte[s.n() * out];
        for (int n = 0; n < s.n(); n++) {
            for (int p = 0; p < out; p++) {
                int best = 0;
                for (int r = 1; r < regions; r++) if (m[(n * regions + r) * out + p] >= m[(n * regions + best) * out + p]) best = r;
                map[n * out + p] = (byte) best;
            }
        }
        return map;
    }

    // ---- PACT codes per pixel ----

    /** Region quantization's rule: round half up of min(max(x, 0), alpha) * L / alpha, NaN as 0. */
    static int regionPactCode(float x, float alpha, int bits) {
        int levels = (1 << bits) - 1;
        float y = x > 0f ? Math.min(x, alpha) : 0f;
        return Math.round(y * levels / alpha);
    }

    /** NCHW codes of every activation at its pixel's region (regionMap N x H x W, null: region 0). */
    static int[] codes(Tensor x, byte[] regionMap, RegionWidths widths, PactRule rule) {
        Shape s = x.shape();
        int plane = s.h() * s.w();
        int[][] perRegion = new int[widths.regions()][];
        if (rule == PactRule.QUANTIZER) {
            for (int r = 0; r < widths.regions(); r++) perRegion[r] = Quantizers.pact(x, widths.bits()[r], widths.alphas()[r]).codes();
        }
        int[] out = new int[x.size()];
        for (int i = 0; i < out.length; i++) {
            int pixel = i / (s.c() * plane) * plane + i % plane;
            int r = regionMap == null ? 0 : regionMap[pixel];
            out[i] = rule == PactRule.QUANTIZER ? perRegion[r][i] : regionPactCode(x.data()[i], widths.alphas()[r], widths.bits()[r]);
        }
        return out;
    }

    // ---- Per-region accumulators (docs/REGION_QUANTIZATION.md section 6) ----

    /**
     * A_(o,r), laid out ((n O + o) OH + oy) OW + ox) R + r: the integer convolution of the codes with
     * every pixel outside region r set to code 0 (zero adds nothing to a product sum, so this is the sum
     * over the taps reading region r).
     */
    static long[] regionAccumulators(int[] codes, Shape xs, byte[] regionMap, int regions, int[] w, Shape ws, Window win) {
        int plane = xs.h() * xs.w();
        long[] out = null;
        for (int r = 0; r < regions; r++) {
            int[] masked = codes.clone();
            for (int i = 0; i < masked.length; i++) {
                int pixel = i / (xs.c() * plane) * plane + i % plane;
                if ((regionMap == null ? 0 : regionMap[pixel]) != r) masked[i] = 0;
            }
            long[] a = BitSerialConv.reference(masked, xs, w, ws, win);
            if (out == null) out = new long[a.length * regions];
            for (int i = 0; i < a.length; i++) out[i * regions + r] = a[i];
        }
        return out;
    }

    /** y = (float) (bias_o + sum_r (sw_o * step_r) * A_r) in double: Reference.regionConv2d's combination for shared weights. */
    static float[] regionCombine(long[] acc, int regions, Shape out, float[] weightScales, float[] steps, float[] bias) {
        float[] y = new float[out.size()];
        int plane = out.h() * out.w();
        for (int i = 0; i < y.length; i++) {
            int o = i / plane % out.c();
            double v = bias == null ? 0 : bias[o];
            for (int r = 0; r < regions; r++) v += (double) weightScales[o] * steps[r] * acc[i * regions + r];
            y[i] = (float) v;
        }
        return y;
    }

    // ---- Named problems ----

    /** Region maps N x H x W: all in the lowest region, all in the highest, one high pixel, checkerboard, random. */
    static byte[] namedMap(String name, int n, int h, int w, int regions, long seed) {
        byte[] map = new byte[n * h * w];
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = 0; i < map.length; i++) {
            int y = i / w % h, x = i % w;
            map[i] = (byte) switch (name) {
                case "all-low" -> 0;
                case "all-high" -> regions - 1;
                case "single pixel" -> y == h / 2 && x == w / 2 ? regions - 1 : 0;
                case "checkerboard" -> (y + x) % 2 == 0 ? 0 : regions - 1;
                case "random" -> rnd.nextInt(regions);
                default -> throw new IllegalArgumentException("no region map named " + name);
            };
        }
        return map;
    }

    static final String[] MAP_NAMES = {"all-low", "all-high", "single pixel", "checkerboard", "random"};

    /** Activations around the clip levels: negatives, zeros, exact grid halves, beyond alpha, NaN and infinities. */
    static Tensor activations(Shape s, float alpha, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] d = new float[s.size()];
        for (int i = 0; i < d.length; i++) {
            d[i] = switch (rnd.nextInt(12)) {
                case 0 -> -(float) rnd.nextDouble();
                case 1 -> 0f;
                case 2 -> {
                    int levels = (1 << (1 + rnd.nextInt(8))) - 1;  // a half step of some width's grid
                    yield (rnd.nextInt(levels) + 0.5f) * alpha / levels;
                }
                case 3 -> alpha * (1 + (float) rnd.nextDouble());
                case 4 -> rnd.nextInt(50) == 0 ? Float.NaN : rnd.nextBoolean() ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY;
                default -> (float) (rnd.nextDouble() * alpha);
            };
        }
        return new Tensor(s, d);
    }

    static int[] randomCodes(SplittableRandom rnd, int size, int bits, boolean signed, boolean extremes) {
        int lo = signed ? -(1 << (bits - 1)) : 0, hi = signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
        int[] v = new int[size];
        for (int i = 0; i < size; i++) v[i] = extremes ? (rnd.nextBoolean() ? lo : hi) : lo + rnd.nextInt(hi - lo + 1);
        return v;
    }

    /** First differing index with both values, or null. */
    static String firstDifference(long[] expected, long[] actual) {
        int i = Arrays.mismatch(expected, actual);
        return i < 0 ? null : "index " + i + ": kernel " + (i < actual.length ? actual[i] : "(missing)") + ", CPU " + (i < expected.length ? expected[i] : "(missing)");
    }
}
