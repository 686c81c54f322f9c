package dev.silhouette.quant;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.Random;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

public class AciqTest {

    @Test
    public void multipliersMatchThePublishedConstants() {
        double[] laplace = {2.83, 3.89, 5.03}, gauss = {1.71, 2.15, 2.55};
        for (int bits = 2; bits <= 4; bits++) {
            assertEquals(Aciq.multiplier(Aciq.Prior.LAPLACE, bits, false), laplace[bits - 2], 0.05, "Laplace " + bits + " bits");
            assertEquals(Aciq.multiplier(Aciq.Prior.GAUSSIAN, bits, false), gauss[bits - 2], 0.05, "Gaussian " + bits + " bits");
        }
    }

    @Test
    public void multiplierIsAStationaryPointOfTheErrorAndGrowsWithBits() {
        double previous = 0;
        for (Aciq.Prior prior : Aciq.Prior.values()) {
            previous = 0;
            for (int bits = 1; bits <= 8; bits++) {
                double a = Aciq.multiplier(prior, bits, false);
                assertTrue(a > previous, prior + " " + bits + " bits: " + a + " after " + previous);
                previous = a;
                double e = Aciq.expectedError(prior, bits, a);
                assertTrue(e <= Aciq.expectedError(prior, bits, a * 1.01) && e <= Aciq.expectedError(prior, bits, a * 0.99), prior + " " + bits);
            }
        }
    }

    @Test
    public void aciqClipNearlyMinimisesTheMeasuredErrorOnLaplaceData() {
        Random rnd = new Random(7);
        float[] v = new float[200_000];
        double b = 0.3;
        for (int i = 0; i < v.length; i++) {
            double u = rnd.nextDouble() - 0.5;
            v[i] = (float) (-b * Math.signum(u) * Math.log(1 - 2 * Math.abs(u)));
        }
        Tensor x = new Tensor(Shape.of(v.length), v);
        assertEquals(Aciq.scale(Aciq.Prior.LAPLACE, v, 0, v.length, 0, false), b, 0.01);
        for (int bits = 2; bits <= 4; bits++) {
            float alpha = Aciq.symmetricAlpha(x, bits, Aciq.Prior.LAPLACE, 1)[0];
            double atAciq = measured(x, bits, alpha);
            double best = Double.MAX_VALUE;
            for (double a = 0.5 * b; a < 15 * b; a += 0.05 * b) best = Math.min(best, measured(x, bits, (float) a));
            assertTrue(atAciq <= best * 1.05, bits + " bits: error at ACIQ " + atAciq + " vs best " + best);
            assertTrue(atAciq < measured(x, bits, Quantizers.maxAbs(x, 1)[0]) * 0.8, bits + " bits: ACIQ must beat max clipping");
        }
    }

    /** Error of an affine grid of 2^M levels over [-a, a], the grid the noise model describes. */
    private static double measured(Tensor x, int bits, float a) {
        return QuantizersTest.mse(x, Quantizers.affine(x, bits, new float[] {-a}, new float[] {a}).dequantize());
    }

    @Test
    public void oneSidedRangeBeatsMaxOnRectifiedData() {
        Tensor x = Tensor.normal(Shape.of(100_000), 1f, 8);
        for (int i = 0; i < x.size(); i++) x.data()[i] = Math.max(0, x.data()[i]);
        for (int bits = 2; bits <= 4; bits++) {
            float[][] r = Aciq.affineRanges(x, bits, Aciq.Prior.GAUSSIAN, 1);
            assertEquals(r[0][0], 0f);
            double aciq = QuantizersTest.mse(x, Quantizers.affine(x, bits, r[0], r[1]).dequantize());
            double max = QuantizersTest.mse(x, Quantizers.affine(x, bits, new float[] {0}, Quantizers.maximum(x, 1)).dequantize());
            assertTrue(aciq < max, bits + " bits: " + aciq + " vs " + max);
        }
    }
}
