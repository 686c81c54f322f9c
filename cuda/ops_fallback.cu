// Fallbacks for when cuDNN or cuBLAS is not installed: a direct convolution and a tiled SGEMM for linear
// layers. Correct for every shape, not tuned: the libraries are much faster. Both accumulate in float
// with fmaf, so they differ from the double-accumulating CPU reference (Reference.conv2d, .linear) by
// float summation rounding, about sqrt(K) * 2^-24 of the sum of |x * w|.
#include "silhouette_common.cuh"

// Direct NCHW convolution (Reference.conv2d's loops): one thread per output, accumulating bias, then the
// taps in the reference's order c, ky, kx, skipping padded taps (they contribute 0). Planes (n, o) go on
// grid y and output pixels on grid x, both grid-stride, so the threads of a block share one filter and
// read its weights as broadcasts; neighbouring outputs read neighbouring inputs. bias may be null.
// Weights are [out_c, c / groups, kh, kw].
extern "C" __global__ void silhouette_conv2d_direct(const float* __restrict__ x, const float* __restrict__ wt,
                                                    const float* __restrict__ bias, float* __restrict__ y,
                                                    int n, int c, int h, int w, int out_c, int oh, int ow,
                                                    int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int groups) {
    int cg = c / groups, og = out_c / groups;
    unsigned planes = (unsigned)n * (unsigned)out_c;
    unsigned pixels = (unsigned)oh * (unsigned)ow;
    size_t in_plane = (size_t)h * w;
    for (unsigned p = blockIdx.y; p < planes; p += gridDim.y) {
        unsigned b = p / (unsigned)out_c, o = p % (unsigned)out_c;
        const float* xg = x + ((size_t)b * c + (size_t)(o / og) * cg) * in_plane;
        const float* wo = wt + (size_t)o * cg * kh * kw;
        float b0 = bias != nullptr ? bias[o] : 0.0f;
        float* dst = y + (size_t)p * pixels;
        for (unsigned q = blockIdx.x * blockDim.x + threadIdx.x; q < pixels; q += gridDim.x * blockDim.x) {
            int oy = (int)(q / (unsigned)ow), ox = (int)(q % (unsigned)ow);
            int iy0 = oy * sh - ph, ix0 = ox * sw - pw;
            float acc = b0;
            for (int ci = 0; ci < cg; ci++) {
                const float* xc = xg + (size_t)ci * in_plane;
                const float* wc = wo + (size_t)ci * kh * kw;
                for (int ky = 0; ky < kh; ky++) {
                    int iy = iy0 + ky * dh;
                    if (iy < 0 || iy >= h) continue;
                    const float* row = xc + (size_t)iy * w;
                    for (int kx = 0; kx < kw; kx++) {
                        int ix = ix0 + kx * dw;
                        if (ix < 0 || ix >= w) continue;
                        acc = __fmaf_rn(row[ix], wc[ky * kw + kx], acc);
                    }
                }
            }
            dst[q] = acc;
        }
    }
}

// Tile geometry of silhouette_sgemm_nt: a block of 256 threads computes a 64 x 64 tile of C, each thread
// a 4 x 4 sub-tile (rows ty + 16 i, columns tx + 16 j, so a warp's stores cover 16 consecutive columns),
// stepping through K 16 at a time in shared memory.
namespace silhouette_gemm {
constexpr int TILE = 64;
constexpr int STEP = 16;
constexpr int THREADS = 256;
constexpr int PER_THREAD = 4;
}  // namespace silhouette_gemm

// C[m, n] = A[m, k] * B[n, k]^T + bias[n] (bias may be null), row-major with leading dimensions lda, ldb,
// ldc: a linear layer is x [batch, in] times W [out, in] transposed. Both operands are read along k, so
// the tile loads coalesce; the tiles are stored k-major in shared memory for the inner product. Each
// output accumulates bias, then k in increasing order (Reference.linear's order) with fmaf; tiles past
// the matrix edges read zeros. Grid x covers column tiles; row tiles are grid-stride over grid y so any
// m fits.
extern "C" __global__ void __launch_bounds__(silhouette_gemm::THREADS)
silhouette_sgemm_nt(const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ bias,
                    float* __restrict__ c, int m, int n, int k, int lda, int ldb, int ldc) {
    using namespace silhouette_gemm;
    // +1 column of padding: the transposed stores of a warp would otherwise hit few banks.
    __shared__ float as[STEP][TILE + 1];
    __shared__ float bs[STEP][TILE + 1];
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    int col0 = blockIdx.x * TILE;
    int row_tiles = (m + TILE - 1) / TILE;
    for (int tile = blockIdx.y; tile < row_tiles; tile += gridDim.y) {
        int row0 = tile * TILE;
        float acc[PER_THREAD][PER_THREAD];
        for (int j = 0; j < PER_THREAD; j++) {
            int col = col0 + tx + 16 * j;
            float init = bias != nullptr && col < n ? bias[col] : 0.0f;
            for (int i = 0; i < PER_THREAD; i++) acc[i][j] = init;
        }
        for (int k0 = 0; k0 < k; k0 += STEP) {
            // 64 rows x 16 k per operand: a half-warp reads 16 consecutive floats of one row.
            int kk = threadIdx.x % STEP, gk = k0 + kk;
            for (int q = 0; q < TILE * STEP / THREADS; q++) {
                int r = threadIdx.x / STEP + q * (THREADS / STEP);
                int ar = row0 + r, bc = col0 + r;
                as[kk][r] = ar < m && gk < k ? a[(size_t)ar * lda + gk] : 0.0f;
                bs[kk][r] = bc < n && gk < k ? b[(size_t)bc * ldb + gk] : 0.0f;
            }
            __syncthreads();
            for (int s = 0; s < STEP; s++) {
                float av[PER_THREAD], bv[PER_THREAD];
                for (int i = 0; i < PER_THREAD; i++) av[i] = as[s][ty + 16 * i];
                for (int j = 0; j < PER_THREAD; j++) bv[j] = bs[s][tx + 16 * j];
                for (int i = 0; i < PER_THREAD; i++)
                    for (int j = 0; j < PER_THREAD; j++) acc[i][j] = __fmaf_rn(av[i], bv[j], acc[i][j]);
            }
            __syncthreads();
        }
        for (int i = 0; i < PER_THREAD; i++) {
            int row = row0 + ty + 16 * i;
            if (row >= m) continue;
            for (int j = 0; j < PER_THREAD; j++) {
                int col = col0 + tx + 16 * j;
                if (col < n) c[(size_t)row * ldc + col] = acc[i][j];
            }
        }
    }
}
