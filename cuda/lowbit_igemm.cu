// The packed path's low-bit convolution (Op.LowBitConv2d) on tensor cores: an implicit GEMM over 8-bit
// codes with INT8 IMMA (mma.sync m16n8k32, u8 activations x s8 weights, exact int32 accumulation).
// Specification: dev.silhouette.backend.cpu.Reference.lowBitAccumulators (the accumulators) and
// LowBitConv.run (the epilogue); LowBitIgemmKernel is the host glue that prepares the weight layout and
// says which shapes it refuses.
//
// GEMM view, per group g: rows m = output pixels (n, oy, ox), columns = the group's output channels,
// k = tap * inPerGroup + channel (tap = ky * kw + kx), padded to a multiple of 32 with zero weights.
// A[m][k] = the activation code at the tap's input pixel; B[k][o] = the weight code. Region r's
// accumulator A_r takes only the k whose input pixel is in region r: the A fragment is masked per region
// in registers and the same staged tile feeds every region's mma, so a 3-region layer costs three mma
// per fragment and one load.
//
// Zero points: codes are stored raw (0..2^bits - 1) and out-of-image taps read the zero point, so
// sum_k w (code - zp) over in-image taps = sum_k w code' - zp * sum_k w, with sum_k w per output channel
// (w_sums) computed when the weights are prepared. Regions and PACT grids have zero point 0.
#include "lowbit_mma.cuh"

namespace igemm {

constexpr int WARPS = 4;
constexpr int THREADS = WARPS * 32;
constexpr int TILE_M = 16 * WARPS;  // output pixels per block: one 16-row mma fragment per warp
constexpr int TILE_N = 32;          // output channels per block: four 8-column fragments
constexpr int TILE_K = 32;          // k per step: one mma
constexpr int FRAGS_N = TILE_N / 8;
constexpr int MAX_REGIONS = 4;      // accumulators per lane: MAX_REGIONS x FRAGS_N x 4
constexpr int MAX_WEIGHT_SETS = MAX_REGIONS;
// Shared rows of 48 bytes: the 8 rows x 4 words one fragment load reads fall in 32 distinct banks.
constexpr int ROW_BYTES = 48;

// What the launch writes (argument output).
constexpr int ACCUMULATORS = 0;  // acc_out[(((n O + o) OH + oy) OW + ox) R + r] = A_r, int32 (LowBitConv.Accumulators)
constexpr int VALUES = 1;        // y_out[((n O + o) OH + oy) OW + ox] = bias_o + sum_r step_r (scale_(o,r) A_r), double, rounded once

// The 32-bit mask of the bytes of `regions4` (four region bytes) equal to r.
__device__ __forceinline__ unsigned bytes_equal(unsigned regions4, unsigned r) {
    const unsigned x = regions4 ^ (r * 0x01010101u);
    const unsigned zero = ~(((x & 0x7f7f7f7fu) + 0x7f7f7f7fu) | x | 0x7f7f7f7fu);  // 0x80 in each zero byte, exact
    return (zero >> 7) * 0xffu;
}

}  // namespace igemm

// Quantizes float NCHW activations to raw 8-bit codes, pixel-major with channels innermost
// (codes[((n H + y) W + x) C + c]): Quantizers.code(v, step_r, zero_point, 0, levels_r) at each pixel's
// region r (region may be null: region 0). NaN gives code 0, as on the CPU.
extern "C" __global__ void lowbit_codes(const float* __restrict__ x, int n, int c, int h, int w, const unsigned char* __restrict__ region,
                                        const float* __restrict__ steps, const int* __restrict__ levels, int zero_point,
                                        unsigned char* __restrict__ codes) {
    const long long plane = (long long)h * w, total = (long long)n * plane * c;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
        const long long pixel = i / c;
        const int ch = (int)(i % c);
        const long long image = pixel / plane, offset = pixel % plane;
        const int r = region == nullptr ? 0 : region[pixel];
        const float q = rintf(__fdiv_rn(x[(image * c + ch) * plane + offset], steps[r]));
        int code = 0;
        if (q == q) {
            const double shifted = __dadd_rn((double)q, (double)zero_point);
            code = shifted <= 0.0 ? 0 : shifted >= (double)levels[r] ? levels[r] : (int)shifted;
        }
        codes[i] = (unsigned char)code;
    }
}

