package dev.silhouette.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Single-precision C[M x N] (+)= A[M x K] * B[K x N], all row-major with leading dimensions, blocked for
 * the caches and vectorised with the Vector API at the width the machine has (SPECIES_PREFERRED).
 *
 * <p>B is packed, KC rows at a time, into panels NR = 2 vectors wide (zero-padded at the right edge) in
 * a buffer its worker owns; the 6 x 2-vector micro-kernel keeps twelve accumulators in registers while
 * it streams a panel from L1 and broadcasts six rows of A. Measured on AVX-512 (Zen 5, JDK 25), 6 x 2
 * beat 4 x 2 (eight accumulators do not cover the FMA latency), 4 x 4, 6 x 4 and 8 x 3 (C2 spills
 * registers at 24 accumulators); on AVX2 it needs 15 of the 16 registers. Rows past M read the last
 * row again and are not stored, so M need not be a multiple of 6.
 *
 * <p>Every output element is one FMA chain over each KC block of K in order, added to C once per
 * block, whatever the tiling or the split over threads: results do not depend on the thread count.
 * The {@link Epilogue} adds a per-row bias on the first block and a residual and ReLU after the last,
 * in the order unfused ops would apply them, so a fused convolution gives the same bits as the ops one
 * after the other.
 */
public final class Gemm {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int V = S.length();
    private static final int NR = 2 * V;
    private static final int MR = 6;
    static final int KC = 256;
    /** Rows of A per pass over a packed B block: 96 rows x KC floats stay in L2. */
    private static final int MC = 96;
    /** Columns per packed B block (and per parallel task): 512 KB of packed B at KC = 256. */
    private static final int NC = 16 * NR;

    private Gemm() {}

    /**
     * What the GEMM does with each output after multiplying: C = A B + bias[row] (+ residual) (ReLU), or
     * C += A B when {@code accumulate}. Residual is read at the same offsets as C, in {@code residual}.
     */
    public record Epilogue(boolean accumulate, float[] bias, int biasOff, float[] residual, int residualShift, boolean relu) {
        public static final Epilogue ACCUMULATE = new Epilogue(true, null, 0, null, 0, false);

        /** A fresh output: bias (or nothing) plus the product, then the residual and ReLU if given. */
        public static Epilogue overwrite(float[] bias, int biasOff, float[] residual, int residualShift, boolean relu) {
            return new Epilogue(false, bias, biasOff, residual, residualShift, relu);
        }
    }

    /** C += A B, on all workers when large enough. */
    public static void multiply(int m, int n, int k, float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                                float[] c, int cOff, int ldc) {
        multiply(m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, Epilogue.ACCUMULATE, true);
    }

    /** @param parallel false when the caller already runs one multiplication per worker */
    public static void multiply(int m, int n, int k, float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                                float[] c, int cOff, int ldc, boolean parallel) {
        multiply(m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, Epilogue.ACCUMULATE, parallel);
    }

    public static void multiply(int m, int n, int k, float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                                float[] c, int cOff, int ldc, Epilogue e, boolean parallel) {
        run(m, n, k, a, aOff, lda, b, bOff, ldb, false, c, cOff, ldc, e, parallel);
    }

    /**
     * C += A B with B given transposed: {@code bt} holds B^T row-major, B[kk][j] = bt[btOff + j * ldbt + kk]
     * (the weight gradient's column matrix, built in its fast tap-row layout, read as pixel rows).
     */
    public static void multiplyTransposedB(int m, int n, int k, float[] a, int aOff, int lda, float[] bt, int btOff, int ldbt,
                                           float[] c, int cOff, int ldc, boolean parallel) {
        run(m, n, k, a, aOff, lda, bt, btOff, ldbt, true, c, cOff, ldc, Epilogue.ACCUMULATE, parallel);
    }

