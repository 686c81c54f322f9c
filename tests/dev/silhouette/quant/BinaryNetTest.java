package dev.silhouette.quant;

import dev.silhouette.backend.cpu.CpuOps;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

public class BinaryNetTest {

    private static Tensor asFloat(int[] v, Shape s) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) f[i] = v[i];
        return new Tensor(s, f);
    }

    @Test
    public void xnorConvolutionEqualsAFloatConvolutionOfThePlusMinusOneValues() {
        SplittableRandom rnd = new SplittableRandom(9);
        int[] channelChoices = {1, 3, 63, 64, 65, 100, 130};
        for (int trial = 0; trial < 120; trial++) {
            int c = channelChoices[trial % channelChoices.length], o = 1 + rnd.nextInt(4);
            int h = 1 + rnd.nextInt(7), w = 1 + rnd.nextInt(7), k = 1 + 2 * rnd.nextInt(2);
            Window win = Window.square(k, 1 + rnd.nextInt(2), rnd.nextInt(2) * (k / 2));
            if (win.outH(h) < 1 || win.outW(w) < 1) continue;
            Shape xs = Shape.of(1 + rnd.nextInt(2), c, h, w), ws = Shape.of(o, c, k, k);
            Tensor x = Tensor.normal(xs, 1, trial), wt = Tensor.normal(ws, 1, 1000 + trial);
            int[] xa = BinaryNet.binarizeActivations(x);
            BinaryNet.BinaryWeights bw = BinaryNet.binarizeWeights(wt);
            int[] d = BinaryNet.xnorConv(BinaryNet.packActivations(xa, xs), xs, BinaryNet.packWeights(bw.signs(), ws), ws, win);
            Tensor expected = CpuOps.conv2d(asFloat(xa, xs), asFloat(bw.signs(), ws), null, new Op.Conv2d(c, o, win, 1, false));
            assertEquals(d.length, expected.size());
            for (int i = 0; i < d.length; i++) {
                assertEquals((float) d[i], expected.data()[i], 0f, "trial " + trial + " x" + xs + " w" + ws + " " + win + " output " + i);
            }
        }
    }

    @Test
    public void weightScalesAreMeanAbsolutePerOutputChannel() {
        Tensor w = new Tensor(Shape.of(2, 3), new float[] {1, -2, 0, -0.5f, 0.5f, 0.25f});
        BinaryNet.BinaryWeights b = BinaryNet.binarizeWeights(w);
        assertEquals(b.signs(), new int[] {1, -1, 1, -1, 1, 1});
        assertEquals(b.scales(), new float[] {1f, 0.41666666f}, 1e-7f);
    }

    @Test
    public void foldedAndFrozenFormsEqualTheUnfoldedLayer() {
        SplittableRandom rnd = new SplittableRandom(4);
        int c = 70, o = 12;
        Shape xs = Shape.of(2, c, 6, 5), ws = Shape.of(o, c, 3, 3);
        Window win = Window.square(3, 1, 1);
        Tensor x = Tensor.normal(xs, 1, 1), wt = Tensor.normal(ws, 0.1f, 2);
        float[] gamma = new float[o], beta = new float[o], mean = new float[o], var = new float[o];
        for (int i = 0; i < o; i++) {
            gamma[i] = (float) (rnd.nextDouble() * 2 - 0.7); // some negative, so the frozen form must flip
            beta[i] = (float) rnd.nextGaussian();
            mean[i] = (float) (rnd.nextGaussian() * 2);
            var[i] = (float) (0.5 + rnd.nextDouble() * 4);
        }
        Op.BatchNorm bnOp = new Op.BatchNorm(o, 1e-5f);
        int[] xa = BinaryNet.binarizeActivations(x);
        BinaryNet.BinaryWeights bw = BinaryNet.binarizeWeights(wt);
        // Unfolded: float conv with alpha-scaled +-1 weights, then the float BatchNorm.
        Tensor conv = CpuOps.conv2d(asFloat(xa, xs), bw.dequantize(), null, new Op.Conv2d(c, o, win, 1, false));
        Tensor unfolded = CpuOps.batchNorm(conv, new Tensor(Shape.of(o), gamma), new Tensor(Shape.of(o), beta),
                new Tensor(Shape.of(o), mean), new Tensor(Shape.of(o), var), bnOp);
        int[] d = BinaryNet.xnorConv(BinaryNet.packActivations(xa, xs), xs, BinaryNet.packWeights(bw.signs(), ws), ws, win);
        ChannelAffine folded = BinaryNet.fold(bw.scales(), gamma, beta, mean, var, 1e-5f);
        Tensor y = folded.apply(d, unfolded.shape());
        int[] frozen = BinaryNet.freeze(folded).apply(d, unfolded.shape());
        int compared = 0;
        for (int i = 0; i < y.size(); i++) {
            float u = unfolded.data()[i];
            assertEquals(y.data()[i], u, 1e-4f * Math.max(1, Math.abs(u)), "folded output " + i);
            // The sign only differs in float rounding right at the threshold; such outputs are not a test of the form.
            if (Math.abs(u) < 1e-4f) continue;
            assertEquals(frozen[i], BinaryNet.sign(u), "frozen sign of output " + i + " (unfolded " + u + ", d " + d[i] + ")");
            compared++;
        }
        assertTrue(compared > y.size() * 0.99, compared + " of " + y.size());
    }

    @Test
    public void moreBinaryBasesApproximateBetterAndTheirXnorSumEqualsTheFloatConvolution() {
        Shape xs = Shape.of(2, 70, 5, 6), ws = Shape.of(5, 70, 3, 3);
        Window win = Window.square(3, 1, 1);
        Tensor w = Tensor.normal(ws, 0.3f, 11);
        int[] xa = BinaryNet.binarizeActivations(Tensor.normal(xs, 1, 12));
        double previous = Double.MAX_VALUE;
        for (int count = 1; count <= 4; count++) {
            var bases = BinaryNet.bases(w, count);
            Tensor approx = Tensor.zeros(ws);
            for (var b : bases) {
                float[] d = b.dequantize().data();
                for (int i = 0; i < d.length; i++) approx.data()[i] += d[i];
            }
            double error = QuantizersTest.mse(w, approx);
            assertTrue(error < previous * 0.7, count + " bases: error " + error + " after " + previous);
            previous = error;
            Tensor got = BinaryNet.multiBaseConv(BinaryNet.packActivations(xa, xs), xs, bases, win);
            Tensor expected = CpuOps.conv2d(asFloat(xa, xs), approx, null, new Op.Conv2d(70, 5, win, 1, false));
            for (int i = 0; i < got.size(); i++) {
                assertEquals(got.data()[i], expected.data()[i], 1e-4f * Math.max(1, Math.abs(expected.data()[i])), count + " bases, output " + i);
            }
        }
    }
}
