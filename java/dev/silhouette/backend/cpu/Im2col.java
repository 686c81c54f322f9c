package dev.silhouette.backend.cpu;

import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;

import java.util.Arrays;

/**
 * The column matrix of a convolution, a row per tap (c, ky, kx) of the window and the output pixels along
 * it: the input value that tap reads there, 0 in the padding. The forward GEMM multiplies the weights by
 * it; the weight gradient multiplies the output gradient by its transpose, which {@link Gemm} reads
 * from this layout while it packs.
 */
public final class Im2col {
    private Im2col() {}

    /**
     * Columns of image {@code n}, input channels {@code c0} to {@code c0 + channels - 1}, for output pixels
     * {@code p0} to {@code p1 - 1} (row-major over the output's {@code ow} columns; a range may start and end
     * mid-row). {@code col} holds channels x kh x kw rows of (p1 - p0) values. On the calling
     * thread: the convolution runs one fill per task of the worker pool.
     */
    public static void fill(float[] x, Shape in, int n, int c0, int channels, Window win, int ow, int p0, int p1,
                            float[] col) {
        int kh = win.kernelH(), kw = win.kernelW(), taps = channels * kh * kw;
        int tapStride = p1 - p0;
        for (int tap = 0; tap < taps; tap++) {
            int c = tap / (kh * kw), ky = (tap / kw) % kh, kx = tap % kw;
            int plane = ((n * in.c()) + c0 + c) * in.h() * in.w();
            int shift = win.inputX(0, kx);
            // One output row's stretch [ox0, ox1) at a time; col[dst + ox] is output column ox of it.
            for (int p = p0; p < p1; ) {
                int oy = p / ow, ox0 = p % ow, ox1 = Math.min(ow, ox0 + p1 - p);
                int dst = tap * tapStride + p - p0 - ox0;
                p += ox1 - ox0;
                int iy = win.inputY(oy, ky);
                if (iy < 0 || iy >= in.h()) {
                    Arrays.fill(col, dst + ox0, dst + ox1, 0f);
                    continue;
                }
                int srcRow = plane + iy * in.w();
                if (win.strideW() == 1) {
                    // Unit stride into a contiguous row: the valid taps are one run of the input row.
                    int from = Math.clamp(-shift, ox0, ox1), to = Math.clamp(in.w() - shift, from, ox1);
                    // The padding is a pixel or two at each end: a loop, not Arrays.fill's call and range check.
                    for (int q = dst + ox0; q < dst + from; q++) col[q] = 0f;
                    System.arraycopy(x, srcRow + from + shift, col, dst + from, to - from);
                    for (int q = dst + to; q < dst + ox1; q++) col[q] = 0f;
                    continue;
                }
                for (int ox = ox0; ox < ox1; ox++) {
                    int ix = win.inputX(ox, kx);
                    col[dst + ox] = ix < 0 || ix >= in.w() ? 0f : x[srcRow + ix];
                }
            }
        }
    }

}
