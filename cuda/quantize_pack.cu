// Quantize and pack: float NCHW activations to unsigned PACT codes at the width of each pixel's region,
// written as bit planes (packed_layout.cuh) for the low-bit convolutions. The specification is
// RegionQuantizer.pactCode (lowbit::pact_code) at each pixel's region followed by
// BitSerialConv.packActivations at plane_bits = the widest region.
#include "lowbit_common.cuh"

// out: (n * h * w) positions x plane_bits planes x words(c) words. region (n x h x w, may be null: every
// pixel in region 0) selects the width region_bits(widths, r) and the clip level alphas[r] of each pixel.
// One thread per (pixel, word of 64 channels): consecutive threads take consecutive pixels of the same
// channel word, so the NCHW reads coalesce, and each thread assembles its pixel's planes of that word in
// registers and writes every word it owns whole (no atomics, no zeroing pass).
extern "C" __global__ void quantize_pack_bitplanes(const float* __restrict__ x, int n, int c, int h, int w,
                                                   const unsigned char* __restrict__ region, unsigned int widths,
                                                   const float* __restrict__ alphas, int plane_bits,
                                                   packed::word_t* __restrict__ out) {
    const long long image_pixels = (long long)h * w;
    const long long pixels = (long long)n * image_pixels;
    const int words = packed::bitplane_words(c);
    const long long total = pixels * words;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const long long pixel = i % pixels;
        const int word = (int)(i / pixels);
        const long long image = pixel / image_pixels, offset = pixel % image_pixels;
        const int r = region == nullptr ? 0 : region[pixel];
        const int bits = packed::region_bits(widths, r);
        const float alpha = alphas[r];
        packed::word_t planes[packed::MAX_BITS] = {};
        const int first = word * packed::WORD_BITS;
        const int last = min(c, first + packed::WORD_BITS);
        for (int ch = first; ch < last; ch++) {
            const int code = lowbit::pact_code(x[(image * c + ch) * image_pixels + offset], alpha, bits);
#pragma unroll
            for (int p = 0; p < packed::MAX_BITS; p++) {
                planes[p] |= (packed::word_t)((code >> p) & 1) << (ch - first);
            }
        }
#pragma unroll
        for (int p = 0; p < packed::MAX_BITS; p++) {
            if (p < plane_bits) out[packed::bitplane_index(pixel, p, word, plane_bits, c)] = planes[p];
        }
    }
}
