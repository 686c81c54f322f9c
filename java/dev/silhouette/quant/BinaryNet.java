package dev.silhouette.quant;

import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

/**
 * Binary layers (XNOR-Net / Group-Net style): weights W_o ~ alpha_o sign(W_o) with alpha_o = mean |W_o|
 * per output channel, activations sign(x); sign(0) = +1 throughout, so a value is +1 exactly when its
 * bit is 1 in {@link PackedLayout.BitPlanes} with bits = 1.
 *
 * <p>For +-1 vectors of length n held as bits, a . w = n - 2 popcount(a XOR w): XOR marks the positions
 * that disagree (product -1). Channels past C are 0 in both operands and so never disagree, but they must
 * not count in n: n is the real channel count per tap.
 *
 * <p>Folding: a binary conv then inference BatchNorm is
 * BN(alpha_o d) = gamma_o (alpha_o d - mu_o) / sqrt(var_o + eps) + beta_o = s_o d + t_o with
 * s_o = gamma_o alpha_o / sqrt(var_o + eps) and t_o = beta_o - gamma_o mu_o / sqrt(var_o + eps), where d is
 * the integer XNOR-popcount sum. When the next layer binarizes again only the sign of s_o d + t_o
 * matters: for s_o > 0 it is +1 exactly when d >= ceil(-t_o / s_o), for s_o < 0 when d <= floor(-t_o / s_o),
 * so the frozen layer is one integer comparison per output (no float at all).
 */
public final class BinaryNet {
    private BinaryNet() {}

    public record BinaryWeights(Shape shape, int[] signs, float[] scales) {
        public Tensor dequantize() {
            float[] out = new float[signs.length];
            int per = signs.length / scales.length;
            for (int i = 0; i < out.length; i++) out[i] = signs[i] * scales[i / per];
            return new Tensor(shape, out);
        }
    }

    public static int sign(float v) {
        return v >= 0 ? 1 : -1;
    }

    public static BinaryWeights binarizeWeights(Tensor w) {
        int out = w.shape().dim(0), per = w.size() / out;
        int[] signs = new int[w.size()];
        float[] scales = new float[out];
        for (int o = 0; o < out; o++) {
            double sum = 0;
            for (int i = o * per; i < (o + 1) * per; i++) {
                signs[i] = sign(w.data()[i]);
                sum += Math.abs(w.data()[i]);
            }
            scales[o] = (float) (sum / per);
        }
        return new BinaryWeights(w.shape(), signs, scales);
    }

    /**
     * Several binary bases per layer, W ~ sum_k alpha_k,o B_k,o (the inference form of Group-Net-style
     * multi-base layers). Group-Net learns the scales in training; here they are fitted greedily: base k
     * binarizes the residual R_k = W - sum_(j<k) alpha_j B_j, with alpha_k the per-channel mean |R_k|, which
     * is the L2-optimal scale for that sign pattern, so each base can only lower the residual.
     */
    public static java.util.List<BinaryWeights> bases(Tensor w, int count) {
        if (count < 1) throw new IllegalArgumentException("binary bases " + count + " must be at least 1");
        java.util.List<BinaryWeights> out = new java.util.ArrayList<>();
        Tensor residual = w.copy();
        for (int k = 0; k < count; k++) {
            BinaryWeights b = binarizeWeights(residual);
            out.add(b);
            float[] approx = b.dequantize().data();
            for (int i = 0; i < approx.length; i++) residual.data()[i] -= approx[i];
        }
        return out;
    }

    /** Output of a multi-base layer: sum over bases of alpha_k,o times its XNOR-popcount sum d_k. */
    public static Tensor multiBaseConv(long[] x, Shape xs, java.util.List<BinaryWeights> bases, Window win) {
        Shape ws = bases.getFirst().shape();
        int oh = win.outH(xs.h()), ow = win.outW(xs.w()), plane = oh * ow, channels = ws.dim(0);
        float[] y = new float[xs.n() * channels * plane];
        for (BinaryWeights b : bases) {
            int[] d = xnorConv(x, xs, packWeights(b.signs(), ws), ws, win);
            for (int i = 0; i < d.length; i++) y[i] += b.scales()[i / plane % channels] * d[i];
        }
        return new Tensor(Shape.of(xs.n(), channels, oh, ow), y);
    }

    public static int[] binarizeActivations(Tensor x) {
        int[] s = new int[x.size()];
        for (int i = 0; i < s.length; i++) s[i] = sign(x.data()[i]);
        return s;
    }

