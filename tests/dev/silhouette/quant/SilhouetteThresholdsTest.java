package dev.silhouette.quant;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertThrows;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.fail;

/**
 * The CPU reference (selection) against an independent full-sort implementation of the same
 * specification, bit for bit, on images chosen to break selection: heavy ties, constant images, one
 * pixel, sorted and reversed data, signed zeros and odd sizes.
 */
public class SilhouetteThresholdsTest {
    static final int[][] SIZES = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {3, 3}, {1, 17}, {5, 13}, {7, 7}, {28, 28}, {31, 17}, {56, 56}, {112, 112}};
    static final double[][] FRACTIONS = {
            SilhouetteThresholds.cumulativeFractions(50, 30, 20),
            SilhouetteThresholds.cumulativeFractions(10, 20, 30, 40),
            SilhouetteThresholds.cumulativeFractions(1, 1),
            SilhouetteThresholds.cumulativeFractions(100),
            SilhouetteThresholds.cumulativeFractions(10, 10, 10, 10, 10, 10, 10, 10, 10, 10),
            {0.0, 1.0},
            {0.999999999, 1e-9, 0.25},
    };

    /** How the test images draw their values. */
    enum Values { UNIFORM, FOUR_LEVELS, TWO_LEVELS, SATURATED_SIGMOID, SIGNED_ZEROS, SORTED, REVERSED, CONSTANT }

    /** The specification evaluated on a fully sorted copy (Arrays.sort orders floats like the keys). */
    static float[] sortedReference(Tensor silhouette, double[] fractions) {
        int batch = silhouette.shape().n();
        int pixels = silhouette.shape().h() * silhouette.shape().w();
        float[] out = new float[batch * fractions.length];
        for (int b = 0; b < batch; b++) {
            float[] v = Arrays.copyOfRange(silhouette.data(), b * pixels, (b + 1) * pixels);
            Arrays.sort(v);
            for (int j = 0; j < fractions.length; j++) {
                double p = fractions[j] * (pixels - 1);
                int lo = (int) Math.floor(p);
                float frac = (float) (p - lo);
                float vLo = v[lo];
                float vHi = v[Math.min(lo + 1, pixels - 1)];
                out[b * fractions.length + j] = vLo + (vHi - vLo) * frac;
            }
        }
        return out;
    }

    static Tensor image(int batch, int h, int w, Values kind, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int pixels = h * w;
        float[] d = new float[batch * pixels];
        for (int i = 0; i < d.length; i++) {
            d[i] = switch (kind) {
                case UNIFORM -> (float) rnd.nextDouble();
                case FOUR_LEVELS -> (rnd.nextInt(4) + 1) * 0.2f;
                case TWO_LEVELS -> rnd.nextInt(10) < 8 ? 0.125f : 0.875f;
                case SATURATED_SIGMOID -> (float) (1 / (1 + Math.exp(-40 * rnd.nextGaussian())));
                case SIGNED_ZEROS -> switch (rnd.nextInt(5)) {
                    case 0 -> -0.0f;
                    case 1 -> 0.0f;
                    case 2 -> -Float.MIN_VALUE;
                    case 3 -> Float.MIN_VALUE;
                    default -> (float) rnd.nextGaussian();
                };
                case SORTED -> (float) (i % pixels) / pixels;
                case REVERSED -> (float) (pixels - i % pixels) / pixels;
                case CONSTANT -> 0.375f;
            };
        }
        return new Tensor(Shape.of(batch, 1, h, w), d);
    }

    static String firstDifference(float[] expected, float[] actual) {
        if (expected.length != actual.length) return "lengths " + expected.length + " and " + actual.length;
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                return "index " + i + ": expected " + expected[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(expected[i]))
                        + "), got " + actual[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(actual[i])) + ")";
            }
        }
        return null;
    }

    @Test
    public void selectionMatchesFullSortBitForBit() {
        List<String> failures = new ArrayList<>();
        int cases = 0;
        long seed = 1;
        for (Values kind : Values.values()) {
            for (int[] size : SIZES) {
                for (int batch : new int[] {1, 3}) {
                    for (double[] fractions : FRACTIONS) {
                        Tensor t = image(batch, size[0], size[1], kind, seed++);
                        String diff = firstDifference(sortedReference(t, fractions), SilhouetteThresholds.thresholds(t, fractions));
                        if (diff != null) failures.add(kind + " " + t.shape() + " at " + Arrays.toString(fractions) + ": " + diff);
                        cases++;
                    }
                }
            }
        }
        assertTrue(failures.isEmpty(), failures.size() + " of " + cases + " cases differ, e.g. " + failures.stream().limit(5).toList());
    }

    @Test
    public void manyRandomImagesMatchFullSort() {
        SplittableRandom rnd = new SplittableRandom(42);
        Values[] kinds = Values.values();
        for (int c = 0; c < 2000; c++) {
            int h = 1 + rnd.nextInt(40), w = 1 + rnd.nextInt(40);
            Values kind = kinds[rnd.nextInt(kinds.length)];
            double[] fractions = FRACTIONS[rnd.nextInt(FRACTIONS.length)];
            Tensor t = image(1 + rnd.nextInt(3), h, w, kind, rnd.nextLong());
            String diff = firstDifference(sortedReference(t, fractions), SilhouetteThresholds.thresholds(t, fractions));
            if (diff != null) fail("case " + c + ", " + kind + " " + t.shape() + " at " + Arrays.toString(fractions) + ": " + diff);
        }
    }

    @Test
    public void policyFractionsAreExactDivisions() {
        assertEquals(SilhouetteThresholds.cumulativeFractions(50, 30, 20), new double[] {0.5, 0.8});
        assertEquals(SilhouetteThresholds.cumulativeFractions(10, 20, 30, 40), new double[] {0.1, 0.3, 0.6});
        assertEquals(SilhouetteThresholds.cumulativeFractions(100), new double[0]);
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.cumulativeFractions(50, 0, 50));
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.cumulativeFractions());
    }

    @Test
    public void constantImagePutsEveryPixelInTheTopRegion() {
        Tensor t = image(2, 9, 11, Values.CONSTANT, 0);
        double[] fractions = SilhouetteThresholds.cumulativeFractions(10, 20, 30, 40);
        float[] thresholds = SilhouetteThresholds.thresholds(t, fractions);
        for (float x : thresholds) assertEquals(Float.floatToRawIntBits(x), Float.floatToRawIntBits(0.375f));
        for (byte r : SilhouetteThresholds.regionMap(t, thresholds, 4)) assertEquals(r, 3);
    }

    @Test
    public void onePixelIsItsOwnQuantile() {
        Tensor t = new Tensor(Shape.of(3, 1, 1, 1), new float[] {0.25f, 0.5f, 0.9f});
        float[] thresholds = SilhouetteThresholds.thresholds(t, new double[] {0.5, 0.8});
        assertEquals(thresholds, new float[] {0.25f, 0.25f, 0.5f, 0.5f, 0.9f, 0.9f});
        assertEquals(SilhouetteThresholds.regionMap(t, thresholds, 3), new byte[] {2, 2, 2});
    }

    @Test
    public void valuesEqualToAThresholdGoToTheHigherRegion() {
        Tensor t = new Tensor(Shape.of(1, 1, 1, 5), new float[] {0.9f, 0.5f, 0.2f, 0.5f, 0.5f});
        float[] thresholds = SilhouetteThresholds.thresholds(t, new double[] {0.5});
        assertEquals(thresholds, new float[] {0.5f});
        assertEquals(SilhouetteThresholds.regionMap(t, thresholds, 2), new byte[] {1, 1, 0, 1, 1});
    }

    @Test
    public void interpolatesLikeNumpyLinear() {
        // numpy.quantile([0, 1, 2, 3, 4, 5, 6, 7, 8, 10], [0.5, 0.8, 0.95]) = [4.5, 7.2, 9.1]
        float[] v = {3, 0, 10, 1, 8, 2, 7, 4, 6, 5};
        float[] thresholds = SilhouetteThresholds.thresholds(new Tensor(Shape.of(1, 1, 2, 5), v), new double[] {0.5, 0.8, 0.95});
        assertEquals(thresholds[0], 4.5f);
        assertEquals(thresholds[1], 7.2f, 1e-6f);
        assertEquals(thresholds[2], 9.1f, 1e-6f);
    }

    /**
     * On distinct values the count below the threshold at q is floor(p) or floor(p) + 1 (p = q (n - 1)),
     * so within one pixel of q n: the regions get the policy's shares.
     */
    @Test
    public void regionCountsFollowThePolicyOnTieFreeData() {
        int[][] policies = {{50, 30, 20}, {10, 20, 30, 40}};
        SplittableRandom rnd = new SplittableRandom(7);
        for (int[] size : new int[][] {{7, 7}, {28, 28}, {56, 56}, {112, 112}, {13, 31}}) {
            for (int[] shares : policies) {
                int batch = 4, pixels = size[0] * size[1];
                float[] d = new float[batch * pixels];
                for (int b = 0; b < batch; b++) {
                    int[] perm = permutation(pixels, rnd);
                    for (int i = 0; i < pixels; i++) d[b * pixels + i] = (perm[i] + 0.5f) / pixels;
                }
                Tensor t = new Tensor(Shape.of(batch, 1, size[0], size[1]), d);
                double[] fractions = SilhouetteThresholds.cumulativeFractions(shares);
                float[] thresholds = SilhouetteThresholds.thresholds(t, fractions);
                byte[] regions = SilhouetteThresholds.regionMap(t, thresholds, shares.length);
                for (int b = 0; b < batch; b++) {
                    int[] counts = new int[shares.length];
                    for (int i = 0; i < pixels; i++) counts[regions[b * pixels + i]]++;
                    int below = 0;
                    for (int j = 0; j < fractions.length; j++) {
                        below += counts[j];
                        double p = fractions[j] * (pixels - 1);
                        int lo = (int) Math.floor(p);
                        assertTrue(below == lo || below == lo + 1, below + " pixels below threshold " + j + " of image " + b + " of " + t.shape() + ", p = " + p);
                        assertTrue(Math.abs(below - fractions[j] * pixels) <= 1, below + " pixels below the " + fractions[j] + " quantile of " + pixels);
                    }
                }
            }
        }
    }

    @Test
    public void regionMapChecksItsArguments() {
        Tensor t = image(2, 4, 4, Values.UNIFORM, 3);
        float[] thresholds = SilhouetteThresholds.thresholds(t, new double[] {0.5, 0.8});
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.regionMap(t, thresholds, 2));
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.regionMap(t, thresholds, 0));
        assertEquals(SilhouetteThresholds.regionMap(t, thresholds, 3).length, 32);
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.thresholds(t, new double[] {1.5}));
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.thresholds(t, new double[] {Double.NaN}));
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.thresholds(Tensor.zeros(2, 3, 4, 4), new double[] {0.5}));
    }

    @Test
    public void orderKeysFollowTheFloatTotalOrder() {
        float[] ascending = {Float.NEGATIVE_INFINITY, -3f, -Float.MIN_VALUE, -0.0f, 0.0f, Float.MIN_VALUE, 0.5f, Float.MAX_VALUE, Float.POSITIVE_INFINITY};
        for (int i = 0; i < ascending.length; i++) {
            int key = SilhouetteThresholds.orderKey(ascending[i]);
            assertEquals(Float.floatToRawIntBits(SilhouetteThresholds.keyValue(key)), Float.floatToRawIntBits(ascending[i]));
            if (i > 0) assertTrue(SilhouetteThresholds.orderKey(ascending[i - 1]) < key, ascending[i - 1] + " before " + ascending[i]);
        }
    }

    private static int[] permutation(int n, SplittableRandom rnd) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }
}
