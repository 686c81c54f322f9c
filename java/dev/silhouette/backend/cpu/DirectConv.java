package dev.silhouette.backend.cpu;

import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Window;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Convolutions without a column matrix: each task copies a band of output rows' input, zero-padded,
 * into a buffer its worker owns, with rows {@code Wp} wide (the padded width). Output pixel (r, ox) of the band
 * is then position {@code q = r * Wp + ox}, and tap (c, ky, kx) reads position {@code q + off(c, ky, kx)} of the
 * buffer: for every tap, consecutive outputs read consecutive floats, so the micro-kernel loads two vectors of
 * input per tap straight from the band (the {@code Wp - ow} positions past each row's end are computed and
 * dropped), broadcasts six output channels' weights, and keeps 6 x 2 vectors of accumulators, as {@link Gemm}'s.
 *
 * <p>Im2col writes every input value once per tap (nine times for 3x3) before the GEMM reads it; on the
 * small feature maps of the bundled model that copy took more time than the multiply. Here the copy is the
 * band once.
 *
 * <p>The arithmetic is {@link Gemm}'s on the column matrix, bit for bit: every output is one FMA chain over
 * each block of {@link Gemm#KC} taps in order from zero (a padding tap multiplies a zero, as im2col's zero
 * column), the first block plus the bias, later blocks added to the output, then the residual and ReLU.
 */
final class DirectConv {
    private DirectConv() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int V = S.length();
    private static final int NR = 2 * V;
    private static final int MR = 6;
    /** Floats of padded input per band: a band stays in L2 while every output channel block passes over it. */
    private static final int BAND_FLOATS = 1 << 16;

    /**
     * Whether this path takes the convolution: all but unpadded 1x1 ones (at stride 1 a plain GEMM on the input already;
     * strided, im2col is only a subsampling copy, and measured no slower) and depthwise ones (their own loop).
     */
    static boolean applies(Op.Conv2d op) {
        Window w = op.window();
        boolean pointwise = w.kernelH() == 1 && w.kernelW() == 1 && w.padH() == 0 && w.padW() == 0;
        return !pointwise && !(op.inPerGroup() == 1 && op.outPerGroup() == 1);
    }