// Launch: block igemm::THREADS, grid (ceil(N OH OW / TILE_M), groups * n_tiles), n_tiles = ceil(og / TILE_N).
// w: per weight set, group, column tile and k step, a 32 x 32 byte tile [column][k] (signed codes, zero
// past the group's channels and past K): w[((((set G + g) n_tiles + nt) k_steps + ks) 32 + column) 32 + k].
// The host (LowBitIgemmKernel.supports) guarantees codes fit u8 and s8, |A_r| and zp sum w below 2^31,
// regions <= MAX_REGIONS and indices within 64 bits.
extern "C" __global__ void __launch_bounds__(igemm::THREADS)
lowbit_igemm_conv(const unsigned char* __restrict__ codes, const unsigned char* __restrict__ region, int regions,
                  const signed char* __restrict__ w, int weight_sets, const int* __restrict__ w_sums, int zero_point,
                  int n, int c, int h, int wd, int groups, int og, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow,
                  int k_steps, int n_tiles, int output, int* __restrict__ acc_out,
                  const float* __restrict__ scales, const double* __restrict__ steps, const float* __restrict__ bias, float* __restrict__ y_out) {
    using namespace igemm;
    __shared__ unsigned char a_tile[TILE_M * ROW_BYTES];
    __shared__ unsigned char r_tile[TILE_M * ROW_BYTES];
    __shared__ unsigned char b_tile[MAX_WEIGHT_SETS * TILE_N * ROW_BYTES];

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gid = lane / 4, tig = lane % 4;
    const int group = blockIdx.y / n_tiles, nt = blockIdx.y % n_tiles;
    const int cg = c / groups, out_c = groups * og, taps = kh * kw, k_total = taps * cg;
    const long long pixels = (long long)n * oh * ow;
    const long long m0 = (long long)blockIdx.x * TILE_M;

    // The pixel this thread stages (row tid / 2 of the tile, k half tid % 2).
    const int stage_row = tid / 2, stage_half = tid % 2;
    const long long sm = m0 + stage_row;
    const bool stage_live = sm < pixels;
    const int s_ox = stage_live ? (int)(sm % ow) : 0, s_oy = stage_live ? (int)(sm / ow % oh) : 0;
    const long long s_image = stage_live ? sm / ((long long)oh * ow) : 0;

    int acc[MAX_REGIONS][FRAGS_N][4];
    for (int r = 0; r < MAX_REGIONS; r++)
        for (int f = 0; f < FRAGS_N; f++)
            for (int e = 0; e < 4; e++) acc[r][f][e] = 0;

    for (int ks = 0; ks < k_steps; ks++) {
        // Stage A: 16 codes of one pixel's im2col row, channels consecutive within a tap (coalesced).
        int k = ks * TILE_K + stage_half * 16;
        int tap = k / cg, ch = k % cg;
        for (int j = 0; j < 16; j++, k++) {
            unsigned char code = 0, reg = 0;
            if (stage_live && k < k_total) {
                const int iy = s_oy * sh - ph + (tap / kw) * dh, ix = s_ox * sw - pw + (tap % kw) * dw;
                if (iy >= 0 && iy < h && ix >= 0 && ix < wd) {
                    const long long pixel = (s_image * h + iy) * wd + ix;
                    code = codes[pixel * c + group * cg + ch];
                    reg = region == nullptr ? 0 : region[pixel];
                } else {
                    code = (unsigned char)zero_point;
                }
            }
            a_tile[stage_row * ROW_BYTES + stage_half * 16 + j] = code;
            r_tile[stage_row * ROW_BYTES + stage_half * 16 + j] = reg;
            if (++ch == cg) {
                ch = 0;
                tap++;
            }
        }
        // Stage B: each weight set's 32 x 32 tile, 8 bytes per thread, laid out at prepare time to be contiguous.
        for (int s = 0; s < weight_sets; s++) {
            const signed char* tile = w + ((((long long)s * groups + group) * n_tiles + nt) * k_steps + ks) * (TILE_N * TILE_K);
            const int column = tid / 4, part = tid % 4;
            *reinterpret_cast<uint64_t*>(&b_tile[(s * TILE_N + column) * ROW_BYTES + part * 8]) =
                *reinterpret_cast<const uint64_t*>(tile + column * TILE_K + part * 8);
        }
        __syncthreads();

        const int row = warp * 16 + gid;
        unsigned a[4], rg[4];
        a[0] = *reinterpret_cast<const unsigned*>(&a_tile[row * ROW_BYTES + 4 * tig]);
        a[1] = *reinterpret_cast<const unsigned*>(&a_tile[(row + 8) * ROW_BYTES + 4 * tig]);
        a[2] = *reinterpret_cast<const unsigned*>(&a_tile[row * ROW_BYTES + 16 + 4 * tig]);
        a[3] = *reinterpret_cast<const unsigned*>(&a_tile[(row + 8) * ROW_BYTES + 16 + 4 * tig]);
        rg[0] = *reinterpret_cast<const unsigned*>(&r_tile[row * ROW_BYTES + 4 * tig]);
        rg[1] = *reinterpret_cast<const unsigned*>(&r_tile[(row + 8) * ROW_BYTES + 4 * tig]);
        rg[2] = *reinterpret_cast<const unsigned*>(&r_tile[row * ROW_BYTES + 16 + 4 * tig]);
        rg[3] = *reinterpret_cast<const unsigned*>(&r_tile[(row + 8) * ROW_BYTES + 16 + 4 * tig]);
#pragma unroll
        for (int r = 0; r < MAX_REGIONS; r++) {
            if (r >= regions) break;  // uniform across the block
            unsigned am[4];
            for (int i = 0; i < 4; i++) am[i] = regions == 1 ? a[i] : a[i] & bytes_equal(rg[i], (unsigned)r);
            const int set = weight_sets == 1 ? 0 : r;
#pragma unroll
            for (int f = 0; f < FRAGS_N; f++) {
                unsigned b[2];
                b[0] = *reinterpret_cast<const unsigned*>(&b_tile[(set * TILE_N + f * 8 + gid) * ROW_BYTES + 4 * tig]);
                b[1] = *reinterpret_cast<const unsigned*>(&b_tile[(set * TILE_N + f * 8 + gid) * ROW_BYTES + 16 + 4 * tig]);
                lowbit_mma::m16n8k32_u8s8(acc[r][f], am, b, acc[r][f]);
            }
        }
        __syncthreads();  // the next step overwrites the tiles
    }

    // Epilogue: lane (gid, tig) holds rows gid, gid + 8 of its warp and columns 2 tig, 2 tig + 1 of each fragment.
    for (int e = 0; e < 4; e++) {
        const long long m = m0 + warp * 16 + gid + (e >= 2 ? 8 : 0);
        if (m >= pixels) continue;
        const int ox = (int)(m % ow), oy = (int)(m / ow % oh);
        const long long image = m / ((long long)oh * ow);
        for (int f = 0; f < FRAGS_N; f++) {
            const int local = nt * TILE_N + f * 8 + 2 * tig + (e & 1);
            if (local >= og) continue;
            const int oc = group * og + local;
            const long long out_index = ((image * out_c + oc) * oh + oy) * ow + ox;
            if (output == ACCUMULATORS) {
                for (int r = 0; r < regions && r < MAX_REGIONS; r++) {
                    acc_out[out_index * regions + r] = r == 0 ? acc[r][f][e] - zero_point * w_sums[oc] : acc[r][f][e];
                }
            } else if (output == VALUES) {
                double y = bias == nullptr ? 0.0 : (double)bias[oc];
                for (int r = 0; r < regions && r < MAX_REGIONS; r++) {
                    const int a_r = r == 0 ? acc[r][f][e] - zero_point * w_sums[oc] : acc[r][f][e];
                    const double term = __dmul_rn((double)scales[(weight_sets == 1 ? 0 : r) * out_c + oc], (double)a_r);
                    y = __dadd_rn(y, __dmul_rn(steps[r], term));
                }
                y_out[out_index] = __double2float_rn(y);
            }
        }
    }
}

// The graph carries a region map as floats (Op.RegionMap's N x 1 x H x W tensor, as on the CPU); the
// kernels read one byte per pixel. These two convert, one thread per pixel, grid-stride.
extern "C" __global__ void lowbit_region_to_floats(const unsigned char* __restrict__ region, float* __restrict__ y, long long count) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (long long)gridDim.x * blockDim.x) {
        y[i] = (float)region[i];
    }
}

extern "C" __global__ void lowbit_region_to_bytes(const float* __restrict__ x, unsigned char* __restrict__ region, long long count) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (long long)gridDim.x * blockDim.x) {
        region[i] = (unsigned char)(int)x[i];
    }
}
