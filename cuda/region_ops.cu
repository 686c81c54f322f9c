// The graph ops of region-based quantization on the device: fake-quantized float tensors (quantize, then
// dequantize) and the training-free silhouettes. The specification is the CPU backend,
// dev.silhouette.backend.cpu.RegionOps (pactQuantize, regionQuantize, drqQuantize, channelSqueeze,
// noiseSilhouette) and CpuOps.logitBlend; docs/REGION_QUANTIZATION.md sections 2, 4 and 8. The region maps
// come from region_masks.cu and silhouette_threshold.cu (RegionMaskKernel); RegionOpKernels launches both.
// (Not named ops_*.cu: those files hold BuiltinKernels' kernels.)
//
// Every result is bit-identical to the CPU's: codes use the project's one PACT rule (lowbit::pact_code),
// and every float or double step is an explicitly rounded intrinsic in the CPU's order, so nvcc cannot
// contract a multiply and an add into an FMA that Java does not perform. Java's Math.max/min semantics
// (NaN wins, -0 below +0) are spelled out where the CPU uses them.
//
// Simple mappings, not tuned: one thread per element (grid-stride), and one thread per image for the
// short per-image scans (the noise seed's hash, the squeeze's value range).
#include "lowbit_common.cuh"

namespace region_ops {

// RegionQuantizer.pactValue: code * (alpha / (2^bits - 1)) in float.
__device__ __forceinline__ float pact_value(float x, float alpha, int bits) {
    const int code = lowbit::pact_code(x, alpha, bits);
    return __fmul_rn((float)code, __fdiv_rn(alpha, (float)((1 << bits) - 1)));
}

// Java's Math.max(double, double): a NaN argument wins (the first if both), max(-0, +0) is +0.
__device__ __forceinline__ double java_dmax(double a, double b) {
    if (a != a) return a;
    if (a == 0.0 && b == 0.0) return signbit(a) ? b : a;
    return a >= b ? a : b;
}

// Java's Math.min(float, float) and Math.max(float, float).
__device__ __forceinline__ float java_fmin(float a, float b) {
    if (a != a) return a;
    if (a == 0.0f && b == 0.0f) return __float_as_uint(b) == 0x80000000u ? b : a;
    return a <= b ? a : b;
}

__device__ __forceinline__ float java_fmax(float a, float b) {
    if (a != a) return a;
    if (a == 0.0f && b == 0.0f) return __float_as_uint(a) == 0x80000000u ? b : a;
    return a >= b ? a : b;
}

// Whether channel score a ranks strictly above score b in RegionOps.topChannels' order: descending, NaN
// above everything (Double.compare), equal scores (-0 == +0, NaN == NaN) tied.
__device__ __forceinline__ bool ranks_above(double a, double b) {
    if (a != a) return b == b;
    if (b != b) return false;
    return a > b;
}

__device__ __forceinline__ bool ties(double a, double b) {
    return (a != a && b != b) || a == b;
}

// SplittableRandom's output mix (Stafford variant 13), on unsigned 64-bit integers as Java's long wraps.
__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

constexpr unsigned long long GOLDEN_GAMMA = 0x9e3779b97f4a7c15ull;

}  // namespace region_ops

// Op.PactQuantize: y[i] = RegionQuantizer.pactValue(x[i], alpha, bits) for count elements.
extern "C" __global__ void region_pact_quantize(const float* __restrict__ x, long long count, int bits, float alpha,
                                                float* __restrict__ y) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
        y[i] = region_ops::pact_value(x[i], alpha, bits);
    }
}

// Op.RegionQuantize on n x c x plane activations: each element at the width bits[r] and clip level alphas[r]
// of its pixel's region r = region[image * plane + pixel] (a region map shared by the channels); with
// only_region >= 0 the elements of every other region are +0.
extern "C" __global__ void region_quantize_by_map(const float* __restrict__ x, int n, int c, int plane,
                                                  const unsigned char* __restrict__ region, const int* __restrict__ bits,
                                                  const float* __restrict__ alphas, int only_region, float* __restrict__ y) {
    const long long per_image = (long long)c * plane;
    const long long total = (long long)n * per_image;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int r = region[i / per_image * plane + i % plane];
        y[i] = only_region >= 0 && r != only_region ? 0.0f : region_ops::pact_value(x[i], alphas[r], bits[r]);
    }
}

