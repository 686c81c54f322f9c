package dev.silhouette.train;

import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertNotNull;
import static org.testng.Assert.assertNull;

/**
 * The input gradient of a convolution (a transposed convolution at stride 1, the column scatter otherwise) against the
 * definition summed in double: dx[c, iy, ix] = sum over outputs reading it of weight x dy.
 */
public class ConvInputGradientTest {
    @DataProvider
    public Object[][] shapes() {
        return new Object[][] {
                // n, c, h, w, out, k, stride, pad, dilation, groups
                {2, 16, 28, 28, 16, 3, 1, 1, 1, 1},
                {1, 8, 9, 11, 12, 3, 1, 0, 1, 1},
                {2, 6, 10, 10, 9, 5, 1, 2, 1, 3},
                {1, 4, 12, 12, 8, 3, 1, 2, 2, 1},
                {1, 64, 7, 7, 64, 3, 1, 1, 1, 1},
                {2, 8, 14, 14, 16, 3, 2, 1, 1, 1},   // strided: the scatter
                {1, 4, 8, 8, 4, 3, 1, 3, 1, 1},      // more padding than the window reaches: the scatter
        };
    }

    @Test(dataProvider = "shapes")
    public void matchesTheDefinition(int n, int c, int h, int w, int out, int k, int stride, int pad, int dilation, int groups) {
        Op.Conv2d op = new Op.Conv2d(c, out, new Window(k, k, stride, stride, pad, pad, dilation, dilation), groups, false);
        SplittableRandom r = new SplittableRandom(c * 131L + h * 7L + out);
        Tensor x = random(r, Shape.of(n, c, h, w)), weight = random(r, Shape.of(out, c / groups, k, k));
        int oh = op.window().outH(h), ow = op.window().outW(w);
        Tensor dy = random(r, Shape.of(n, out, oh, ow));
        Tensor dx = OpGradients.conv2d(x, weight, dy, op, true, false).input();
        double[] expected = new double[x.size()];
        int cg = c / groups, og = out / groups;
        for (int b = 0; b < n; b++)
            for (int o = 0; o < out; o++) {
                int g = o / og;
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++)
                        for (int ci = 0; ci < cg; ci++)
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++) {
                                    int iy = oy * stride - pad + ky * dilation, ix = ox * stride - pad + kx * dilation;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                    expected[((b * c + g * cg + ci) * h + iy) * w + ix] += (double) weight.data()[((o * cg + ci) * k + ky) * k + kx]
                                            * dy.data()[((b * out + o) * oh + oy) * ow + ox];
                                }
            }
        for (int i = 0; i < expected.length; i++) assertEquals(dx.data()[i], expected[i], 1e-5 * (1 + Math.abs(expected[i])), "dx " + i);
        boolean direct = stride == 1 && pad <= (k - 1) * dilation;
        if (direct) assertNotNull(OpGradients.transposedConvolution(dy, weight, op, x.shape()));
        else assertNull(OpGradients.transposedConvolution(dy, weight, op, x.shape()));
    }

    private static Tensor random(SplittableRandom r, Shape s) {
        float[] v = new float[s.size()];
        for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextDouble() * 2 - 1);
        return new Tensor(s, v);
    }
}
