// Pooling and softmax kernels. The specification is dev.silhouette.backend.cpu.CpuOps (pool,
// globalAvgPool, softmax). Max and average pooling visit the window taps in the CPU's order and sum in
// double, so they are bit-identical. Global average pooling and the block softmax sum in another order
// (warp or block reductions), and softmax's exp may differ from Java's in its last double bit; either
// can move a result by one float ulp, see each kernel.
//
// Plane kernels put planes (n * c) on grid y and the pixels of a plane on grid x, both grid-stride: no
// 64-bit division per element, and any plane count fits the 65535 limit of grid y. Loop counters are
// unsigned: the host keeps every count below 2^31, so counter + stride cannot wrap.
#include "silhouette_common.cuh"

// Java's Math.max(float, float), the CPU pools' and softmax's maximum: a NaN argument wins and +0 is
// larger than -0 (fmaxf differs on both).
__device__ __forceinline__ float pool_java_max(float a, float b) {
    if (a != a) return a;
    if (a == 0.0f && b == 0.0f && __float_as_uint(a) == 0x80000000u) return b;
    return a >= b ? a : b;
}

// One output of a max (average when !is_max) pool over the in-bounds taps of its window, in CpuOps's
// tap order ky, kx. Padded taps are skipped: they never win a max and never enter a sum; the average
// divides by the full window when include_pad, else by the taps visited (0 / 0 = NaN for a window that
// lies wholly in the padding, as on the CPU, where a max gives -inf).
template <bool is_max>
__device__ __forceinline__ float pool_window(const float* src, int h, int w, int oy, int ox, int kh, int kw, int sh, int sw,
                                             int ph, int pw, int dh, int dw, bool include_pad) {
    float best = -INFINITY;
    double sum = 0.0;
    int taps = 0;
    for (int ky = 0; ky < kh; ky++) {
        int iy = oy * sh - ph + ky * dh;
        if (iy < 0 || iy >= h) continue;
        const float* row = src + (size_t)iy * w;
        for (int kx = 0; kx < kw; kx++) {
            int ix = ox * sw - pw + kx * dw;
            if (ix < 0 || ix >= w) continue;
            float v = row[ix];
            if (is_max) {
                best = pool_java_max(best, v);
            } else {
                sum = __dadd_rn(sum, (double)v);
                taps++;
            }
        }
    }
    if (is_max) return best;
    int divisor = include_pad ? kh * kw : taps;
    return __double2float_rn(__ddiv_rn(sum, (double)divisor));
}

template <bool is_max>
__device__ __forceinline__ void pool_planes(const float* __restrict__ x, float* __restrict__ y, int planes, int h, int w,
                                            int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                                            bool include_pad) {
    unsigned pixels = (unsigned)oh * (unsigned)ow;
    for (unsigned p = blockIdx.y; p < (unsigned)planes; p += gridDim.y) {
        const float* src = x + (size_t)p * h * w;
        float* dst = y + (size_t)p * pixels;
        for (unsigned o = blockIdx.x * blockDim.x + threadIdx.x; o < pixels; o += gridDim.x * blockDim.x) {
            int oy = (int)(o / (unsigned)ow), ox = (int)(o % (unsigned)ow);
            dst[o] = pool_window<is_max>(src, h, w, oy, ox, kh, kw, sh, sw, ph, pw, dh, dw, include_pad);
        }
    }
}

// Max pooling of [planes, h, w] into [planes, oh, ow] (CpuOps.maxPool): padding never wins.
extern "C" __global__ void silhouette_max_pool(const float* __restrict__ x, float* __restrict__ y, int planes, int h, int w,
                                               int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw) {
    pool_planes<true>(x, y, planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, false);
}

// Average pooling of [planes, h, w] into [planes, oh, ow] (CpuOps.avgPool), double sum in tap order.
extern "C" __global__ void silhouette_avg_pool(const float* __restrict__ x, float* __restrict__ y, int planes, int h, int w,
                                               int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                                               int count_include_pad) {
    pool_planes<false>(x, y, planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, count_include_pad != 0);
}

// y[p] = (float) (sum of plane p in double / plane), one warp per plane (blockDim.x a multiple of 32):
// lanes read consecutive floats, so loads coalesce on large planes. The CPU sums left to right; this
// sums 32 strided partial sums in a tree, so the double sums differ by at most plane * 2^-53 of the sum
// of magnitudes, and the float results by one ulp except under heavy cancellation.
extern "C" __global__ void silhouette_global_avg_pool(const float* __restrict__ x, float* __restrict__ y, int planes, int plane) {
    unsigned lane = threadIdx.x & 31u;
    size_t warps = blockDim.x >> 5;
    for (size_t p = (size_t)blockIdx.x * warps + (threadIdx.x >> 5); p < (size_t)planes; p += (size_t)gridDim.x * warps) {
        const float* src = x + p * (size_t)plane;
        double sum = 0.0;
        for (unsigned i = lane; i < (unsigned)plane; i += 32u) sum = __dadd_rn(sum, (double)src[i]);
        // p is the same for the whole warp, so every lane reaches the shuffles.
        for (int offset = 16; offset > 0; offset >>= 1) sum = __dadd_rn(sum, __shfl_down_sync(0xffffffffu, sum, offset));
        if (lane == 0) y[p] = __double2float_rn(__ddiv_rn(sum, (double)plane));
    }
}

