// Every packed code layout of the kernels, declared once. The Java mirror is
// dev.silhouette.quant.PackedLayout (docs/QUANTIZATION.md section 7); PackedLayoutHeaderTest parses this
// file and checks every constant and every static_assert'ed index below against the Java table, so a
// change on one side without the other fails the build's tests.
//
// Words are 64-bit, bits numbered from the least significant. Unsigned codes are stored as they are,
// signed codes in two's complement (in bit planes, plane bits - 1 weighs -2^(bits-1)).
#pragma once
#include <stdint.h>

namespace packed {

typedef uint64_t word_t;

constexpr int WORD_BITS = 64;
constexpr int MIN_BITS = 1;
constexpr int MAX_BITS = 8;
static_assert(sizeof(word_t) * 8 == WORD_BITS, "a packed word is 64 bits");
// Kernels that write one 32-bit half of a word (a warp's ballot over 32 channels) rely on the low half
// being at the lower address, which holds on every CUDA device.
constexpr int HALF_WORD_BITS = 32;
static_assert(sizeof(uint32_t) * 2 == sizeof(word_t), "two 32-bit halves make a word");

// ---- Bit planes (PackedLayout.BitPlanes) ----
// Per pixel (activations, from NCHW) or kernel tap (weights, from OIHW): bits planes of words(channels)
// words; channel c in word c / 64 at bit c % 64; plane p holds bit p of every channel's code; bits of
// channels past C are 0. Word index:
//   activations: ((n * H + y) * W + x) * bits * words + plane * words + word
//   weights:     ((o * KH + ky) * KW + kx) * bits * words + plane * words + word
__host__ __device__ constexpr int bitplane_words(int channels) { return (channels + WORD_BITS - 1) / WORD_BITS; }
__host__ __device__ constexpr int bitplane_words_per_position(int bits, int channels) { return bits * bitplane_words(channels); }
__host__ __device__ constexpr long long bitplane_index(long long position, int plane, int word, int bits, int channels) {
    return (position * bits + plane) * bitplane_words(channels) + word;
}
// Region-quantized activations use the layout with bits = the policy's widest region: a pixel of a
// narrower region has only its low planes set (the others are 0) and kernels read only those planes, so
// low-bit regions cost proportionally fewer loads and popcounts even though storage is padded.

static_assert(bitplane_words(1) == 1, "layout: bitplane_words(1)");
static_assert(bitplane_words(63) == 1, "layout: bitplane_words(63)");
static_assert(bitplane_words(64) == 1, "layout: bitplane_words(64)");
static_assert(bitplane_words(65) == 2, "layout: bitplane_words(65)");
static_assert(bitplane_words(512) == 8, "layout: bitplane_words(512)");
static_assert(bitplane_words_per_position(3, 130) == 9, "layout: bitplane_words_per_position(3, 130)");
static_assert(bitplane_words_per_position(8, 2048) == 256, "layout: bitplane_words_per_position(8, 2048)");
static_assert(bitplane_index(0, 0, 0, 1, 1) == 0, "layout: bitplane_index(0, 0, 0, 1, 1)");
static_assert(bitplane_index(5, 2, 1, 3, 70) == 35, "layout: bitplane_index(5, 2, 1, 3, 70)");
static_assert(bitplane_index(7, 7, 3, 8, 256) == 255, "layout: bitplane_index(7, 7, 3, 8, 256)");
static_assert(bitplane_index(100, 0, 0, 4, 64) == 400, "layout: bitplane_index(100, 0, 0, 4, 64)");

// ---- Dense (PackedLayout.Dense) ----
// floor(64 / bits) codes per word, code i in word i / perWord at bit (i % perWord) * bits, tensor
// order, unused high bits 0; a code never straddles a word.
__host__ __device__ constexpr int dense_codes_per_word(int bits) { return WORD_BITS / bits; }
__host__ __device__ constexpr long long dense_words(long long codes, int bits) {
    return (codes + dense_codes_per_word(bits) - 1) / dense_codes_per_word(bits);
}
__host__ __device__ constexpr int dense_shift(long long code, int bits) { return (int)(code % dense_codes_per_word(bits)) * bits; }
__host__ __device__ constexpr long long dense_word(long long code, int bits) { return code / dense_codes_per_word(bits); }

// Codes per word for bits 0..8 (index 0 unused): the table the Java test reads.
constexpr int DENSE_CODES_PER_WORD[MAX_BITS + 1] = {0, 64, 32, 21, 16, 12, 10, 9, 8};
// Spare high bits per word: 64 - perWord * bits.
constexpr int DENSE_SPARE_BITS[MAX_BITS + 1] = {0, 0, 0, 1, 0, 4, 4, 1, 0};

static_assert(DENSE_CODES_PER_WORD[1] == dense_codes_per_word(1) && DENSE_CODES_PER_WORD[2] == dense_codes_per_word(2)
              && DENSE_CODES_PER_WORD[3] == dense_codes_per_word(3) && DENSE_CODES_PER_WORD[4] == dense_codes_per_word(4)
              && DENSE_CODES_PER_WORD[5] == dense_codes_per_word(5) && DENSE_CODES_PER_WORD[6] == dense_codes_per_word(6)
              && DENSE_CODES_PER_WORD[7] == dense_codes_per_word(7) && DENSE_CODES_PER_WORD[8] == dense_codes_per_word(8),
              "dense table agrees with the formula");
static_assert(DENSE_SPARE_BITS[3] == WORD_BITS - 21 * 3 && DENSE_SPARE_BITS[5] == WORD_BITS - 12 * 5
              && DENSE_SPARE_BITS[6] == WORD_BITS - 10 * 6 && DENSE_SPARE_BITS[7] == WORD_BITS - 9 * 7,
              "spare bits agree with the formula");
static_assert(dense_words(21, 3) == 1, "layout: dense_words(21, 3)");
static_assert(dense_words(22, 3) == 2, "layout: dense_words(22, 3)");
static_assert(dense_words(1000, 5) == 84, "layout: dense_words(1000, 5)");
static_assert(dense_word(100, 6) == 10, "layout: dense_word(100, 6)");
static_assert(dense_shift(100, 6) == 0, "layout: dense_shift(100, 6)");
static_assert(dense_shift(47, 3) == 15, "layout: dense_shift(47, 3)");
static_assert(dense_shift(17, 7) == 56, "layout: dense_shift(17, 7)");

// ---- Region map ----
// One unsigned byte per pixel, N x H x W row-major: the region index (0 = lowest silhouette values).
typedef uint8_t region_t;
constexpr int MAX_REGIONS = 256;
static_assert(sizeof(region_t) == 1, "a region index is one byte");

// ---- Per-region widths passed by value ----
// Kernels over region-quantized data take the regions' widths as one 32-bit value, 4 bits per region
// (region r at bits 4r..4r+3), so they need no extra buffer; this is what limits them to 8 regions.
constexpr int REGION_BITS_FIELD = 4;
constexpr int MAX_PACKED_REGIONS = 8;
static_assert(MAX_PACKED_REGIONS * REGION_BITS_FIELD == 32, "eight 4-bit widths fill 32 bits");
static_assert((1 << REGION_BITS_FIELD) > MAX_BITS, "a 4-bit field holds every width");
__host__ __device__ constexpr int region_bits(uint32_t packed_widths, int region) {
    return (int)((packed_widths >> (REGION_BITS_FIELD * region)) & ((1u << REGION_BITS_FIELD) - 1));
}
static_assert(region_bits(0x432u, 0) == 2 && region_bits(0x432u, 1) == 3 && region_bits(0x432u, 2) == 4, "layout: region_bits");

}  // namespace packed
