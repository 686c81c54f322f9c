package dev.silhouette.quant;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

public class BiasCorrectionTest {

    @Test
    public void correctedChannelsHaveTheFullPrecisionMeanAndStdWithinOneLsb() {
        Tensor w = Tensor.normal(Shape.of(16, 8, 3, 3), 0.2f, 21);
        int per = w.size() / 16;
        // Skewed channels with an offset, so 2-4 bit grids visibly move mean and std.
        for (int i = 0; i < w.size(); i++) w.data()[i] = w.data()[i] * w.data()[i] * 3 + 0.02f * (i / per % 5) - 0.05f;
        for (boolean perChannel : new boolean[] {false, true}) {
            for (int bits = 2; bits <= 8; bits++) {
                int groups = Quantizers.groups(w, perChannel);
                QuantizedTensor q = Quantizers.symmetric(w, bits, Aciq.symmetricAlpha(w, bits, Aciq.Prior.LAPLACE, groups));
                BiasCorrection.Corrected c = BiasCorrection.correct(w, q);
                Tensor corrected = c.dequantize();
                boolean someChannelWasOff = false;
                for (int o = 0; o < 16; o++) {
                    double lsb = q.scales()[perChannel ? o : 0];
                    double[] fp = BiasCorrection.meanStd(w.data(), o * per, per);
                    double[] got = BiasCorrection.meanStd(corrected.data(), o * per, per);
                    double[] before = BiasCorrection.meanStd(q.dequantize().data(), o * per, per);
                    someChannelWasOff |= Math.abs(before[0] - fp[0]) > 1e-3 * lsb;
                    assertEquals(got[0], fp[0], lsb, "mean of channel " + o + " at " + bits + " bits");
                    assertEquals(got[1], fp[1], lsb, "std of channel " + o + " at " + bits + " bits");
                    assertEquals(got[0], fp[0], 1e-5, "mean restored to float precision, channel " + o);
                }
                assertTrue(someChannelWasOff, "quantization at " + bits + " bits should have moved some channel's mean");
                assertEquals(c.quantized().codes(), q.codes(), "codes are kept");
            }
        }
    }
}