// RegionOps.drqBlockMeans: the mean of every block x block tile of each of planes h x w planes (tiles from
// the top-left corner, an edge tile over its in-bounds pixels), summed in double in row-major order,
// divided once and rounded to float. means is planes x tiles_h x tiles_w.
extern "C" __global__ void region_drq_block_means(const float* __restrict__ x, int planes, int h, int w, int block,
                                                  float* __restrict__ means) {
    const int tiles_h = (h + block - 1) / block, tiles_w = (w + block - 1) / block;
    const long long total = (long long)planes * tiles_h * tiles_w;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int tx = (int)(i % tiles_w), ty = (int)(i / tiles_w % tiles_h);
        const long long p = i / ((long long)tiles_h * tiles_w);
        const int y0 = ty * block, x0 = tx * block;
        const int y1 = min(h, y0 + block), x1 = min(w, x0 + block);
        const float* src = x + p * h * w;
        double sum = 0.0;
        for (int yy = y0; yy < y1; yy++) {
            for (int xx = x0; xx < x1; xx++) sum = __dadd_rn(sum, (double)src[yy * w + xx]);
        }
        means[i] = __double2float_rn(__ddiv_rn(sum, (double)((y1 - y0) * (x1 - x0))));
    }
}

// Op.DrqQuantize given the tile means: an element whose tile mean is >= threshold is sensitive (region 1,
// high width and clip level), the others region 0 (low); with only_region >= 0 the other region's elements
// are +0 (RegionOps.drqQuantize).
extern "C" __global__ void region_drq_quantize(const float* __restrict__ x, const float* __restrict__ means, int planes, int h,
                                               int w, int block, float threshold, int low_bits, float low_alpha, int high_bits,
                                               float high_alpha, int only_region, float* __restrict__ y) {
    const int tiles_h = (h + block - 1) / block, tiles_w = (w + block - 1) / block;
    const long long plane = (long long)h * w;
    const long long total = (long long)planes * plane;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const long long p = i / plane;
        const int yy = (int)(i % plane / w), xx = (int)(i % w);
        const int r = means[(p * tiles_h + yy / block) * tiles_w + xx / block] >= threshold ? 1 : 0;
        y[i] = only_region >= 0 && r != only_region ? 0.0f
               : r == 1 ? region_ops::pact_value(x[i], high_alpha, high_bits) : region_ops::pact_value(x[i], low_alpha, low_bits);
    }
}

// The channel statistic of the top-k squeezes, per image and channel of n x c x plane: the spatial mean, or
// with by_std the standard deviation sqrt(max(0, E[x^2] - mean^2)), in double with RegionOps.topChannels'
// summation order and roundings.
extern "C" __global__ void region_squeeze_channel_scores(const float* __restrict__ x, int n, int c, int plane, int by_std,
                                                         double* __restrict__ scores) {
    const long long total = (long long)n * c;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const float* src = x + i * plane;
        double sum = 0.0, sum_sq = 0.0;
        for (int j = 0; j < plane; j++) {
            const double v = (double)src[j];
            sum = __dadd_rn(sum, v);
            sum_sq = __dadd_rn(sum_sq, __dmul_rn(v, v));
        }
        const double mean = __ddiv_rn(sum, (double)plane);
        if (by_std) {
            const double variance = __dsub_rn(__ddiv_rn(sum_sq, (double)plane), __dmul_rn(mean, mean));
            scores[i] = __dsqrt_rn(region_ops::java_dmax(0.0, variance));
        } else {
            scores[i] = mean;
        }
    }
}

// chosen[image * k + rank] = the channel of that rank among the image's c scores, for ranks below k:
// descending score, the lower channel first on ties (RegionOps.topChannels' sort). One thread per channel
// counts the channels ranked before it.
extern "C" __global__ void region_squeeze_top_channels(const double* __restrict__ scores, int n, int c, int k,
                                                       int* __restrict__ chosen) {
    const long long total = (long long)n * c;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const long long image = i / c;
        const int channel = (int)(i % c);
        const double* s = scores + image * c;
        const double own = s[channel];
        int rank = 0;
        for (int other = 0; other < c; other++) {
            if (other == channel) continue;
            if (region_ops::ranks_above(s[other], own) || (region_ops::ties(s[other], own) && other < channel)) rank++;
        }
        if (rank < k) chosen[image * k + rank] = channel;
    }
}