    /** +-1 values as 1-bit codes (+1 -> 1, -1 -> 0), packed like activations or weights. */
    public static long[] packActivations(int[] signs, Shape xs) {
        return BitSerialConv.packActivations(toBits(signs), xs, 1);
    }

    public static long[] packWeights(int[] signs, Shape ws) {
        return BitSerialConv.packWeights(toBits(signs), ws, 1, false);
    }

    private static int[] toBits(int[] signs) {
        int[] bits = new int[signs.length];
        for (int i = 0; i < signs.length; i++) {
            if (signs[i] != 1 && signs[i] != -1) throw new IllegalArgumentException("binary value " + signs[i] + " at index " + i + " is not +1 or -1");
            bits[i] = signs[i] > 0 ? 1 : 0;
        }
        return bits;
    }

    /** XNOR-popcount convolution: d[n, o, y, x], the exact sum of +-1 products; out-of-image taps are zero padding. */
    public static int[] xnorConv(long[] x, Shape xs, long[] w, Shape ws, Window win) {
        if (xs.c() != ws.dim(1)) throw new IllegalArgumentException("input has " + xs.c() + " channels, weights expect " + ws.dim(1));
        PackedLayout.BitPlanes layout = new PackedLayout.BitPlanes(1, xs.c());
        int words = layout.words(), channels = xs.c();
        int oh = win.outH(xs.h()), ow = win.outW(xs.w());
        int[] out = new int[xs.n() * ws.dim(0) * oh * ow];
        for (int n = 0; n < xs.n(); n++) {
            for (int o = 0; o < ws.dim(0); o++) {
                for (int oy = 0; oy < oh; oy++) {
                    for (int ox = 0; ox < ow; ox++) {
                        int acc = 0;
                        for (int ky = 0; ky < ws.h(); ky++) {
                            int iy = win.inputY(oy, ky);
                            if (iy < 0 || iy >= xs.h()) continue;
                            for (int kx = 0; kx < ws.w(); kx++) {
                                int ix = win.inputX(ox, kx);
                                if (ix < 0 || ix >= xs.w()) continue;
                                int pixel = (n * xs.h() + iy) * xs.w() + ix, tap = (o * ws.h() + ky) * ws.w() + kx;
                                int disagree = 0;
                                for (int k = 0; k < words; k++) disagree += Long.bitCount(x[layout.index(pixel, 0, k)] ^ w[layout.index(tap, 0, k)]);
                                acc += channels - 2 * disagree;
                            }
                        }
                        out[((n * ws.dim(0) + o) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
        return out;
    }

    public static ChannelAffine fold(float[] alpha, float[] gamma, float[] beta, float[] mean, float[] var, float eps) {
        int c = alpha.length;
        float[] scale = new float[c], shift = new float[c];
        for (int o = 0; o < c; o++) {
            double inv = 1 / Math.sqrt((double) var[o] + eps);
            scale[o] = (float) (gamma[o] * alpha[o] * inv);
            shift[o] = (float) (beta[o] - gamma[o] * mean[o] * inv);
        }
        return new ChannelAffine(scale, shift);
    }

    /** The frozen binary layer: output +1 where (flip ? d <= threshold : d >= threshold). */
    public record Frozen(int[] threshold, boolean[] flip) {
        public int[] apply(int[] d, Shape outShape) {
            int[] out = new int[d.length];
            int plane = outShape.h() * outShape.w(), channels = outShape.c();
            for (int i = 0; i < d.length; i++) {
                int o = i / plane % channels;
                out[i] = (flip[o] ? d[i] <= threshold[o] : d[i] >= threshold[o]) ? 1 : -1;
            }
            return out;
        }
    }

    public static Frozen freeze(ChannelAffine folded) {
        int c = folded.scale().length;
        int[] threshold = new int[c];
        boolean[] flip = new boolean[c];
        for (int o = 0; o < c; o++) {
            double s = folded.scale()[o], t = folded.shift()[o];
            if (s > 0) {
                threshold[o] = (int) Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, Math.ceil(-t / s)));
            } else if (s < 0) {
                flip[o] = true;
                threshold[o] = (int) Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, Math.floor(-t / s)));
            } else {
                // s = 0: the output is the constant sign(t).
                threshold[o] = t >= 0 ? Integer.MIN_VALUE : Integer.MAX_VALUE;
            }
        }
        return new Frozen(threshold, flip);
    }
}
