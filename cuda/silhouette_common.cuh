// Shared device helpers of the silhouette kernels.
#pragma once
#include <stdint.h>

// Maps a float to an unsigned key whose integer order is the float total order (-inf < ... < -0 < +0
// < ... < +inf): positives get the sign bit set, negatives are bit-inverted. The CPU reference
// (dev.silhouette.quant.SilhouetteThresholds) orders by the same key, so ties and signed zeros select
// the same bit patterns on both.
__device__ __forceinline__ uint32_t order_key(float f) {
    uint32_t b = __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float key_value(uint32_t key) {
    return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}
