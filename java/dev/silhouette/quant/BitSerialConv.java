package dev.silhouette.quant;

import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;

/**
 * Integer convolution of unsigned activation codes with weight codes (groups = 1), two ways: the plain
 * reference loop, and bit-serially on {@link PackedLayout.BitPlanes}. With activation codes
 * a = sum_i 2^i a_i and weight codes w = sum_j s_j 2^j w_j (s_j = -1 only for the top plane of signed
 * two's complement weights, else +1), a dot product over channels is
 * <pre>
 *   sum_c a_c w_c = sum_i sum_j s_j 2^(i+j) popcount(A_i AND W_j)
 * </pre>
 * Out-of-image taps are skipped, which is zero padding with activation code 0 (the real zero of the
 * PACT/ReLU grid, zero point 0).
 */
public final class BitSerialConv {
    private BitSerialConv() {}

    /** Plain reference: out[n, o, y, x] = sum over c, ky, kx of x[n, c, iy, ix] * w[o, c, ky, kx]. */
    public static long[] reference(int[] x, Shape xs, int[] w, Shape ws, Window win) {
        checkShapes(xs, ws);
        int oh = win.outH(xs.h()), ow = win.outW(xs.w());
        long[] out = new long[xs.n() * ws.dim(0) * oh * ow];
        for (int n = 0; n < xs.n(); n++) {
            for (int o = 0; o < ws.dim(0); o++) {
                for (int oy = 0; oy < oh; oy++) {
                    for (int ox = 0; ox < ow; ox++) {
                        long acc = 0;
                        for (int c = 0; c < xs.c(); c++) {
                            for (int ky = 0; ky < ws.h(); ky++) {
                                for (int kx = 0; kx < ws.w(); kx++) {
                                    int iy = win.inputY(oy, ky);
                                    int ix = win.inputX(ox, kx);
                                    if (iy < 0 || iy >= xs.h() || ix < 0 || ix >= xs.w()) continue;
                                    acc += (long) x[((n * xs.c() + c) * xs.h() + iy) * xs.w() + ix] * w[((o * ws.dim(1) + c) * ws.h() + ky) * ws.w() + kx];
                                }
                            }
                        }
                        out[((n * ws.dim(0) + o) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
        return out;
    }

    /** Unsigned NCHW activation codes to bit planes, pixel-major. */
    public static long[] packActivations(int[] codes, Shape xs, int bits) {
        PackedLayout.BitPlanes layout = new PackedLayout.BitPlanes(bits, xs.c());
        long[] out = new long[xs.n() * xs.h() * xs.w() * layout.wordsPerPosition()];
        for (int n = 0; n < xs.n(); n++) {
            for (int c = 0; c < xs.c(); c++) {
                for (int y = 0; y < xs.h(); y++) {
                    for (int x = 0; x < xs.w(); x++) {
                        int i = ((n * xs.c() + c) * xs.h() + y) * xs.w() + x;
                        PackedLayout.checkCode(codes[i], bits, false, i);
                        setPlanes(out, layout, (n * xs.h() + y) * xs.w() + x, c, codes[i]);
                    }
                }
            }
        }
        return out;
    }

    /** OIHW weight codes (unsigned or two's complement signed) to bit planes, tap-major. */
    public static long[] packWeights(int[] codes, Shape ws, int bits, boolean signed) {
        PackedLayout.BitPlanes layout = new PackedLayout.BitPlanes(bits, ws.dim(1));
        long[] out = new long[ws.dim(0) * ws.h() * ws.w() * layout.wordsPerPosition()];
        for (int o = 0; o < ws.dim(0); o++) {
            for (int c = 0; c < ws.dim(1); c++) {
                for (int ky = 0; ky < ws.h(); ky++) {
                    for (int kx = 0; kx < ws.w(); kx++) {
                        int i = ((o * ws.dim(1) + c) * ws.h() + ky) * ws.w() + kx;
                        PackedLayout.checkCode(codes[i], bits, signed, i);
                        setPlanes(out, layout, (o * ws.h() + ky) * ws.w() + kx, c, codes[i]);
                    }
                }
            }
        }
        return out;
    }

    private static void setPlanes(long[] out, PackedLayout.BitPlanes layout, int position, int channel, int code) {
        for (int p = 0; p < layout.bits(); p++) {
            if (((code >> p) & 1) != 0) out[layout.index(position, p, channel / PackedLayout.WORD_BITS)] |= 1L << (channel % PackedLayout.WORD_BITS);
        }
    }

    /** The bit-serial convolution on packed planes; equals {@link #reference} exactly. */
    public static long[] conv(long[] x, Shape xs, int activationBits, long[] w, Shape ws, int weightBits, boolean signedWeights, Window win) {
        checkShapes(xs, ws);
        PackedLayout.BitPlanes a = new PackedLayout.BitPlanes(activationBits, xs.c()), b = new PackedLayout.BitPlanes(weightBits, ws.dim(1));
        int words = a.words();
        int oh = win.outH(xs.h()), ow = win.outW(xs.w());
        long[] out = new long[xs.n() * ws.dim(0) * oh * ow];
        for (int n = 0; n < xs.n(); n++) {
            for (int o = 0; o < ws.dim(0); o++) {
                for (int oy = 0; oy < oh; oy++) {
                    for (int ox = 0; ox < ow; ox++) {
                        long acc = 0;
                        for (int ky = 0; ky < ws.h(); ky++) {
                            int iy = win.inputY(oy, ky);
                            if (iy < 0 || iy >= xs.h()) continue;
                            for (int kx = 0; kx < ws.w(); kx++) {
                                int ix = win.inputX(ox, kx);
                                if (ix < 0 || ix >= xs.w()) continue;
                                int pixel = (n * xs.h() + iy) * xs.w() + ix, tap = (o * ws.h() + ky) * ws.w() + kx;
                                for (int i = 0; i < activationBits; i++) {
                                    for (int j = 0; j < weightBits; j++) {
                                        long count = 0;
                                        for (int k = 0; k < words; k++) count += Long.bitCount(x[a.index(pixel, i, k)] & w[b.index(tap, j, k)]);
                                        long weight = signedWeights && j == weightBits - 1 ? -(1L << j) : 1L << j;
                                        acc += (count << i) * weight;
                                    }
                                }
                            }
                        }
                        out[((n * ws.dim(0) + o) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
        return out;
    }

    private static void checkShapes(Shape xs, Shape ws) {
        if (xs.rank() != 4 || ws.rank() != 4) throw new IllegalArgumentException("convolution needs NCHW input and OIHW weights, got " + xs + " and " + ws);
        if (xs.c() != ws.dim(1)) throw new IllegalArgumentException("input has " + xs.c() + " channels, weights expect " + ws.dim(1) + " (groups = 1)");
    }
}
