// Shared device helpers of the silhouette kernels.
#pragma once
#include <stdint.h>

// Maps a float to an unsigned key whose integer order is the float total order (-inf < ... < -0 < +0
// < ... < +inf): positives get the sign bit set, negatives are bit-inverted. The CPU reference
// (dev.silhouette.quant.SilhouetteThresholds) orders by the same key, so signed zeros rank alike on both.
__device__ __forceinline__ uint32_t order_key(float f) {
    uint32_t b = __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// The 64-bit rank key of pixel `index` of an image (SilhouetteThresholds.pixelKey): the value's order key
// above the index, so equal values rank by pixel index and every key of an image is distinct.
__device__ __forceinline__ unsigned long long pixel_key(float value, uint32_t index) {
    return (unsigned long long)order_key(value) << 32 | index;
}

// The cut key of a cut at rank n (SilhouetteThresholds.ABOVE_ALL): above every pixel key, whose index is below 2^31.
constexpr unsigned long long ABOVE_ALL = ~0ull;

// Cut rank j (0-based, of regions - 1) of an image of n pixels: ceil(n S_j / T) with S_j the sum of the
// first j + 1 shares and T the sum of all (SilhouetteThresholds.cutRanks; shares are validated there
// so T < 2^31 and the product is exact).
__device__ __forceinline__ uint32_t cut_rank(const int* __restrict__ shares, int regions, int j, int n) {
    unsigned long long below = 0, total = 0;
    for (int r = 0; r < regions; r++) {
        total += (unsigned long long)shares[r];
        if (r <= j) below += (unsigned long long)shares[r];
    }
    return (uint32_t)(((unsigned long long)n * below + total - 1) / total);
}
