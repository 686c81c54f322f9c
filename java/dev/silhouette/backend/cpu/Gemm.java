package dev.silhouette.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.stream.IntStream;

/**
 * Single-precision C[M x N] += A[M x K] * B[K x N], all row-major with leading dimensions, blocked for
 * the cache and vectorised with the Vector API. Panels of B (KC rows x 2 vectors of columns) are packed
 * contiguously when enough rows reuse them, so the 4 x 2-vector micro-kernel streams them from L1 while
 * eight accumulators stay in registers. Independent column blocks (and row chunks when columns are few) run in parallel.
 */
public final class Gemm {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int V = S.length();
    private static final int PANEL = 2 * V;
    private static final int KC = 256;
    private static final int NC = 16 * PANEL;
    private static final int MR = 4;
    private static final int PACK_MIN_ROWS = 64;

    private Gemm() {}

    public static void multiply(int m, int n, int k, float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                         float[] c, int cOff, int ldc) {
        multiply(m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, true);
    }

    /** @param parallel false when the caller already runs one multiplication per core */
    public static void multiply(int m, int n, int k, float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                         float[] c, int cOff, int ldc, boolean parallel) {
        int colBlocks = (n + NC - 1) / NC;
        int cores = Runtime.getRuntime().availableProcessors();
        // Split rows too when there are few column blocks, so small feature maps still use every core.
        int rowChunks = Math.max(1, Math.min((m + 63) / 64, (4 * cores + colBlocks - 1) / colBlocks));
        int rowsPerChunk = ((m + rowChunks - 1) / rowChunks + MR - 1) / MR * MR;
        int tasks = colBlocks * rowChunks;
        IntStream range = IntStream.range(0, tasks);
        if (parallel && (long) m * n * k > 32_768) range = range.parallel();
        range.forEach(t -> {
            int j0 = (t % colBlocks) * NC;
            int i0 = (t / colBlocks) * rowsPerChunk;
            int i1 = Math.min(m, i0 + rowsPerChunk);
            if (i0 < i1) block(i0, i1, j0, Math.min(n, j0 + NC), k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
        });
    }

    private static void block(int i0, int i1, int j0, int j1, int k, float[] a, int aOff, int lda,
                              float[] b, int bOff, int ldb, float[] c, int cOff, int ldc) {
        int width = j1 - j0;
        int panels = (width + PANEL - 1) / PANEL;
        // Packing costs one pass over the B block; it pays off only when many rows of A reuse it.
        // Otherwise full panels are read in place and only a partial last panel is copied (zero-padded).
        boolean packAll = i1 - i0 >= PACK_MIN_ROWS;
        float[] packed = new float[(packAll ? panels : 1) * KC * PANEL];
        float[] edge = new float[MR * PANEL];
        for (int k0 = 0; k0 < k; k0 += KC) {
            int kc = Math.min(KC, k - k0);
            if (packAll) pack(b, bOff, ldb, k0, kc, j0, width, packed, 0);
            for (int p = 0; p < panels; p++) {
                int jp = j0 + p * PANEL;
                int cols = Math.min(PANEL, j1 - jp);
                float[] panel;
                int pOff, stride;
                if (packAll) {
                    panel = packed;
                    pOff = p * KC * PANEL;
                    stride = PANEL;
                } else if (cols < PANEL) {
                    pack(b, bOff, ldb, k0, kc, jp, cols, packed, 0);
                    panel = packed;
                    pOff = 0;
                    stride = PANEL;
                } else {
                    panel = b;
                    pOff = bOff + k0 * ldb + jp;
                    stride = ldb;
                }
                int i = i0;
                for (; i + MR <= i1; i += MR) {
                    kernel4(kc, a, aOff + i * lda + k0, lda, panel, pOff, stride, c, cOff + i * ldc + jp, ldc, cols, edge);
                }
                for (; i < i1; i++) {
                    kernel1(kc, a, aOff + i * lda + k0, panel, pOff, stride, c, cOff + i * ldc + jp, cols, edge);
                }
            }
        }
    }

    /** Copies B[k0..k0+kc][j0..j0+width] into PANEL-wide column panels, zero-padding the last one. */
    private static void pack(float[] b, int bOff, int ldb, int k0, int kc, int j0, int width, float[] packed, int pOff) {
        for (int p = 0; p * PANEL < width; p++) {
            int cols = Math.min(PANEL, width - p * PANEL);
            int dst = pOff + p * KC * PANEL;
            for (int kk = 0; kk < kc; kk++) {
                int src = bOff + (k0 + kk) * ldb + j0 + p * PANEL;
                System.arraycopy(b, src, packed, dst + kk * PANEL, cols);
                if (cols < PANEL) java.util.Arrays.fill(packed, dst + kk * PANEL + cols, dst + (kk + 1) * PANEL, 0f);
            }
        }
    }

    /** C[4 x PANEL] += A[4 x kc] * panel[kc x PANEL], panel rows {@code stride} apart. */
    private static void kernel4(int kc, float[] a, int aOff, int lda, float[] panel, int pOff, int stride,
                                float[] c, int cOff, int ldc, int cols, float[] edge) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
        int a0 = aOff, a1 = aOff + lda, a2 = aOff + 2 * lda, a3 = aOff + 3 * lda;
        for (int kk = 0; kk < kc; kk++) {
            int bp = pOff + kk * stride;
            FloatVector b0 = FloatVector.fromArray(S, panel, bp);
            FloatVector b1 = FloatVector.fromArray(S, panel, bp + V);
            FloatVector x = FloatVector.broadcast(S, a[a0 + kk]);
            c00 = x.fma(b0, c00); c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, a[a1 + kk]);
            c10 = x.fma(b0, c10); c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, a[a2 + kk]);
            c20 = x.fma(b0, c20); c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, a[a3 + kk]);
            c30 = x.fma(b0, c30); c31 = x.fma(b1, c31);
        }
        store(c00, c01, c, cOff, cols, edge, 0);
        store(c10, c11, c, cOff + ldc, cols, edge, PANEL);
        store(c20, c21, c, cOff + 2 * ldc, cols, edge, 2 * PANEL);
        store(c30, c31, c, cOff + 3 * ldc, cols, edge, 3 * PANEL);
    }

    private static void kernel1(int kc, float[] a, int aOff, float[] panel, int pOff, int stride,
                                float[] c, int cOff, int cols, float[] edge) {
        FloatVector c0 = FloatVector.zero(S), c1 = FloatVector.zero(S);
        for (int kk = 0; kk < kc; kk++) {
            int bp = pOff + kk * stride;
            FloatVector x = FloatVector.broadcast(S, a[aOff + kk]);
            c0 = x.fma(FloatVector.fromArray(S, panel, bp), c0);
            c1 = x.fma(FloatVector.fromArray(S, panel, bp + V), c1);
        }
        store(c0, c1, c, cOff, cols, edge, 0);
    }

    /** Adds the accumulators to C; a partial last panel goes through a scratch row. */
    private static void store(FloatVector lo, FloatVector hi, float[] c, int cOff, int cols, float[] edge, int eOff) {
        if (cols == PANEL) {
            lo.add(FloatVector.fromArray(S, c, cOff)).intoArray(c, cOff);
            hi.add(FloatVector.fromArray(S, c, cOff + V)).intoArray(c, cOff + V);
        } else {
            lo.intoArray(edge, eOff);
            hi.intoArray(edge, eOff + V);
            for (int j = 0; j < cols; j++) c[cOff + j] += edge[eOff + j];
        }
    }
}
