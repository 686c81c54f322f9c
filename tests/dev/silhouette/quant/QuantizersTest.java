package dev.silhouette.quant;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertThrows;
import static org.testng.Assert.assertTrue;

public class QuantizersTest {

    @Test
    public void symmetricCodesStayOnGridAndErrorIsHalfAStep() {
        Tensor w = Tensor.normal(Shape.of(6, 3, 3, 3), 0.5f, 1);
        for (int bits = 2; bits <= 8; bits++) {
            float[] alpha = Quantizers.maxAbs(w, 6);
            QuantizedTensor q = Quantizers.symmetric(w, bits, alpha);
            int qmax = (1 << (bits - 1)) - 1;
            Tensor back = q.dequantize();
            int per = w.size() / 6;
            for (int i = 0; i < w.size(); i++) {
                int c = q.codes()[i];
                assertTrue(c >= -qmax && c <= qmax, "code " + c + " at " + i + " outside +-" + qmax);
                float step = alpha[i / per] / qmax;
                assertTrue(Math.abs(back.data()[i] - w.data()[i]) <= step / 2 * 1.0001f,
                        "bits " + bits + " index " + i + ": " + w.data()[i] + " -> " + back.data()[i] + ", step " + step);
            }
        }
    }

    @Test
    public void symmetricIsOddAndClipsOutsideAlpha() {
        Tensor x = Tensor.uniform(Shape.of(1000), -3, 3, 2);
        Tensor neg = x.copy();
        for (int i = 0; i < neg.size(); i++) neg.data()[i] = -neg.data()[i];
        QuantizedTensor a = Quantizers.symmetric(x, 4, new float[] {1.5f});
        QuantizedTensor b = Quantizers.symmetric(neg, 4, new float[] {1.5f});
        for (int i = 0; i < x.size(); i++) {
            assertEquals(b.codes()[i], -a.codes()[i], "negated code at " + i);
            if (x.data()[i] > 1.5f) assertEquals(a.codes()[i], 7, "clipped above at " + i);
            if (x.data()[i] < -1.5f) assertEquals(a.codes()[i], -7, "clipped below at " + i);
        }
    }

    @Test
    public void roundingIsHalfToEven() {
        // alpha 7 at 4 bits gives scale exactly 1, so x / scale is exact and the ties are real ties.
        Tensor x = new Tensor(Shape.of(6), new float[] {0.5f, 1.5f, 2.5f, -2.5f, -0.5f, 3.5f});
        int[] expected = {0, 2, 2, -2, 0, 4};
        QuantizedTensor q = Quantizers.symmetric(x, 4, new float[] {7f});
        assertEquals(q.scales()[0], 1f);
        for (int i = 0; i < expected.length; i++) assertEquals(q.codes()[i], expected[i], "tie " + x.data()[i]);
    }

    @Test
    public void oneBitSymmetricIsSignTimesScale() {
        Tensor x = new Tensor(Shape.of(4), new float[] {-0.2f, 0f, 3f, -5f});
        QuantizedTensor q = Quantizers.symmetric(x, 1, new float[] {0.75f});
        assertEquals(q.codes(), new int[] {-1, 1, 1, -1});
        assertEquals(q.dequantize().data(), new float[] {-0.75f, 0.75f, 0.75f, -0.75f});
    }

    @Test
    public void affineHoldsZeroExactlyAndCoversTheRange() {
        Tensor x = Tensor.uniform(Shape.of(4, 50), -0.3f, 2.1f, 3);
        x.data()[7] = 0f;
        for (int bits = 1; bits <= 8; bits++) {
            float[] lo = Quantizers.minimum(x, 4), hi = Quantizers.maximum(x, 4);
            QuantizedTensor q = Quantizers.affine(x, bits, lo, hi);
            Tensor back = q.dequantize();
            assertEquals(back.data()[7], 0f, "real 0 must be a code at " + bits + " bits");
            for (int i = 0; i < x.size(); i++) {
                int g = i / 50;
                assertTrue(q.codes()[i] >= 0 && q.codes()[i] <= (1 << bits) - 1);
                float scale = q.scales()[g];
                // The zero point's rounding moves the grid by at most half a step; the range ends may clip by that much.
                assertTrue(Math.abs(back.data()[i] - x.data()[i]) <= scale * 1.0001f,
                        "bits " + bits + " index " + i + ": " + x.data()[i] + " -> " + back.data()[i]);
            }
        }
    }

    @Test
    public void perChannelBeatsPerTensorOnUnequalChannels() {
        Tensor w = Tensor.normal(Shape.of(4, 64), 1f, 4);
        float[] gains = {0.01f, 0.1f, 1f, 10f};
        for (int i = 0; i < w.size(); i++) w.data()[i] *= gains[i / 64];
        double perTensor = mse(w, Quantizers.symmetric(w, 4, Quantizers.maxAbs(w, 1)).dequantize());
        double perChannel = mse(w, Quantizers.symmetric(w, 4, Quantizers.maxAbs(w, 4)).dequantize());
        assertTrue(perChannel < perTensor, perChannel + " vs " + perTensor);
    }

    @Test
    public void pactFollowsItsFormula() {
        Tensor x = Tensor.uniform(Shape.of(2000), -1, 4, 5);
        float alpha = 2.7f;
        for (int bits = 1; bits <= 8; bits++) {
            Tensor y = Quantizers.pact(x, bits, alpha).dequantize();
            int levels = (1 << bits) - 1;
            for (int i = 0; i < x.size(); i++) {
                double clipped = Math.min(Math.max(x.data()[i], 0), alpha);
                double expected = Math.round(clipped * levels / alpha) * (double) alpha / levels;
                // Away from ties the float32 computation must land on the same grid point.
                double frac = clipped * levels / alpha - Math.floor(clipped * levels / alpha);
                if (Math.abs(frac - 0.5) < 1e-4) continue;
                assertEquals(y.data()[i], expected, 1e-5, "bits " + bits + " x " + x.data()[i]);
            }
        }
    }

    @Test
    public void badConfigurationsFailWithOneMessage() {
        Tensor x = Tensor.uniform(Shape.of(3, 4), -1, 1, 6);
        for (int bits : new int[] {0, 9, -1}) {
            var e = org.testng.Assert.expectThrows(IllegalArgumentException.class, () -> Quantizers.symmetric(x, bits, new float[] {1}));
            assertTrue(e.getMessage().contains("bits " + bits + " outside the supported 1..8"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Quantizers.affine(x, bits, new float[] {0}, new float[] {1}));
        }
        var e = org.testng.Assert.expectThrows(IllegalArgumentException.class, () -> Quantizers.symmetric(x, 4, new float[] {1, 2}));
        assertTrue(e.getMessage().contains("needs 1 (per tensor) or 3 (per channel)"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Quantizers.pact(x, 4, 0f));
    }

    static double mse(Tensor a, Tensor b) {
        double s = 0;
        for (int i = 0; i < a.size(); i++) s += Math.pow(a.data()[i] - b.data()[i], 2);
        return s / a.size();
    }
}
