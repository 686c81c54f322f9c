// Packed low-bit convolution: integer-exact, bit-serial over 64-bit words (docs/KERNELS.md).
// Specification: dev.silhouette.quant.BitSerialConv (one region) and the per-region accumulators of
// docs/REGION_QUANTIZATION.md section 6 (dev.silhouette.backend.cpu.Reference.regionConv2d):
//   A[o][r] = sum over in-image taps whose input pixel is in region r of sum_c a_c w_c
//           = sum_i sum_j s_j 2^(i+j) popcount(A_i AND W_j),   i < the pixel's region width,
// where s_j = -1 for the top plane of two's-complement weights, else +1. A pixel of a narrower region
// has fewer planes to AND and count, so low-bit regions cost proportionally less work and fewer loads.
#include "lowbit_common.cuh"

namespace packed_conv_config {

// What the launch writes (argument output).
constexpr int ACCUMULATORS = 0;  // acc_out[((n O + o) OH + oy) OW + ox) R + r] = A[o][r], int32
constexpr int VALUES = 1;        // y_out[(n O + o) OH + oy) OW + ox] = the epilogue's y
constexpr int PACKED = 2;        // y PACT-quantized (lowbit::pact_code) at the output pixel's region, as bit planes

// How accumulators become y (argument epilogue); docs/KERNELS.md derives both.
//  CHANNEL_AFFINE (one region; dev.silhouette.quant.ChannelAffine.apply, the folded GDRQ group steps and
//    BatchNorm of Gdrq.fold): y = scale_o * (float) A + shift_o in float.
//  REGION_COMBINE (docs/REGION_QUANTIZATION.md section 6, shared weights; Reference.regionConv2d):
//    y = (float) (shift_o + sum_r (scale_o * step_r) * A[o][r]) in double, left to right, rounded once;
//    scale_o is the weight scale sw_o, step_r = alpha_r / (2^b_r - 1), shift_o the bias (null: 0).
constexpr int CHANNEL_AFFINE = 0;
constexpr int REGION_COMBINE = 1;

// Pixels per block (one warp each); a warp covers 32 consecutive output channels of one output pixel.
constexpr int PIXELS_PER_BLOCK = 8;
constexpr int THREADS = PIXELS_PER_BLOCK * lowbit::WARP;

}  // namespace packed_conv_config

// Launch: block THREADS, grid (ceil(N OH OW / PIXELS_PER_BLOCK), 2 * words(O)); warps past O's last word
// half write zero halves in PACKED mode and nothing otherwise. Unused pointers may be null. The host
// (PackedConvKernel.supports) guarantees that every |A| < 2^31 and every index fits 64 bits.
extern "C" __global__ void __launch_bounds__(packed_conv_config::THREADS)
packed_conv(const packed::word_t* __restrict__ x, const unsigned char* __restrict__ x_region, unsigned int x_widths, int x_plane_bits,
            int regions, const packed::word_t* __restrict__ w, int w_bits, int w_signed,
            int n, int c, int h, int wd, int o_channels, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow,
            int output, int* __restrict__ acc_out,
            int epilogue, const float* __restrict__ channel_scale, const float* __restrict__ channel_shift,
            const float* __restrict__ region_steps, float* __restrict__ y_out,
            const unsigned char* __restrict__ y_region, unsigned int y_widths, const float* __restrict__ y_alphas, int y_plane_bits,
            packed::word_t* __restrict__ y_packed) {
    using namespace packed_conv_config;
    const int lane = threadIdx.x % lowbit::WARP;
    const long long q = (long long)blockIdx.x * PIXELS_PER_BLOCK + threadIdx.x / lowbit::WARP;  // output pixel (n, oy, ox)
    if (q >= (long long)n * oh * ow) return;  // the whole warp leaves together
    const int first_channel = blockIdx.y * lowbit::WARP;
    const int oc = first_channel + lane;
    const bool live = oc < o_channels;
    const int ox = (int)(q % ow), oy = (int)(q / ow % oh);
    const long long image = q / ((long long)oh * ow);
    const int words = packed::bitplane_words(c);

    int acc[packed::MAX_PACKED_REGIONS] = {};
    if (live) {
        for (int ky = 0; ky < kh; ky++) {
            const int iy = oy * sh - ph + ky * dh;
            if (iy < 0 || iy >= h) continue;
            for (int kx = 0; kx < kw; kx++) {
                const int ix = ox * sw - pw + kx * dw;
                if (ix < 0 || ix >= wd) continue;
                const long long pixel = (image * h + iy) * wd + ix;
                const int r = x_region == nullptr ? 0 : x_region[pixel];
                const int a_bits = packed::region_bits(x_widths, r);
                const packed::word_t* a = x + packed::bitplane_index(pixel, 0, 0, x_plane_bits, c);
                const packed::word_t* b = w + packed::bitplane_index(((long long)oc * kh + ky) * kw + kx, 0, 0, w_bits, c);
                int tap = 0;
                for (int i = 0; i < a_bits; i++) {
                    for (int j = 0; j < w_bits; j++) {
                        int count = 0;
                        for (int k = 0; k < words; k++) count += __popcll(a[i * words + k] & b[j * words + k]);
                        const int term = count << (i + j);
                        tap += w_signed && j == w_bits - 1 ? -term : term;
                    }
                }
#pragma unroll
                for (int s = 0; s < packed::MAX_PACKED_REGIONS; s++) {
                    if (s == r) acc[s] += tap;  // unrolled select keeps acc in registers
                }
            }
        }
    }
    const long long out_index = ((image * o_channels + oc) * oh + oy) * ow + ox;
    if (output == ACCUMULATORS) {
        if (!live) return;
#pragma unroll
        for (int s = 0; s < packed::MAX_PACKED_REGIONS; s++) {
            if (s < regions) acc_out[out_index * regions + s] = acc[s];
        }
        return;
    }
    float y = 0.0f;
    if (live && epilogue == CHANNEL_AFFINE) {
        y = lowbit::affine(channel_scale[oc], __int2float_rn(acc[0]), channel_shift[oc]);
    } else if (live) {
        double sum = channel_shift == nullptr ? 0.0 : (double)channel_shift[oc];
        const double scale = (double)channel_scale[oc];
#pragma unroll
        for (int s = 0; s < packed::MAX_PACKED_REGIONS; s++) {
            if (s < regions) sum = __dadd_rn(sum, __dmul_rn(__dmul_rn(scale, (double)region_steps[s]), (double)acc[s]));
        }
        y = __double2float_rn(sum);
    }
    if (output == VALUES) {
        if (live) y_out[out_index] = y;
        return;
    }
    int code = 0;
    if (live) {
        const int r = y_region == nullptr ? 0 : y_region[q];
        code = lowbit::pact_code(y, y_alphas[r], packed::region_bits(y_widths, r));
    }
    lowbit::write_code_halves(y_packed, q, first_channel, o_channels, y_plane_bits, code);
}
