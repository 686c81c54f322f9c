package dev.silhouette.quant;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.Arrays;
import java.util.Random;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

public class BitAllocationTest {

    @Test
    public void budgetHoldsExactlyAndWiderChannelsGetMoreBits() {
        Random rnd = new Random(11);
        double[] budgets = {1, 2, 2.5, 3, 4, 7.75, 8};
        for (int trial = 0; trial < 200; trial++) {
            int n = 4 * (1 + rnd.nextInt(16));
            double[] alphas = new double[n];
            for (int i = 0; i < n; i++) alphas[i] = trial % 7 == 0 && i % 5 == 0 ? 0 : Math.exp(rnd.nextGaussian() * 2);
            double budget = budgets[trial % budgets.length];
            int[] bits = BitAllocation.allocate(alphas, budget);
            assertEquals(Arrays.stream(bits).sum(), (int) Math.round(budget * n), "trial " + trial + " " + Arrays.toString(bits));
            for (int i = 0; i < n; i++) {
                assertTrue(bits[i] >= 1 && bits[i] <= 8, "channel " + i + " got " + bits[i]);
                for (int j = 0; j < n; j++) {
                    // Largest remainders may split equal ranges by one bit, never invert a clear order.
                    if (alphas[i] > alphas[j] * 1.5) assertTrue(bits[i] >= bits[j], "alpha " + alphas[i] + " got " + bits[i] + " < " + bits[j] + " for " + alphas[j]);
                }
            }
        }
    }

    @Test
    public void allocationLowersQuantizationErrorOnUnequalChannels() {
        int channels = 8, per = 2048;
        Tensor w = Tensor.normal(Shape.of(channels, per), 1f, 3);
        for (int i = 0; i < w.size(); i++) w.data()[i] *= (float) Math.pow(3, i / per - 4);
        for (int budget = 2; budget <= 6; budget++) {
            double[] alphas = new double[channels];
            float[] clip = Aciq.symmetricAlpha(w, budget, Aciq.Prior.GAUSSIAN, channels);
            for (int c = 0; c < channels; c++) alphas[c] = clip[c];
            int[] bits = BitAllocation.allocate(alphas, budget);
            int[] uniform = new int[channels];
            Arrays.fill(uniform, budget);
            double allocated = totalError(w, bits), flat = totalError(w, uniform);
            assertTrue(allocated < flat, "budget " + budget + ": " + Arrays.toString(bits) + " error " + allocated + " vs uniform " + flat);
        }
    }

    /** Sum of squared errors with each channel quantized at its own width (clip at max |w|, max-scaled grid). */
    private static double totalError(Tensor w, int[] bits) {
        int per = w.size() / bits.length;
        double sum = 0;
        for (int c = 0; c < bits.length; c++) {
            Tensor channel = new Tensor(Shape.of(per), Arrays.copyOfRange(w.data(), c * per, (c + 1) * per));
            float[] alpha = bits[c] == 1 ? new float[] {meanAbs(channel)} : Quantizers.maxAbs(channel, 1);
            sum += QuantizersTest.mse(channel, Quantizers.symmetric(channel, bits[c], alpha).dequantize()) * per;
        }
        return sum;
    }

    private static float meanAbs(Tensor t) {
        double s = 0;
        for (float v : t.data()) s += Math.abs(v);
        return (float) (s / t.size());
    }

    @Test
    public void badBudgetsFailWithOneMessage() {
        var e = org.testng.Assert.expectThrows(IllegalArgumentException.class, () -> BitAllocation.allocate(new double[] {1, 2}, 0.5));
        assertEquals(e.getMessage(), "average bit budget 0.5 is below the minimum of 1 bit per channel");
        e = org.testng.Assert.expectThrows(IllegalArgumentException.class, () -> BitAllocation.allocate(new double[] {1, 2}, 9));
        assertTrue(e.getMessage().contains("above the maximum of 8"), e.getMessage());
        e = org.testng.Assert.expectThrows(IllegalArgumentException.class, () -> BitAllocation.allocate(new double[] {1, 2, 3}, 2.5));
        assertTrue(e.getMessage().contains("not a whole number"), e.getMessage());
    }
}
