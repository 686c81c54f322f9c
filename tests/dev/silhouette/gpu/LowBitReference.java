package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.RegionWidths;
import dev.silhouette.tensor.Window;
import dev.silhouette.quant.BitSerialConv;
import dev.silhouette.quant.RegionQuantizer;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The CPU answers the low-bit kernels are compared with, composed from the specification's own code
 * (RegionOps.regionMap, RegionQuantizer.pactCode, Reference.regionConv2d, BitSerialConv), plus the named
 * region maps and activations of the problem lists.
 */
final class LowBitReference {
    private LowBitReference() {}

    /** NCHW PACT codes of every activation at its pixel's region (regionMap N x H x W, null: region 0). */
    static int[] codes(Tensor x, byte[] regionMap, RegionWidths widths) {
        Shape s = x.shape();
        int plane = s.h() * s.w();
        int[] out = new int[x.size()];
        for (int i = 0; i < out.length; i++) {
            int r = regionMap == null ? 0 : regionMap[i / (s.c() * plane) * plane + i % plane];
            out[i] = RegionQuantizer.pactCode(x.data()[i], widths.alphas()[r], widths.bits()[r]);
        }
        return out;
    }

    /**
     * A_(o,r), laid out ((n O + o) OH + oy) OW + ox) R + r, for any weight codes the kernel takes
     * (unsigned, 1-bit, two's complement down to -2^(b-1)), which Reference.regionConv2d's symmetric weight
     * quantizer cannot produce: BitSerialConv.reference of the codes with every pixel outside region r set
     * to code 0 (zero adds nothing to a product sum, so this is the sum over the taps reading region r).
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
