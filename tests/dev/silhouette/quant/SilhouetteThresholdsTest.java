package dev.silhouette.quant;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertThrows;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.fail;

/**
 * The CPU reference (selection on 64-bit keys) against an independent stable-sort implementation of the
 * same specification, bit for bit, on images chosen to break selection: heavy ties, constant images, one
 * pixel, sorted and reversed data, signed zeros and odd sizes; and the budget the rank cuts keep.
 */
public class SilhouetteThresholdsTest {
    static final int[][] SIZES = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {3, 3}, {1, 17}, {5, 13}, {7, 7}, {28, 28}, {31, 17}, {56, 56}, {112, 112}};
    static final int[][] SHARES = {{50, 30, 20}, {10, 20, 30, 40}, {1, 1}, {100}, {10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, {1, 1000000},
            {1000000, 1}, {3, 7, 1, 9}};

    /** How the test images draw their values. */
    enum Values { UNIFORM, FOUR_LEVELS, TWO_LEVELS, SATURATED_SIGMOID, SIGNED_ZEROS, SORTED, REVERSED, CONSTANT }

    /** Cut keys and region map of one batch, by the specification's words: a stable sort, then ranks. */
    record Split(long[] cutKeys, byte[] regions) {}

    static Split sortedReference(Tensor silhouette, int[] shares) {
        int batch = silhouette.shape().n(), pixels = silhouette.shape().h() * silhouette.shape().w();
        BigInteger total = BigInteger.valueOf(Arrays.stream(shares).asLongStream().sum());
        int count = shares.length - 1;
        int[] cuts = new int[count];
        long sum = 0;
        for (int j = 0; j < count; j++) {
            sum += shares[j];
            BigInteger[] qr = BigInteger.valueOf(pixels).multiply(BigInteger.valueOf(sum)).divideAndRemainder(total);
            cuts[j] = qr[0].intValue() + (qr[1].signum() > 0 ? 1 : 0);
        }
        long[] keys = new long[batch * count];
        byte[] regions = new byte[batch * pixels];
        float[] d = silhouette.data();
        for (int b = 0; b < batch; b++) {
            int base = b * pixels;
            // Float.compare is the total order of the keys (-0.0 before 0.0); the sort is stable, so ties keep pixel order.
            Integer[] order = IntStream.range(0, pixels).boxed().toArray(Integer[]::new);
            Arrays.sort(order, Comparator.comparing(i -> d[base + i], Float::compare));
            for (int rank = 0; rank < pixels; rank++) {
                int r = 0;
                for (int cut : cuts) if (rank >= cut) r++;
                regions[base + order[rank]] = (byte) r;
            }
            for (int j = 0; j < count; j++) {
                keys[b * count + j] = cuts[j] == pixels ? SilhouetteThresholds.ABOVE_ALL
                        : SilhouetteThresholds.pixelKey(d[base + order[cuts[j]]], order[cuts[j]]);
            }
        }
        return new Split(keys, regions);
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

    static String difference(Split expected, Tensor t, int[] shares) {
        long[] keys = SilhouetteThresholds.cutKeys(t, shares);
        int k = Arrays.mismatch(expected.cutKeys(), keys);
        if (k >= 0) return "cut key " + k + ": expected 0x" + Long.toHexString(expected.cutKeys()[k]) + ", got 0x" + Long.toHexString(keys[k]);
        byte[] regions = SilhouetteThresholds.regionMap(t, keys, shares.length);
        int p = Arrays.mismatch(expected.regions(), regions);
        return p < 0 ? null : "pixel " + p + ": expected region " + expected.regions()[p] + ", got " + regions[p];
    }

    @Test
    public void selectionMatchesAStableSortBitForBit() {
        List<String> failures = new ArrayList<>();
        int cases = 0;
        long seed = 1;
        for (Values kind : Values.values()) {
            for (int[] size : SIZES) {
                for (int batch : new int[] {1, 3}) {
                    for (int[] shares : SHARES) {
                        Tensor t = image(batch, size[0], size[1], kind, seed++);
                        String diff = difference(sortedReference(t, shares), t, shares);
                        if (diff != null) failures.add(kind + " " + t.shape() + " at " + Arrays.toString(shares) + ": " + diff);
                        cases++;
                    }
                }
            }
        }
        assertTrue(failures.isEmpty(), failures.size() + " of " + cases + " cases differ, e.g. " + failures.stream().limit(5).toList());
    }

    @Test
    public void manyRandomImagesMatchAStableSort() {
        SplittableRandom rnd = new SplittableRandom(42);
        Values[] kinds = Values.values();
        for (int c = 0; c < 2000; c++) {
            int h = 1 + rnd.nextInt(40), w = 1 + rnd.nextInt(40);
            Values kind = kinds[rnd.nextInt(kinds.length)];
            int[] shares = SHARES[rnd.nextInt(SHARES.length)];
            Tensor t = image(1 + rnd.nextInt(3), h, w, kind, rnd.nextLong());
            String diff = difference(sortedReference(t, shares), t, shares);
            if (diff != null) fail("case " + c + ", " + kind + " " + t.shape() + " at " + Arrays.toString(shares) + ": " + diff);
        }
    }

    @Test
    public void cutRanksRoundUpTheExactShare() {
        assertEquals(SilhouetteThresholds.cutRanks(new int[] {50, 30, 20}, 784), new int[] {392, 628}, "627.2 rounds up");
        assertEquals(SilhouetteThresholds.cutRanks(new int[] {50, 30, 20}, 196), new int[] {98, 157});
        assertEquals(SilhouetteThresholds.cutRanks(new int[] {50, 30, 20}, 49), new int[] {25, 40}, "24.5 and 39.2 round up");
        assertEquals(SilhouetteThresholds.cutRanks(new int[] {50, 30, 20}, 10), new int[] {5, 8}, "exact shares stay exact");
        assertEquals(SilhouetteThresholds.cutRanks(new int[] {50, 30, 20}, 1), new int[] {1, 1}, "one pixel: the lowest region");
        assertEquals(SilhouetteThresholds.cutRanks(new int[] {70, 30}, 10), new int[] {7}, "0.7 * 10 is 7, not the double 7.000000000000001");
        assertEquals(SilhouetteThresholds.cutRanks(new int[] {100}, 784), new int[0]);
        assertEquals(SilhouetteThresholds.cutRanks(new int[] {Integer.MAX_VALUE - 1, 1}, Integer.MAX_VALUE), new int[] {Integer.MAX_VALUE - 1},
                "n S_j in 64 bits");
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.cutRanks(new int[] {50, 0, 50}, 10));
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.cutRanks(new int[0], 10));
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.cutRanks(new int[] {Integer.MAX_VALUE, 1}, 10));
    }

    /**
     * The point of ranking ties by index: whatever the values, every image's regions hold exactly the cut
     * counts, so a policy with non-decreasing widths never spends more than its nominal bits.
     */
    @Test
    public void everyImageSpendsThePolicyBudgetWhateverItsTies() {
        RegionPolicy policy = RegionPolicy.parse("2:50,3:30,4:20");
        int[] shares = policy.percents();
        for (Values kind : Values.values()) {
            for (int[] size : SIZES) {
                Tensor t = image(2, size[0], size[1], kind, 9);
                int pixels = size[0] * size[1];
                int[] cuts = SilhouetteThresholds.cutRanks(shares, pixels);
                byte[] regions = SilhouetteThresholds.regionMap(t, SilhouetteThresholds.cutKeys(t, shares), 3);
                for (int b = 0; b < 2; b++) {
                    int[] counts = new int[3];
                    for (int i = 0; i < pixels; i++) counts[regions[b * pixels + i]]++;
                    int[] expected = {cuts[0], cuts[1] - cuts[0], pixels - cuts[1]};
                    assertEquals(counts, expected, kind + " " + t.shape() + " image " + b);
                    double bits = (2.0 * counts[0] + 3.0 * counts[1] + 4.0 * counts[2]) / pixels;
                    assertTrue(bits <= policy.averageBits() + 1e-12, kind + " " + t.shape() + ": " + bits + " bits");
                    // Each cut moves less than one pixel from its exact share, each worth at most 2 bits here.
                    assertTrue(bits > policy.averageBits() - 2.0 / pixels, kind + " " + t.shape() + ": " + bits + " bits");
                }
            }
        }
    }

    @Test
    public void constantImageSplitsByPixelIndex() {
        Tensor t = image(2, 9, 11, Values.CONSTANT, 0);
        int[] shares = {10, 20, 30, 40};
        byte[] regions = SilhouetteThresholds.regionMap(t, SilhouetteThresholds.cutKeys(t, shares), 4);
        // 99 pixels: cuts at ceil(9.9) = 10, ceil(29.7) = 30, ceil(59.4) = 60, in raster order.
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 99; i++) assertEquals(regions[b * 99 + i], i < 10 ? 0 : i < 30 ? 1 : i < 60 ? 2 : 3, "image " + b + " pixel " + i);
    }

    @Test
    public void onePixelTakesTheLowestRegion() {
        Tensor t = new Tensor(Shape.of(3, 1, 1, 1), new float[] {0.25f, 0.5f, 0.9f});
        long[] keys = SilhouetteThresholds.cutKeys(t, new int[] {50, 30, 20});
        for (long key : keys) assertEquals(key, SilhouetteThresholds.ABOVE_ALL);
        assertEquals(SilhouetteThresholds.regionMap(t, keys, 3), new byte[] {0, 0, 0});
        // A tiny lowest share still leaves the pixel in the lowest region: ceil(1 * 1 / 100) = 1.
        assertEquals(SilhouetteThresholds.regionMap(t, SilhouetteThresholds.cutKeys(t, new int[] {1, 99}), 2), new byte[] {0, 0, 0});
    }

    @Test
    public void tiesAtACutSplitByPixelIndex() {
        // Ranks: 0.2 (pixel 2), then the three 0.5s in pixel order (1, 3, 4), then 0.9 (pixel 0). Half of
        // 5 pixels rounds up to 3 below the cut, so rank 3, pixel 4, is the cut: pixel 3, the same value, stays below.
        Tensor t = new Tensor(Shape.of(1, 1, 1, 5), new float[] {0.9f, 0.5f, 0.2f, 0.5f, 0.5f});
        long[] keys = SilhouetteThresholds.cutKeys(t, new int[] {50, 50});
        assertEquals(keys, new long[] {SilhouetteThresholds.pixelKey(0.5f, 4)});
        assertEquals(SilhouetteThresholds.cutValue(keys[0]), 0.5f);
        assertEquals(SilhouetteThresholds.regionMap(t, keys, 2), new byte[] {1, 0, 0, 0, 1});
    }

    /**
     * On distinct values the cuts are the original's interpolated-quantile thresholds up to one pixel:
     * there a pixel is in region j or above when v &gt;= t_j, which counts ceil(q (n - 1)) pixels below.
     */
    @Test
    public void onDistinctValuesTheCutsStayWithinOnePixelOfTheQuantiles() {
        SplittableRandom rnd = new SplittableRandom(7);
        for (int[] size : new int[][] {{7, 7}, {14, 14}, {28, 28}, {13, 31}}) {
            for (int[] shares : new int[][] {{50, 30, 20}, {10, 20, 30, 40}}) {
                int pixels = size[0] * size[1];
                float[] d = new float[pixels];
                int[] perm = permutation(pixels, rnd);
                for (int i = 0; i < pixels; i++) d[i] = (perm[i] + 0.5f) / pixels;
                Tensor t = new Tensor(Shape.of(1, 1, size[0], size[1]), d);
                byte[] regions = SilhouetteThresholds.regionMap(t, SilhouetteThresholds.cutKeys(t, shares), shares.length);
                double total = Arrays.stream(shares).sum(), sum = 0;
                for (int j = 0; j + 1 < shares.length; j++) {
                    sum += shares[j];
                    int cut = j + 1;
                    long below = IntStream.range(0, pixels).filter(i -> regions[i] < cut).count();
                    long original = (long) Math.ceil(sum / total * (pixels - 1));
                    assertTrue(Math.abs(below - original) <= 1, below + " below cut " + j + " of " + t.shape() + ", the original " + original);
                }
            }
        }
    }

    @Test
    public void argumentsAreChecked() {
        Tensor t = image(2, 4, 4, Values.UNIFORM, 3);
        long[] keys = SilhouetteThresholds.cutKeys(t, new int[] {50, 30, 20});
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.regionMap(t, keys, 2));
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.regionMap(t, keys, 0));
        assertEquals(SilhouetteThresholds.regionMap(t, keys, 3).length, 32);
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.cutKeys(t, new int[] {50, -50}));
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.cutKeys(t, new int[257]));
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.cutKeys(Tensor.zeros(2, 3, 4, 4), new int[] {50, 50}));
        assertThrows(IllegalArgumentException.class, () -> SilhouetteThresholds.cutKeys(Tensor.zeros(2, 1, 0, 4), new int[] {50, 50}));
    }

    @Test
    public void keysFollowTheFloatTotalOrderThenThePixelIndex() {
        float[] ascending = {Float.NEGATIVE_INFINITY, -3f, -Float.MIN_VALUE, -0.0f, 0.0f, Float.MIN_VALUE, 0.5f, Float.MAX_VALUE, Float.POSITIVE_INFINITY};
        for (int i = 0; i < ascending.length; i++) {
            int key = SilhouetteThresholds.orderKey(ascending[i]);
            assertEquals(Float.floatToRawIntBits(SilhouetteThresholds.keyValue(key)), Float.floatToRawIntBits(ascending[i]));
            assertEquals(Float.floatToRawIntBits(SilhouetteThresholds.cutValue(SilhouetteThresholds.pixelKey(ascending[i], 5))),
                    Float.floatToRawIntBits(ascending[i]));
            if (i > 0) {
                assertTrue(SilhouetteThresholds.orderKey(ascending[i - 1]) < key, ascending[i - 1] + " before " + ascending[i]);
                assertTrue(Long.compareUnsigned(SilhouetteThresholds.pixelKey(ascending[i - 1], Integer.MAX_VALUE - 1),
                        SilhouetteThresholds.pixelKey(ascending[i], 0)) < 0, "the value decides before the index");
            }
            assertTrue(Long.compareUnsigned(SilhouetteThresholds.pixelKey(ascending[i], 3), SilhouetteThresholds.pixelKey(ascending[i], 4)) < 0);
            assertTrue(Long.compareUnsigned(SilhouetteThresholds.pixelKey(ascending[i], Integer.MAX_VALUE - 1), SilhouetteThresholds.ABOVE_ALL) < 0);
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