    private static void run(int m, int n, int k, float[] a, int aOff, int lda, float[] b, int bOff, int ldb, boolean bt,
                            float[] c, int cOff, int ldc, Epilogue e, boolean parallel) {
        if (m <= 0 || n <= 0) return;
        if (k <= 0) {
            // No products: the epilogue alone (a 0-tap convolution is impossible, but a GEMM with K = 0 is not).
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    int o = cOff + i * ldc + j;
                    c[o] = finishScalar(0f, e.accumulate, e.bias == null ? 0f : e.bias[e.biasOff + i], e.residual == null ? null : e, e.relu, c, o);
                }
            return;
        }
        int colBlocks = (n + NC - 1) / NC;
        int threads = Workers.threads();
        if (!parallel || threads == 1 || (long) m * n * k <= 32_768) {
            // One task: on this thread, but inside a region, so the packing buffer is this thread's own.
            Workers.run(1, (t, w) -> block(0, m, 0, n, k, a, aOff, lda, b, bOff, ldb, bt, c, cOff, ldc, e));
            return;
        }
        // Split rows too when there are few column blocks, so small feature maps still use every core.
        int rowChunks = Math.max(1, Math.min((m + 47) / 48, (2 * threads + colBlocks - 1) / colBlocks));
        int rowsPerChunk = ((m + rowChunks - 1) / rowChunks + MR - 1) / MR * MR;
        Workers.run(colBlocks * rowChunks, (t, w) -> {
            int j0 = (t % colBlocks) * NC;
            int i0 = (t / colBlocks) * rowsPerChunk;
            int i1 = Math.min(m, i0 + rowsPerChunk);
            if (i0 < i1) block(i0, i1, j0, Math.min(n, j0 + NC), k, a, aOff, lda, b, bOff, ldb, bt, c, cOff, ldc, e);
        });
    }

    /** Rows [i0, i1) by columns [j0, j1) of C on this thread, whatever their sizes. */
    static void block(int i0, int i1, int j0, int j1, int k, float[] a, int aOff, int lda,
                      float[] b, int bOff, int ldb, boolean bt, float[] c, int cOff, int ldc, Epilogue e) {
        for (int jb = j0; jb < j1; jb += NC) {
            int je = Math.min(j1, jb + NC), width = je - jb, panels = (width + NR - 1) / NR;
            float[] packed = Workers.scratch(Workers.Scratch.PACK_B, panels * KC * NR);
            float[] tile = Workers.scratch(Workers.Scratch.TILE, MR * NR);
            float[] packedA = Workers.scratch(Workers.Scratch.PACK_A, (MC + MR) * KC);
            for (int k0 = 0; k0 < k; k0 += KC) {
                int kc = Math.min(KC, k - k0);
                if (bt) packTransposed(b, bOff, ldb, k0, kc, jb, width, packed);
                else pack(b, bOff, ldb, k0, kc, jb, width, packed);
                boolean first = k0 == 0, last = k0 + kc >= k;
                for (int ib = i0; ib < i1; ib += MC) {
                    int ie = Math.min(i1, ib + MC);
                    packA(a, aOff + k0, lda, ib, ie, kc, packedA);
                    for (int p = 0; p < panels; p++) {
                        int jp = jb + p * NR, cols = Math.min(NR, je - jp);
                        for (int i = ib; i < ie; i += MR) {
                            int rows = Math.min(MR, ie - i);
                            kernel(kc, packedA, (i - ib) * kc, packed, p * kc * NR, tile);
                            merge(tile, c, cOff + i * ldc + jp, ldc, i, rows, cols, e, first, last);
                        }
                    }
                }
            }
        }
    }

    /**
     * Rows [i0, i1) of A's KC block into MR-row micro-panels, kc steps of MR values each, so the kernel
     * broadcasts from one sequential stream; a short last panel repeats its last row (computed, not stored).
     */
    private static void packA(float[] a, int aBase, int lda, int i0, int i1, int kc, float[] packed) {
        for (int i = i0, dst = 0; i < i1; i += MR, dst += kc * MR) {
            for (int r = 0; r < MR; r++) {
                int src = aBase + Math.min(i + r, i1 - 1) * lda;
                for (int kk = 0; kk < kc; kk++) packed[dst + kk * MR + r] = a[src + kk];
            }
        }
    }

    /** As {@link #pack} from B^T: each of a panel's columns is one contiguous run of bt. */
    private static void packTransposed(float[] bt, int btOff, int ldbt, int k0, int kc, int j0, int width, float[] packed) {
        for (int p = 0; p * NR < width; p++) {
            int cols = Math.min(NR, width - p * NR), dst = p * kc * NR;
            // A partial panel: zero it whole first (one call, not one per row: the weight gradient of a 16-channel
            // 3x3 layer has 144 columns, so every block ends in one).
            if (cols < NR) java.util.Arrays.fill(packed, dst, dst + kc * NR, 0f);
            for (int j = 0; j < cols; j++) {
                int src = btOff + (j0 + p * NR + j) * ldbt + k0;
                for (int kk = 0; kk < kc; kk++) packed[dst + kk * NR + j] = bt[src + kk];
            }
        }
    }

    /** Copies B[k0..k0+kc][j0..j0+width] into NR-wide panels of kc rows each, zero-padding the last one. */
    private static void pack(float[] b, int bOff, int ldb, int k0, int kc, int j0, int width, float[] packed) {
        for (int p = 0; p * NR < width; p++) {
            int cols = Math.min(NR, width - p * NR), dst = p * kc * NR;
            int src = bOff + k0 * ldb + j0 + p * NR;
            if (cols == NR) {
                for (int kk = 0; kk < kc; kk++, src += ldb, dst += NR) {
                    FloatVector.fromArray(S, b, src).intoArray(packed, dst);
                    FloatVector.fromArray(S, b, src + V).intoArray(packed, dst + V);
                }
            } else {
                for (int kk = 0; kk < kc; kk++, src += ldb, dst += NR) {
                    System.arraycopy(b, src, packed, dst, cols);
                    java.util.Arrays.fill(packed, dst + cols, dst + NR, 0f);
                }
            }
        }
    }

    /**
     * tile[6 x NR] = this KC block's products of a 6-row A micro-panel and an NR-wide B panel. No
     * branches: every call takes the one path C2 compiled (a branchy kernel was deoptimised and
     * recompiled for each new case, running meanwhile at interpreter speed).
     */
    private static void kernel(int kc, float[] pa, int aOff, float[] pb, int pOff, float[] tile) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        for (int kk = 0, bp = pOff, ap = aOff; kk < kc; kk++, bp += NR, ap += MR) {
            FloatVector b0 = FloatVector.fromArray(S, pb, bp);
            FloatVector b1 = FloatVector.fromArray(S, pb, bp + V);
            FloatVector x = FloatVector.broadcast(S, pa[ap]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, pa[ap + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, pa[ap + 2]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, pa[ap + 3]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(S, pa[ap + 4]);
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(S, pa[ap + 5]);
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
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
     * A tile's {@code rows} x {@code cols} into C at {@code off} (row {@code row0} of the GEMM): added to C
     * after the first KC block (or always when accumulating), else plus the bias (acc + bias, as the
     * unfused path's bias-filled output plus acc); then, after the last block, the residual and ReLU.
     */
    private static void merge(float[] tile, float[] c, int off, int ldc, int row0, int rows, int cols, Epilogue e,
                              boolean first, boolean last) {
        boolean add = !first || e.accumulate, bias = !add && e.bias != null;
        boolean residual = last && e.residual != null, relu = last && e.relu;
        for (int r = 0; r < rows; r++, off += ldc) {
            float rowBias = bias ? e.bias[e.biasOff + row0 + r] : 0f;
            for (int j = 0; j < cols; j += V) {
                int t = r * NR + j, o = off + j;
                FloatVector v = FloatVector.fromArray(S, tile, t);
                if (j + V <= cols) {
                    if (add) v = v.add(FloatVector.fromArray(S, c, o));
                    else if (bias) v = v.add(rowBias);
                    if (residual) v = v.add(FloatVector.fromArray(S, e.residual, o + e.residualShift));
                    if (relu) v = FloatVector.zero(S).blend(v, v.compare(VectorOperators.GT, 0f));
                    v.intoArray(c, o);
                } else {
                    for (int q = j; q < cols; q++) c[off + q] = finishScalar(tile[r * NR + q], add, bias ? rowBias : 0f, residual ? e : null, relu, c, off + q);
                }
            }
        }
    }

    private static float finishScalar(float v, boolean add, float bias, Epilogue residual, boolean relu, float[] c, int off) {
        v = add ? v + c[off] : v + bias;
        if (residual != null) v += residual.residual[off + residual.residualShift];
        return relu ? (v > 0f ? v : 0f) : v;
    }

}
