// Per-image silhouette thresholds and region maps. The specification is the CPU reference
// dev.silhouette.quant.SilhouetteThresholds; these kernels match it bit for bit.
#include "silhouette_common.cuh"

// The k-th smallest (0-based) order key of v[0..n) by block-wide radix select: four passes over 8-bit
// digits, most significant first. Each pass histograms the digit of the keys that share the prefix
// found so far, then walks the 256 buckets to the one holding rank k. Cost is 4 reads of the image
// and no sort; every thread returns the same key.
__device__ uint32_t select_kth_key(const float* v, int n, uint32_t k, uint32_t* histogram, uint32_t* found) {
    uint32_t prefix = 0, mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) histogram[i] = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            uint32_t key = order_key(v[i]);
            if ((key & mask) == prefix) atomicAdd(&histogram[(key >> shift) & 0xffu], 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            uint32_t below = 0;
            uint32_t digit = 0;
            for (; digit < 255u; digit++) {
                if (below + histogram[digit] > k) break;
                below += histogram[digit];
            }
            found[0] = digit;
            found[1] = below;
        }
        __syncthreads();
        prefix |= found[0] << shift;
        mask |= 0xffu << shift;
        k -= found[1];
        __syncthreads();  // found[] is rewritten by the next pass
    }
    return prefix;
}

// thresholds[b * count + j] = linear-interpolated quantile of image b at fractions[j]:
//   p = q (n - 1) in double, lo = floor(p), frac = (float)(p - lo), hi = min(lo + 1, n - 1),
//   t = v_lo + (v_hi - v_lo) * frac in float with round-to-nearest on every step (no FMA contraction),
// where v_r is the rank-r value of the image. One block per image.
extern "C" __global__ void silhouette_thresholds(const float* __restrict__ silhouette, int batch, int pixels,
                                                 const double* __restrict__ fractions, int count,
                                                 float* __restrict__ thresholds) {
    __shared__ uint32_t histogram[256];
    __shared__ uint32_t found[2];
    int b = blockIdx.x;
    if (b >= batch) return;
    const float* v = silhouette + (size_t)b * pixels;
    for (int j = 0; j < count; j++) {
        double p = fractions[j] * (double)(pixels - 1);
        double lo_d = floor(p);
        uint32_t lo = (uint32_t)lo_d;
        uint32_t hi = lo + 1 < (uint32_t)pixels ? lo + 1 : (uint32_t)pixels - 1;
        float frac = __double2float_rn(p - lo_d);
        float v_lo = key_value(select_kth_key(v, pixels, lo, histogram, found));
        float v_hi = hi == lo ? v_lo : key_value(select_kth_key(v, pixels, hi, histogram, found));
        if (threadIdx.x == 0) {
            thresholds[(size_t)b * count + j] = __fadd_rn(v_lo, __fmul_rn(__fsub_rn(v_hi, v_lo), frac));
        }
    }
}

// region[i] = number of image thresholds t_j with value >= t_j: region j is [t_j, t_(j+1)), the top
// region includes its lower bound, values equal to a threshold go up.
extern "C" __global__ void silhouette_region_map(const float* __restrict__ silhouette, int batch, int pixels,
                                                 const float* __restrict__ thresholds, int count,
                                                 unsigned char* __restrict__ region) {
    int total = batch * pixels;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const float* t = thresholds + (size_t)(i / pixels) * count;
        float value = silhouette[i];
        unsigned char r = 0;
        for (int j = 0; j < count; j++) r += value >= t[j] ? 1 : 0;
        region[i] = r;
    }
}
