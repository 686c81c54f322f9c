// Binary convolution (BinaryNet's XNOR sums, binary_conv.cu's SUMS output) on tensor cores: mma.sync
// m16n8k256 on single-bit operands with AND and popcount, on the skeleton of lowbit_igemm.cu (rows =
// output pixels, columns = output channels, k = tap x channel bits, staged in shared memory and reused
// by 32 output channels). For +-1 vectors held as bits, per in-image tap
//   a . w = C - 2 popcount(a XOR w) = C - 2 pa - 2 pw + 4 popcount(a AND w),
// so d = R - 2 PW + 4 PAND with PAND = mma(A, W), PW = mma(M, W) where M has all bits set on the words
// of in-image taps (weights are 0 past C), and R = sum over in-image taps of C - 2 pa, per pixel, from
// the staging threads' popcounts. Out-of-image taps add nothing, as BinaryNet.xnorConv's zero padding.
// Specification: BinaryNet.xnorConv; host glue BinaryMmaKernel. Checked under the host emulation only.
#include "lowbit_common.cuh"
#include "lowbit_mma.cuh"

namespace binary_mma {
constexpr int WARPS = 4, THREADS = WARPS * 32, TILE_M = 16 * WARPS, TILE_N = 32, FRAGS_N = TILE_N / 8;
constexpr int STEP_WORDS = 4;  // 64-bit words per k step: 256 bits, one mma
constexpr int ROW_U32 = 12;    // shared row of 8 used 32-bit words plus padding: fragment loads hit 32 banks
}  // namespace binary_mma

// Launch: block binary_mma::THREADS, grid (ceil(N OH OW / TILE_M), ceil(O / TILE_N)). x: bit planes (1 plane,
// words(C) words per pixel); w_tiles: per column tile and k step, 32 columns x 8 32-bit halves of the
// k words (k word = tap words(C) + word), zero past O and past the taps. d_out as binary_conv's SUMS.
extern "C" __global__ void __launch_bounds__(binary_mma::THREADS)
binary_mma_conv(const packed::word_t* __restrict__ x, const unsigned* __restrict__ w_tiles,
                int n, int c, int h, int wd, int o_channels, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow,
                int k_steps, int* __restrict__ d_out) {
    using namespace binary_mma;
    __shared__ unsigned a_tile[TILE_M * ROW_U32];
    __shared__ unsigned m_tile[TILE_M * ROW_U32];
    __shared__ unsigned b_tile[TILE_N * ROW_U32];
    __shared__ int row_sum[TILE_M][2];

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gid = lane / 4, tig = lane % 4;
    const int words = packed::bitplane_words(c), k_words = kh * kw * words;
    const long long pixels = (long long)n * oh * ow, m0 = (long long)blockIdx.x * TILE_M;
    const int stage_row = tid / 2, stage_half = tid % 2;
    const long long sm = m0 + stage_row;
    const bool stage_live = sm < pixels;
    const int s_ox = stage_live ? (int)(sm % ow) : 0, s_oy = stage_live ? (int)(sm / ow % oh) : 0;
    const long long s_image = stage_live ? sm / ((long long)oh * ow) : 0;
    int own_sum = 0;  // this thread's share of R for its staged pixel

    int pand[FRAGS_N][4] = {}, pwt[FRAGS_N][4] = {};
    for (int ks = 0; ks < k_steps; ks++) {
        for (int j = 0; j < 2; j++) {
            const int slot = stage_half * 2 + j, k = ks * STEP_WORDS + slot;
            packed::word_t a = 0, m = 0;
            if (stage_live && k < k_words) {
                const int tap = k / words, word = k % words;
                const int iy = s_oy * sh - ph + (tap / kw) * dh, ix = s_ox * sw - pw + (tap % kw) * dw;
                if (iy >= 0 && iy < h && ix >= 0 && ix < wd) {
                    a = x[packed::bitplane_index((s_image * h + iy) * wd + ix, 0, word, 1, c)];
                    m = ~0ull;
                    own_sum += (word == 0 ? c : 0) - 2 * __popcll(a);
                }
            }
            a_tile[stage_row * ROW_U32 + 2 * slot] = (unsigned)a;
            a_tile[stage_row * ROW_U32 + 2 * slot + 1] = (unsigned)(a >> 32);
            m_tile[stage_row * ROW_U32 + 2 * slot] = (unsigned)m;
            m_tile[stage_row * ROW_U32 + 2 * slot + 1] = (unsigned)(m >> 32);
        }
        {
            const unsigned* tile = w_tiles + ((long long)blockIdx.y * k_steps + ks) * (TILE_N * 8);
            const int column = tid / 4, part = tid % 4;
            b_tile[column * ROW_U32 + 2 * part] = tile[column * 8 + 2 * part];
            b_tile[column * ROW_U32 + 2 * part + 1] = tile[column * 8 + 2 * part + 1];
        }
        __syncthreads();
        const int row = warp * 16 + gid;
        const unsigned a[4] = {a_tile[row * ROW_U32 + tig], a_tile[(row + 8) * ROW_U32 + tig], a_tile[row * ROW_U32 + 4 + tig],
                               a_tile[(row + 8) * ROW_U32 + 4 + tig]};
        const unsigned mk[4] = {m_tile[row * ROW_U32 + tig], m_tile[(row + 8) * ROW_U32 + tig], m_tile[row * ROW_U32 + 4 + tig],
                                m_tile[(row + 8) * ROW_U32 + 4 + tig]};
#pragma unroll
        for (int f = 0; f < FRAGS_N; f++) {
            const unsigned b[2] = {b_tile[(f * 8 + gid) * ROW_U32 + tig], b_tile[(f * 8 + gid) * ROW_U32 + 4 + tig]};
            lowbit_mma::m16n8k256_and_popc(pand[f], a, b, pand[f]);
            lowbit_mma::m16n8k256_and_popc(pwt[f], mk, b, pwt[f]);
        }
        __syncthreads();
    }
    row_sum[stage_row][stage_half] = own_sum;
    __syncthreads();
    for (int e = 0; e < 4; e++) {
        const int local_row = warp * 16 + gid + (e >= 2 ? 8 : 0);
        const long long m = m0 + local_row;
        if (m >= pixels) continue;
        const int ox = (int)(m % ow), oy = (int)(m / ow % oh);
        const long long image = m / ((long long)oh * ow);
        const int r = row_sum[local_row][0] + row_sum[local_row][1];
        for (int f = 0; f < FRAGS_N; f++) {
            const int oc = blockIdx.y * TILE_N + f * 8 + 2 * tig + (e & 1);
            if (oc >= o_channels) continue;
            d_out[((image * o_channels + oc) * oh + oy) * ow + ox] = r - 2 * pwt[f][e] + 4 * pand[f][e];
        }
    }
}