    static void run(float[] x, Shape in, float[] w, float[] bias, float[] residual, boolean relu, Op.Conv2d op, float[] out) {
        Window win = op.window();
        int oh = win.outH(in.h()), ow = win.outW(in.w());
        int kh = win.kernelH(), kw = win.kernelW(), dh = win.dilationH(), dw = win.dilationW();
        int groups = op.groups(), cg = op.inPerGroup(), og = op.outPerGroup(), k = op.taps();
        int sh = win.strideH(), sw = win.strideW();
        // Strided windows read the padded input split into phases (rows iy = y * sh + py, columns x * sw + px): in each
        // phase plane the outputs are again consecutive positions, and tap (ky, kx) reads phase
        // ((ky * dh) % sh, (kx * dw) % sw) shifted by ((ky * dh) / sh, (kx * dw) / sw). Only the phases some tap reads are copied.
        int wp = ow + (kw - 1) * dw / sw;
        int haloRows = (kh - 1) * dh / sh;
        int[] phaseIndex = new int[sh * sw];
        java.util.Arrays.fill(phaseIndex, -1);
        int phases = 0;
        for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++) {
                int ph = (ky * dh % sh) * sw + kx * dw % sw;
                if (phaseIndex[ph] < 0) phaseIndex[ph] = phases++;
            }
        int phaseCount = phases;
        int units = in.n() * groups;
        // Bands of output rows: the padded band within BAND_FLOATS, and enough tasks to occupy the workers: more bands
        // where there are rows enough, else (the later layers: few pixels, many channels) chunks of the output channels,
        // so each task reads only its share of the weights.
        int threads = Workers.threads();
        int rows = Math.max(1, Math.min(oh, BAND_FLOATS / (cg * phaseCount * wp) - haloRows));
        int chunks = 1;
        if (units * Math.ceilDiv(oh, rows) < 2 * threads) {
            int wanted = Math.ceilDiv(2 * threads, units);
            if (oh * wp >= wanted * 2 * NR) rows = Math.min(rows, Math.max(1, Math.ceilDiv(oh, wanted)));
            else chunks = Math.min(Math.ceilDiv(og, MR), wanted);
        }
        int bandRows = rows, bands = Math.ceilDiv(oh, rows), chunkRows = Math.ceilDiv(Math.ceilDiv(og, chunks), MR) * MR, ocChunks = Math.ceilDiv(og, chunkRows);
        int pixels = oh * ow;
        // The taps' offsets depend on the band's height only: every band but perhaps the last has bandRows rows.
        int lastRows = oh - (bands - 1) * bandRows;
        int[] fullOffsets = offsets(cg, win, wp, phaseIndex, (bandRows + haloRows) * wp, phaseCount * (bandRows + haloRows) * wp);
        int[] lastOffsets = lastRows == bandRows ? fullOffsets
                : offsets(cg, win, wp, phaseIndex, (lastRows + haloRows) * wp, phaseCount * (lastRows + haloRows) * wp);
        Workers.Body task = (t, worker) -> {
            int u = t / (bands * ocChunks), rest = t % (bands * ocChunks), n = u / groups, g = u % groups;
            int oy0 = (rest % bands) * bandRows, r = Math.min(bandRows, oh - oy0);
            int c0 = (rest / bands) * chunkRows, c1 = Math.min(og, c0 + chunkRows);
            int phasePlane = (r + haloRows) * wp, plane = phaseCount * phasePlane;
            int positions = r * wp, tiles = Math.ceilDiv(positions, NR), stride = tiles * NR;
            // Tiles read up to a tile past the band's last position, plus the window's reach within a row.
            float[] band = Workers.scratch(Workers.Scratch.COLUMNS, cg * plane + NR + wp);
            pad(x, in, n * in.c() + g * cg, cg, win, oy0, r + haloRows, wp, phaseIndex, phasePlane, plane, band);
            int[] offsets = r == bandRows ? fullOffsets : lastOffsets;
            // The band's outputs at every position (those past a row's end dropped at the end), channel rows stride apart.
            // A vector of slack: the last row's masked stretch then stays on the in-range path of the masked load.
            float[] sums = Workers.scratch(Workers.Scratch.GRADIENT, (c1 - c0) * stride + V);
            float[] tile = Workers.scratch(Workers.Scratch.TILE, MR * NR);
            // A tile's taps of one block stay in L1 while every channel block of the chunk passes over them, as a packed B
            // panel in the GEMM; each block's weights are six rows read in place.
            for (int q0 = 0; q0 < positions; q0 += NR) {
                for (int k0 = 0; k0 < k; k0 += Gemm.KC) {
                    int kc = Math.min(Gemm.KC, k - k0);
                    for (int o0 = c0; o0 < c1; o0 += MR) {
                        int m = Math.min(MR, c1 - o0);
                        kernel(kc, w, (g * og + o0) * k, k, m, k0, band, q0, offsets, tile);
                        merge(tile, m, sums, (o0 - c0) * stride + q0, stride, bias, g * og + o0, k0 == 0);
                    }
                }
            }
            finish(sums, stride, c1 - c0, r, wp, ow, out, (n * op.outChannels() + g * og + c0) * pixels + oy0 * ow, pixels, residual, relu);
        };
        CpuOps.runTasks(units * bands * ocChunks, (long) out.length * k, task);
    }

    /**
     * The padded input of output rows [oy0, oy0 + rows - halo) for channels [c0, c0 + channels) of {@code x}: phase plane
     * (py, px) row y, column x holds input (row (oy0 + y) * sh + py - padH, column x * sw + px - padW), zero outside.
     */
    private static void pad(float[] x, Shape in, int c0, int channels, Window win, int oy0, int rows, int wp, int[] phaseIndex, int phasePlane, int plane,
                            float[] band) {
        int h = in.h(), w = in.w(), sh = win.strideH(), sw = win.strideW(), left = win.padW();
        int[] dst = new int[sw];
        for (int c = 0; c < channels; c++) {
            int src = (c0 + c) * h * w;
            for (int py = 0; py < sh; py++) {
                for (int y = 0; y < rows; y++) {
                    int iy = (oy0 + y) * sh + py - win.padH();
                    boolean any = false;
                    for (int px = 0; px < sw; px++) {
                        int pi = phaseIndex[py * sw + px];
                        dst[px] = pi < 0 ? -1 : c * plane + pi * phasePlane + y * wp;
                        if (pi >= 0 && (iy < 0 || iy >= h)) java.util.Arrays.fill(band, dst[px], dst[px] + wp, 0f);
                        any |= pi >= 0;
                    }
                    if (!any || iy < 0 || iy >= h) continue;
                    int row = src + iy * w;
                    if (sw == 1) {
                        // Columns x whose input column x - left lies in [0, w); zero on either side.
                        int d = dst[0], from = Math.min(wp, left), to = Math.max(from, Math.min(wp, w + left));
                        for (int q = 0; q < from; q++) band[d + q] = 0f;
                        System.arraycopy(x, row + from - left, band, d + from, to - from);
                        for (int q = to; q < wp; q++) band[d + q] = 0f;
                        continue;
                    }
                    // Strided: phase px's column q holds input column q * sw + px - left. One sequential pass over the input
                    // row fills every phase (the gathers per phase read the row sw times), then each phase's edges are zeroed.
                    for (int px = 0; px < sw; px++) {
                        if (dst[px] < 0) continue;
                        int from = Math.min(wp, Math.max(0, Math.ceilDiv(left - px, sw))), to = Math.max(from, Math.min(wp, Math.ceilDiv(w + left - px, sw)));
                        for (int q = 0; q < from; q++) band[dst[px] + q] = 0f;
                        for (int q = to; q < wp; q++) band[dst[px] + q] = 0f;
                    }
                    for (int ix = 0, col = left; ix < w; ix++, col++) {
                        int px = col % sw, q = col / sw;
                        if (dst[px] >= 0 && q < wp) band[dst[px] + q] = x[row + ix];
                    }
                }
            }
        }
    }

    /** The band position each tap (c, ky, kx) of the flattened window reads, relative to the output position. */
    private static int[] offsets(int channels, Window win, int wp, int[] phaseIndex, int phasePlane, int plane) {
        int kh = win.kernelH(), kw = win.kernelW(), dh = win.dilationH(), dw = win.dilationW(), sh = win.strideH(), sw = win.strideW();
        int[] off = new int[channels * kh * kw];
        for (int c = 0, t = 0; c < channels; c++)
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++) {
                    int pi = phaseIndex[(ky * dh % sh) * sw + kx * dw % sw];
                    off[t++] = c * plane + pi * phasePlane + ky * dh / sh * wp + kx * dw / sw;
                }
        return off;
    }

    /**
     * tile[6 x NR] = taps [k0, k0 + kc) of output channels' weight rows from {@code wRow} ({@code k} apart; rows past
     * {@code m} read row {@code m - 1} again) times the band at positions [q0, q0 + NR), one FMA chain each from zero. No
     * branches, as Gemm's kernel: C2 compiles one path for every case.
     */
    private static void kernel(int kc, float[] w, int wRow, int k, int m, int k0, float[] band, int q0, int[] off, float[] tile) {
        int w0 = wRow + k0, w1 = w0 + Math.min(1, m - 1) * k, w2 = w0 + Math.min(2, m - 1) * k;
        int w3 = w0 + Math.min(3, m - 1) * k, w4 = w0 + Math.min(4, m - 1) * k, w5 = w0 + Math.min(5, m - 1) * k;
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        for (int kk = 0; kk < kc; kk++) {
            int p = q0 + off[k0 + kk];
            FloatVector b0 = FloatVector.fromArray(S, band, p);
            FloatVector b1 = FloatVector.fromArray(S, band, p + V);
            FloatVector a = FloatVector.broadcast(S, w[w0 + kk]);
            c00 = a.fma(b0, c00);
            c01 = a.fma(b1, c01);
            a = FloatVector.broadcast(S, w[w1 + kk]);
            c10 = a.fma(b0, c10);
            c11 = a.fma(b1, c11);
            a = FloatVector.broadcast(S, w[w2 + kk]);
            c20 = a.fma(b0, c20);
            c21 = a.fma(b1, c21);
            a = FloatVector.broadcast(S, w[w3 + kk]);
            c30 = a.fma(b0, c30);
            c31 = a.fma(b1, c31);
            a = FloatVector.broadcast(S, w[w4 + kk]);
            c40 = a.fma(b0, c40);
            c41 = a.fma(b1, c41);
            a = FloatVector.broadcast(S, w[w5 + kk]);
            c50 = a.fma(b0, c50);
            c51 = a.fma(b1, c51);
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, V);
        c10.intoArray(tile, NR);
        c11.intoArray(tile, NR + V);
        c20.intoArray(tile, 2 * NR);
        c21.intoArray(tile, 2 * NR + V);
        c30.intoArray(tile, 3 * NR);
        c31.intoArray(tile, 3 * NR + V);
        c40.intoArray(tile, 4 * NR);
        c41.intoArray(tile, 4 * NR + V);
        c50.intoArray(tile, 5 * NR);
        c51.intoArray(tile, 5 * NR + V);
    }

    /**
     * The tile's first {@code m} rows into {@code sums} at {@code at} (rows {@code stride} apart), as {@link Gemm}'s merge: the
     * first block plus the bias (acc + bias; {@code bias} null: none), later ones acc + what is stored.
     */
    private static void merge(float[] tile, int m, float[] sums, int at, int stride, float[] bias, int biasRow, boolean first) {
        for (int i = 0; i < m; i++, at += stride) {
            FloatVector v0 = FloatVector.fromArray(S, tile, i * NR), v1 = FloatVector.fromArray(S, tile, i * NR + V);
            if (!first) {
                v0 = v0.add(FloatVector.fromArray(S, sums, at));
                v1 = v1.add(FloatVector.fromArray(S, sums, at + V));
            } else if (bias != null) {
                v0 = v0.add(bias[biasRow + i]);
                v1 = v1.add(bias[biasRow + i]);
            }
            v0.intoArray(sums, at);
            v1.intoArray(sums, at + V);
        }
    }

    /** The band's valid positions of every channel into the output rows, then the residual and ReLU, as Gemm's last merge. */
    private static void finish(float[] sums, int stride, int channels, int rows, int wp, int ow, float[] out, int outBase, int pixels, float[] residual,
                               boolean relu) {
        for (int o = 0; o < channels; o++) {
            for (int r = 0; r < rows; r++) {
                int src = o * stride + r * wp, dst = outBase + o * pixels + r * ow;
                for (int j = 0; j < ow; j += V) {
                    // The row's last stretch under a mask: these rows are often shorter than a vector (14 or 7 pixels).
                    var mask = S.indexInRange(j, ow);
                    FloatVector v = FloatVector.fromArray(S, sums, src + j, mask);
                    if (residual != null) v = v.add(FloatVector.fromArray(S, residual, dst + j, mask));
                    if (relu) v = FloatVector.zero(S).blend(v, v.compare(jdk.incubator.vector.VectorOperators.GT, 0f));
                    v.intoArray(out, dst + j, mask);
                }
            }
        }
    }
}