// Softmax over axis 1 of [n, classes, inner], one thread per position (b, i), exactly CpuOps.softmax's
// loops: float max, then exp((double) x - max) summed left to right in double, then each exp / sum
// rounded to float. Only exp's last double ulp can differ from Java's Math.exp, so outputs match to one
// float ulp. Threads of a warp take neighbouring i, so each class row is read coalesced.
extern "C" __global__ void silhouette_softmax(const float* __restrict__ x, float* __restrict__ y, int n, int classes, int inner) {
    size_t positions = (size_t)n * inner;
    for (size_t pos = (size_t)blockIdx.x * blockDim.x + threadIdx.x; pos < positions; pos += (size_t)gridDim.x * blockDim.x) {
        size_t b = pos / (size_t)inner, i = pos % (size_t)inner;
        const float* src = x + b * classes * inner + i;
        float* dst = y + b * classes * inner + i;
        float max = -INFINITY;
        for (int c = 0; c < classes; c++) max = pool_java_max(max, src[(size_t)c * inner]);
        double sum = 0.0;
        for (int c = 0; c < classes; c++) sum = __dadd_rn(sum, exp(__dsub_rn((double)src[(size_t)c * inner], (double)max)));
        for (int c = 0; c < classes; c++) {
            dst[(size_t)c * inner] = __double2float_rn(__ddiv_rn(exp(__dsub_rn((double)src[(size_t)c * inner], (double)max)), sum));
        }
    }
}

// Block-wide reductions for silhouette_softmax_block (blockDim.x a multiple of 32, at most 1024). The
// result is returned to every thread; the trailing barrier lets the caller reuse the scratch at once.
__device__ __forceinline__ float pool_block_max(float v, float* scratch) {
    for (int offset = 16; offset > 0; offset >>= 1) v = pool_java_max(v, __shfl_down_sync(0xffffffffu, v, offset));
    if ((threadIdx.x & 31u) == 0) scratch[threadIdx.x >> 5] = v;
    __syncthreads();
    v = scratch[0];
    for (unsigned k = 1; k < (blockDim.x >> 5); k++) v = pool_java_max(v, scratch[k]);
    __syncthreads();
    return v;
}

__device__ __forceinline__ double pool_block_sum(double v, double* scratch) {
    for (int offset = 16; offset > 0; offset >>= 1) v = __dadd_rn(v, __shfl_down_sync(0xffffffffu, v, offset));
    if ((threadIdx.x & 31u) == 0) scratch[threadIdx.x >> 5] = v;
    __syncthreads();
    v = scratch[0];
    for (unsigned k = 1; k < (blockDim.x >> 5); k++) v = __dadd_rn(v, scratch[k]);
    __syncthreads();
    return v;
}

// Softmax over axis 1 with one block per position, for few positions with many classes ([batch, 1000]
// logits), where a thread per position would leave the GPU idle. The maximum is order-independent (up to
// the sign of a zero maximum, which exp(x - max) cannot see); the double sum is reduced in a tree, a
// relative change of at most classes * 2^-53 on a sum of positive terms, so outputs still match the CPU
// to one float ulp.
extern "C" __global__ void silhouette_softmax_block(const float* __restrict__ x, float* __restrict__ y, int n, int classes, int inner) {
    __shared__ float max_scratch[32];
    __shared__ double sum_scratch[32];
    size_t positions = (size_t)n * inner;
    for (size_t pos = blockIdx.x; pos < positions; pos += gridDim.x) {
        size_t b = pos / (size_t)inner, i = pos % (size_t)inner;
        const float* src = x + b * classes * inner + i;
        float* dst = y + b * classes * inner + i;
        float max = -INFINITY;
        for (unsigned c = threadIdx.x; c < (unsigned)classes; c += blockDim.x) max = pool_java_max(max, src[(size_t)c * inner]);
        max = pool_block_max(max, max_scratch);
        double sum = 0.0;
        for (unsigned c = threadIdx.x; c < (unsigned)classes; c += blockDim.x) {
            sum = __dadd_rn(sum, exp(__dsub_rn((double)src[(size_t)c * inner], (double)max)));
        }
        sum = pool_block_sum(sum, sum_scratch);
        for (unsigned c = threadIdx.x; c < (unsigned)classes; c += blockDim.x) {
            dst[(size_t)c * inner] = __double2float_rn(__ddiv_rn(exp(__dsub_rn((double)src[(size_t)c * inner], (double)max)), sum));
        }
    }
}
