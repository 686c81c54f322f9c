package dev.silhouette.quant;

import dev.silhouette.tensor.Window;
import org.testng.annotations.Test;

import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/** Bit accounting and clip calibration against values worked out by hand or by brute force. */
public class RegionCostTest {

    @Test
    public void tapCountsOfAPaddedThreeByThreeWindow() {
        // 3x3 input, 3x3 kernel, stride 1, pad 1: corners are read by 4 windows, edges by 6, the centre by 9.
        assertEquals(LayerCost.tapCounts(3, 3, Window.square(3, 1, 1)), new int[] {4, 6, 4, 6, 9, 6, 4, 6, 4});
        // 4x4, 1x1 kernel, stride 2: only the even pixels are read, once (the field-by-field form MainJob uses).
        assertEquals(LayerCost.tapCounts(4, 4, 1, 1, 2, 2, 0, 0, 1, 1), new int[] {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0});
    }

    @Test
    public void regionCostsChargeEachTapAtItsPixelsWidths() {
        int[] taps = LayerCost.tapCounts(3, 3, Window.square(3, 1, 1));
        LayerCost cost = new LayerCost("conv", 2, 5, taps);
        // Centre pixel in region 1 (4 bits), the rest region 0 (2 bits); shared weights at 4 bits.
        byte[] map = {0, 0, 0, 0, 1, 0, 0, 0, 0};
        cost.addImage(map, 0, false, new int[] {2, 4}, new int[] {4, 4}, 9);
        // Taps per channel: 49, of which 9 read the centre. Two channels, five output channels.
        double actTaps = 2 * (40 * 2 + 9 * 4);
        assertEquals(cost.activationBitsPerMac(), actTaps / (2 * 49), 1e-12);
        // Per value, the centre counts once among 9 pixels: (8 x 2 + 4) / 9, below the MAC average that reads it 9 times of 49.
        assertEquals(cost.averageActivationBits(), (8 * 2 + 4) / 9.0, 1e-12);
        assertEquals(cost.bitOpsPerImage(), 5 * 2 * (40 * 2 * 4 + 9 * 4 * 4), 1e-9);
        assertEquals(cost.macsPerImage(), 5 * 2 * 49);
        // Codes: 2 channels x (8 pixels x 2 bits + 1 x 4) = 40 bits, plus a 9-bit mask = 49 bits -> 7 bytes.
        assertEquals(cost.packedBytesPerImage(), 7.0);
        // A map of one region is uniform quantization.
        LayerCost a = new LayerCost("a", 3, 4, taps), b = new LayerCost("b", 3, 4, taps);
        a.addUniform(3, 5, 2);
        for (int i = 0; i < 2; i++) b.addImage(new byte[9 * 3], 0, true, new int[] {3}, new int[] {5}, 0);
        assertEquals(b.bitOpsPerImage(), a.bitOpsPerImage(), 1e-9);
        assertEquals(b.averageActivationBits(), 3.0, 1e-12);
        assertEquals(b.activationBitsPerMac(), 3.0, 1e-12);
        assertEquals(a.averageActivationBits(), 3.0, 1e-12);
        assertEquals(b.packedBytesPerImage(), a.packedBytesPerImage(), 1e-9);
    }

    static double bruteForceMse(float[] v, float alpha, int bits) {
        double sum = 0;
        for (float x : v) {
            double y = Math.max(0, x);
            double e = y - RegionQuantizer.pactValue(x, alpha, bits);
            sum += e * e;
        }
        return sum / v.length;
    }

    @Test
    public void histogramSearchFindsNearlyTheBruteForceOptimum() {
        SplittableRandom rnd = new SplittableRandom(1);
        float[] v = new float[100_000];
        float max = 0;
        for (int i = 0; i < v.length; i++) {
            // Post-ReLU-like: half zeros, the rest exponential (a one-sided Laplace).
            v[i] = rnd.nextBoolean() ? 0f : (float) -Math.log(1 - rnd.nextDouble());
            max = Math.max(max, v[i]);
        }
        ClipCalibration c = new ClipCalibration(max);
        c.add(v, 0, v.length);
        double previous = 0;
        for (int bits = 2; bits <= 8; bits++) {
            float alpha = c.alpha(bits);
            double best = Double.POSITIVE_INFINITY;
            for (int i = 1; i <= 2000; i++) best = Math.min(best, bruteForceMse(v, max * i / 2000f, bits));
            double got = bruteForceMse(v, alpha, bits);
            assertTrue(got <= best * 1.02 + 1e-9, bits + " bits: alpha " + alpha + " MSE " + got + " vs best " + best);
            // More bits make rounding cheaper, so the clip opens up.
            assertTrue(alpha >= previous, bits + " bits: alpha " + alpha + " below " + previous);
            previous = alpha;
        }
    }
}
