package dev.silhouette.backend.cpu;

import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;

import java.util.Arrays;

/**
 * The column matrix of a convolution: for every tap (c, ky, kx) of the window and every output pixel, the
 * input value that tap reads there, 0 in the padding. The forward GEMM multiplies the weights by it and
 * the weight gradient multiplies the output gradient by its transpose; {@link Gemm} takes no transposed
 * operand, so the matrix is written in either layout.
 */
public final class Im2col {
    private Im2col() {}

    public enum Layout {
        /** A row per tap, the pixels along it (weights x columns: the forward). */
        TAP_ROWS,
        /** A row per pixel, the taps along it (output gradient x columns transposed: the weight gradient). */
        PIXEL_ROWS
    }

    /**
     * Columns of image {@code n}, input channels {@code c0} to {@code c0 + channels - 1}, for output pixels
     * {@code p0} to {@code p1 - 1} (row-major over the output's {@code ow} columns; a range may start and end
     * mid-row). {@code col} holds (p1 - p0) x channels x kh x kw values in the given layout. On the calling
     * thread: the convolution runs one fill per task of the worker pool.
     */
    public static void fill(float[] x, Shape in, int n, int c0, int channels, Window win, int ow, int p0, int p1,
                            Layout layout, float[] col) {
        int kh = win.kernelH(), kw = win.kernelW(), taps = channels * kh * kw;
        int tapStride = layout == Layout.TAP_ROWS ? p1 - p0 : 1, pixelStride = layout == Layout.TAP_ROWS ? 1 : taps;
        for (int tap = 0; tap < taps; tap++) {
            int c = tap / (kh * kw), ky = (tap / kw) % kh, kx = tap % kw;
            int plane = ((n * in.c()) + c0 + c) * in.h() * in.w();
            int shift = win.inputX(0, kx);
            // One output row's stretch [ox0, ox1) at a time; col[dst + ox * pixelStride] is output column ox of it.
            for (int p = p0; p < p1; ) {
                int oy = p / ow, ox0 = p % ow, ox1 = Math.min(ow, ox0 + p1 - p);
                int dst = tap * tapStride + (p - p0 - ox0) * pixelStride;
                p += ox1 - ox0;
                int iy = win.inputY(oy, ky);
                if (iy < 0 || iy >= in.h()) {
                    zero(col, dst, ox0, ox1, pixelStride);
                    continue;
                }
                int srcRow = plane + iy * in.w();
                if (win.strideW() == 1 && pixelStride == 1) {
                    // Unit stride into a contiguous row: the valid taps are one run of the input row.
                    int from = Math.clamp(-shift, ox0, ox1), to = Math.clamp(in.w() - shift, from, ox1);
                    Arrays.fill(col, dst + ox0, dst + from, 0f);
                    System.arraycopy(x, srcRow + from + shift, col, dst + from, to - from);
                    Arrays.fill(col, dst + to, dst + ox1, 0f);
                    continue;
                }
                for (int ox = ox0; ox < ox1; ox++) {
                    int ix = win.inputX(ox, kx);
                    col[dst + ox * pixelStride] = ix < 0 || ix >= in.w() ? 0f : x[srcRow + ix];
                }
            }
        }
    }

    private static void zero(float[] col, int dst, int ox0, int ox1, int pixelStride) {
        if (pixelStride == 1) {
            Arrays.fill(col, dst + ox0, dst + ox1, 0f);
            return;
        }
        for (int ox = ox0; ox < ox1; ox++) col[dst + ox * pixelStride] = 0f;
    }
}
