package dev.silhouette.backend.cpu;

import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;

/**
 * Depthwise convolutions (vectorised; strided ones through column phases) against their definition as the backend
 * specifies it, bit for bit: per output one FMA chain over the window's taps in order from zero, padding taps skipped,
 * then bias, residual and ReLU.
 */
public class DepthwiseConvTest {
    @DataProvider
    public Object[][] shapes() {
        return new Object[][] {
                // n, channels, h, w, k, stride, pad, dilation
                {2, 32, 112, 112, 3, 1, 1, 1},   // MobileNetV2's first depthwise layer
                {1, 96, 112, 112, 3, 2, 1, 1},   // and its first strided one
                {3, 5, 13, 17, 3, 2, 1, 1},      // odd sizes, stride 2
                {1, 4, 20, 19, 5, 3, 2, 1},      // stride 3, 5x5
                {1, 6, 15, 15, 3, 1, 2, 2},      // dilation 2
                {2, 3, 7, 7, 3, 2, 0, 1},        // unpadded, stride 2
                {1, 2, 1, 40, 3, 2, 1, 1},       // one row
        };
    }

    @Test(dataProvider = "shapes")
    public void isTheFmaChainOfItsDefinition(int n, int channels, int h, int w, int k, int stride, int pad, int dilation) {
        Window win = new Window(k, k, stride, stride, pad, pad, dilation, dilation);
        Op.Conv2d op = new Op.Conv2d(channels, channels, win, channels, true);
        SplittableRandom r = new SplittableRandom(channels * 31L + h * 7L + stride);
        Tensor x = random(r, Shape.of(n, channels, h, w)), weight = random(r, Shape.of(channels, 1, k, k)), bias = random(r, Shape.of(channels));
        int oh = win.outH(h), ow = win.outW(w);
        Tensor residual = random(r, Shape.of(n, channels, oh, ow));
        Tensor y = CpuOps.conv2d(x, weight, bias, op, residual, true);
        for (int b = 0; b < n; b++)
            for (int c = 0; c < channels; c++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        float acc = 0f;
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy * stride - pad + ky * dilation, ix = ox * stride - pad + kx * dilation;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                acc = Math.fma(weight.data()[(c * k + ky) * k + kx], x.data()[((b * channels + c) * h + iy) * w + ix], acc);
                            }
                        int i = ((b * channels + c) * oh + oy) * ow + ox;
                        float v = acc + bias.data()[c] + residual.data()[i];
                        float expected = v > 0f ? v : 0f;
                        assertEquals(Float.floatToRawIntBits(y.data()[i]), Float.floatToRawIntBits(expected), "output " + i);
                    }
    }

    private static Tensor random(SplittableRandom r, Shape s) {
        float[] v = new float[s.size()];
        for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextDouble() * 2 - 1);
        return new Tensor(s, v);
    }
}