// The squeeze of n x c x plane to n x plane over k channels per image: channels chosen[image * k + j] in
// that order (chosen null: channels 0..k-1), the maximum (max_mode != 0) or the mean, accumulated in double
// as RegionOps.channelSqueeze does and rounded to float. Not yet rescaled.
extern "C" __global__ void region_squeeze_channels(const float* __restrict__ x, int n, int c, int plane,
                                                   const int* __restrict__ chosen, int k, int max_mode, float* __restrict__ y) {
    const long long total = (long long)n * plane;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const long long image = i / plane, pixel = i % plane;
        double acc = max_mode ? -INFINITY : 0.0;
        for (int j = 0; j < k; j++) {
            const int channel = chosen == nullptr ? j : chosen[image * k + j];
            const double v = (double)x[(image * c + channel) * plane + pixel];
            acc = max_mode ? region_ops::java_dmax(acc, v) : __dadd_rn(acc, v);
        }
        y[i] = __double2float_rn(max_mode ? acc : __ddiv_rn(acc, (double)k));
    }
}

// range[2 * image] = the image's minimum, range[2 * image + 1] its maximum, by Java's Math.min/max from
// +inf and -inf. One thread per image.
extern "C" __global__ void region_squeeze_range(const float* __restrict__ y, int n, int plane, float* __restrict__ range) {
    for (long long image = (long long)blockIdx.x * blockDim.x + threadIdx.x; image < n; image += (long long)gridDim.x * blockDim.x) {
        const float* v = y + image * plane;
        float lo = INFINITY, hi = -INFINITY;
        for (int j = 0; j < plane; j++) {
            lo = region_ops::java_fmin(lo, v[j]);
            hi = region_ops::java_fmax(hi, v[j]);
        }
        range[2 * image] = lo;
        range[2 * image + 1] = hi;
    }
}

// Each image rescaled to [0, 1] by its range: (v - lo) / (hi - lo), or 0 when hi - lo is not positive.
extern "C" __global__ void region_squeeze_rescale(float* __restrict__ y, int n, int plane, const float* __restrict__ range) {
    const long long total = (long long)n * plane;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const long long image = i / plane;
        const float lo = range[2 * image], extent = __fsub_rn(range[2 * image + 1], lo);
        y[i] = extent > 0.0f ? __fdiv_rn(__fsub_rn(y[i], lo), extent) : 0.0f;
    }
}

// hash[image] = java.util.Arrays.hashCode of the image's per_image floats (31 h + floatToIntBits, from 1,
// NaN as the canonical 0x7fc00000), with Java's int wrap-around. One thread per image.
extern "C" __global__ void region_noise_image_hash(const float* __restrict__ x, int n, int per_image, int* __restrict__ hash) {
    for (long long image = (long long)blockIdx.x * blockDim.x + threadIdx.x; image < n; image += (long long)gridDim.x * blockDim.x) {
        const float* v = x + image * per_image;
        unsigned int h = 1;
        for (int j = 0; j < per_image; j++) {
            const float f = v[j];
            h = 31u * h + (f != f ? 0x7fc00000u : __float_as_uint(f));
        }
        hash[image] = (int)h;
    }
}

// Op.NoiseSilhouette: pixel j of image b is the (j + 1)-th nextDouble() of new SplittableRandom(seed ^ hash[b])
// (the int hash sign-extended, as Java's long ^ int), rounded to float. SplittableRandom's state after m
// draws is seed + m * GOLDEN_GAMMA, so each pixel computes its own draw: (mix64(state) >>> 11) * 2^-53.
extern "C" __global__ void region_noise_silhouette(const int* __restrict__ hash, int n, int plane, long long seed,
                                                   float* __restrict__ y) {
    const long long total = (long long)n * plane;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const long long image = i / plane, pixel = i % plane;
        const unsigned long long start = (unsigned long long)seed ^ (unsigned long long)(long long)hash[image];
        const unsigned long long state = start + (unsigned long long)(pixel + 1) * region_ops::GOLDEN_GAMMA;
        const double unit = (double)(region_ops::mix64(state) >> 11) * 0x1.0p-53;
        y[i] = __double2float_rn(unit);
    }
}

// Op.LogitBlend: y = g main + (1 - g) aux in float, each product and the sum rounded (CpuOps.logitBlend); g is
// the gate's sigmoid, computed by the host exactly as the CPU does.
extern "C" __global__ void region_logit_blend(const float* __restrict__ main_logits, const float* __restrict__ aux_logits,
                                              long long count, float g, float* __restrict__ y) {
    const float rest = __fsub_rn(1.0f, g);
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
        y[i] = __fadd_rn(__fmul_rn(g, main_logits[i]), __fmul_rn(rest, aux_logits[i]));
    }
}
