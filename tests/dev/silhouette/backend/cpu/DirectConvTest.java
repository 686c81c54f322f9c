package dev.silhouette.backend.cpu;

import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;

/**
 * The direct convolution gives im2col + GEMM's bits exactly (the same FMA chains per block of taps, the same
 * epilogue), over batch, groups, strides, dilation, padding wider or narrower than the window, more taps than one GEMM block,
 * fused residual and ReLU, and both the calling-thread and the worker-pool paths.
 */
public class DirectConvTest {
    @DataProvider
    public Object[][] shapes() {
        return new Object[][] {
                // n, c, h, w, out, kh, kw, pad h, pad w, dilation, groups, stride h, stride w
                {1, 16, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1},   // the bundled model's layer1
                {2, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1, 1},
                {3, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1},     // 576 taps: three GEMM blocks
                {1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1},   // ResNet-18 layer1, on the worker pool
                {2, 3, 9, 11, 7, 3, 3, 0, 0, 1, 1, 1, 1},      // no padding, odd sizes, a partial channel block
                {1, 5, 10, 6, 13, 5, 3, 2, 0, 1, 1, 1, 1},     // rectangular window, padding in one axis
                {1, 4, 12, 12, 8, 3, 3, 2, 2, 2, 1, 1, 1},     // dilation 2
                {2, 8, 9, 9, 12, 3, 3, 3, 3, 1, 4, 1, 1},      // groups, padding wider than the window needs
                {1, 2, 1, 17, 3, 1, 3, 0, 1, 1, 1, 1, 1},      // one row
                {1, 30, 5, 5, 6, 5, 5, 2, 2, 1, 1, 1, 1},      // 750 taps, 5x5
                {2, 16, 28, 28, 32, 3, 3, 1, 1, 1, 1, 2, 2},   // the bundled model's downsampling 3x3
                {2, 16, 28, 28, 32, 1, 1, 1, 0, 1, 1, 2, 2},   // a padded strided 1x1: one phase of four
                {1, 3, 37, 41, 8, 7, 7, 3, 3, 1, 1, 2, 2},     // a ResNet stem, odd sizes
                {1, 3, 224, 224, 64, 7, 7, 3, 3, 1, 1, 2, 2},  // ResNet-18's stem, on the worker pool
                {1, 6, 13, 10, 9, 3, 2, 1, 0, 2, 3, 3, 2},     // stride 3 x 2, dilation 2, groups 3
                {1, 4, 8, 8, 4, 1, 1, 1, 1, 1, 1, 1, 1},       // 1x1 padded: not a plain GEMM
        };
    }

    @Test(dataProvider = "shapes")
    public void directIsIm2colGemmBitForBit(int n, int c, int h, int w, int out, int kh, int kw, int ph, int pw, int d, int groups, int sh, int sw) {
        Op.Conv2d op = new Op.Conv2d(c, out, new Window(kh, kw, sh, sw, ph, pw, d, d), groups, true);
        assertTrue(DirectConv.applies(op));
        SplittableRandom r = new SplittableRandom(n * 31L + c * 7L + h + out);
        Tensor x = random(r, Shape.of(n, c, h, w)), weight = random(r, Shape.of(out, c / groups, kh, kw)), bias = random(r, Shape.of(out));
        int oh = op.window().outH(h), ow = op.window().outW(w);
        Tensor residual = random(r, Shape.of(n, out, oh, ow));
        for (boolean relu : new boolean[] {false, true}) {
            for (Tensor res : new Tensor[] {null, residual}) {
                for (Tensor b : new Tensor[] {null, bias}) {
                    Tensor direct = CpuOps.conv2d(x, weight, b, op, res, relu, true), gemm = CpuOps.conv2d(x, weight, b, op, res, relu, false);
                    assertEquals(direct.shape(), gemm.shape());
                    for (int i = 0; i < gemm.size(); i++) {
                        assertEquals(Float.floatToRawIntBits(direct.data()[i]), Float.floatToRawIntBits(gemm.data()[i]),
                                "element " + i + " (relu " + relu + ", residual " + (res != null) + ", bias " + (b != null) + ")");
                    }
                }
            }
        }
    }

    @Test
    public void takesEveryConvolutionButPlainGemmsAndDepthwise() {
        assertTrue(DirectConv.applies(new Op.Conv2d(8, 8, Window.square(3, 2, 1), 1, false)), "stride 2");
        assertFalse(DirectConv.applies(new Op.Conv2d(8, 8, Window.square(1, 1, 0), 1, false)), "1x1 stride 1 unpadded: a plain GEMM");
        assertFalse(DirectConv.applies(new Op.Conv2d(8, 8, Window.square(1, 2, 0), 1, false)), "1x1 stride 2 unpadded: im2col subsamples");
        assertFalse(DirectConv.applies(new Op.Conv2d(8, 8, Window.square(3, 1, 1), 8, false)), "depthwise: its own loop");
        assertTrue(DirectConv.applies(new Op.Conv2d(8, 16, Window.square(3, 1, 1), 8, false)), "one input channel per group, two outputs: a GEMM of K = 9");
    }

    private static Tensor random(SplittableRandom r, Shape s) {
        float[] v = new float[Math.toIntExact(s.size())];
        for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextDouble() * 2 - 1);
        return new Tensor(s, v);
    }
}
