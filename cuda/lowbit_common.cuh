// Device helpers shared by the low-bit kernel families (quantize_pack.cu, packed_conv.cu,
// binary_conv.cu): the PACT code, the float epilogue, and the warp-ballot writer of bit planes.
// Every float step uses an explicitly rounded intrinsic so nvcc cannot contract it into an FMA that the
// Java reference does not perform.
#pragma once
#include "packed_layout.cuh"

namespace lowbit {

constexpr unsigned FULL_WARP = 0xffffffffu;
constexpr int WARP = 32;

// The PACT code of the CPU specification, dev.silhouette.quant.Quantizers.code as Quantizers.pact and
// RegionQuantizer.pactCode use it (docs/QUANTIZATION.md section 2, docs/REGION_QUANTIZATION.md section 4):
// with L = 2^bits - 1, scale = alpha / L and code = clamp(rint(x / scale), 0, L), round half to even;
// NaN gives 0.
__device__ __forceinline__ int pact_code(float x, float alpha, int bits) {
    const int levels = (1 << bits) - 1;
    const float q = rintf(__fdiv_rn(x, __fdiv_rn(alpha, (float)levels)));
    if (!(q >= 0.0f)) return 0;  // negative or NaN (Java clamps NaN through (int) NaN = 0)
    return q >= (float)levels ? levels : (int)q;
}

// ChannelAffine.apply: y = scale * acc + shift, two roundings.
__device__ __forceinline__ float affine(float scale, float acc, float shift) {
    return __fadd_rn(__fmul_rn(scale, acc), shift);
}

// One warp holds 32 consecutive channels [first, first + 32) of one pixel, first a multiple of 32, and
// each lane the code of its channel (0 for channels past the tensor). Writes planes 0..plane_bits-1 of
// that half word: bit p of every lane's code (0 for p >= the lane's width, as the code is below 2^width).
// Every lane of the warp must call this.
__device__ __forceinline__ void write_code_halves(packed::word_t* out, long long position, int first_channel, int channels,
                                                  int plane_bits, int code) {
    const int lane = threadIdx.x % WARP;
    const int word = first_channel / packed::WORD_BITS;
    const int half = (first_channel / packed::HALF_WORD_BITS) % 2;
    uint32_t* halves = reinterpret_cast<uint32_t*>(out);
    for (int p = 0; p < plane_bits; p++) {
        const uint32_t bits = __ballot_sync(FULL_WARP, (code >> p) & 1);
        if (lane == 0) halves[2 * packed::bitplane_index(position, p, word, plane_bits, channels) + half] = bits;
    }
}

}  // namespace lowbit
