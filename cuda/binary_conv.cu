// Binary convolution (XNOR-popcount) with the folded BatchNorm of dev.silhouette.quant.BinaryNet.
// For +-1 vectors held as bits (+1 -> 1), a . w = C - 2 popcount(a XOR w) per in-image tap; bits past C
// are 0 on both sides and never disagree, and C is the real channel count. Out-of-image taps add
// nothing (BinaryNet.xnorConv's zero padding).
#include "lowbit_common.cuh"

namespace binary_conv_config {

constexpr int SUMS = 0;    // d_out[((n O + o) OH + oy) OW + ox] = d, the exact +-1 sum
constexpr int AFFINE = 1;  // y_out = scale_o d + shift_o (BinaryNet.fold's ChannelAffine)
constexpr int FROZEN = 2;  // BinaryNet.Frozen: +1 (bit 1) iff flip_o ? d <= threshold_o : d >= threshold_o, as a 1-bit plane

constexpr int PIXELS_PER_BLOCK = 8;
constexpr int THREADS = PIXELS_PER_BLOCK * lowbit::WARP;

}  // namespace binary_conv_config

// Launch: block THREADS, grid (ceil(N OH OW / PIXELS_PER_BLOCK), 2 * words(O)), as packed_conv.
extern "C" __global__ void __launch_bounds__(binary_conv_config::THREADS)
binary_conv(const packed::word_t* __restrict__ x, const packed::word_t* __restrict__ w,
            int n, int c, int h, int wd, int o_channels, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow,
            int mode, int* __restrict__ d_out, const float* __restrict__ scale, const float* __restrict__ shift, float* __restrict__ y_out,
            const int* __restrict__ threshold, const int* __restrict__ flip, packed::word_t* __restrict__ y_packed) {
    using namespace binary_conv_config;
    const int lane = threadIdx.x % lowbit::WARP;
    const long long q = (long long)blockIdx.x * PIXELS_PER_BLOCK + threadIdx.x / lowbit::WARP;
    if (q >= (long long)n * oh * ow) return;
    const int first_channel = blockIdx.y * lowbit::WARP;
    const int oc = first_channel + lane;
    const bool live = oc < o_channels;
    const int ox = (int)(q % ow), oy = (int)(q / ow % oh);
    const long long image = q / ((long long)oh * ow);
    const int words = packed::bitplane_words(c);
    int d = 0;
    if (live) {
        for (int ky = 0; ky < kh; ky++) {
            const int iy = oy * sh - ph + ky * dh;
            if (iy < 0 || iy >= h) continue;
            for (int kx = 0; kx < kw; kx++) {
                const int ix = ox * sw - pw + kx * dw;
                if (ix < 0 || ix >= wd) continue;
                const packed::word_t* a = x + packed::bitplane_index((image * h + iy) * wd + ix, 0, 0, 1, c);
                const packed::word_t* b = w + packed::bitplane_index(((long long)oc * kh + ky) * kw + kx, 0, 0, 1, c);
                int disagree = 0;
                for (int k = 0; k < words; k++) disagree += __popcll(a[k] ^ b[k]);
                d += c - 2 * disagree;
            }
        }
    }
    const long long out_index = ((image * o_channels + oc) * oh + oy) * ow + ox;
    if (mode == SUMS) {
        if (live) d_out[out_index] = d;
        return;
    }
    if (mode == AFFINE) {
        if (live) y_out[out_index] = lowbit::affine(scale[oc], __int2float_rn(d), shift[oc]);
        return;
    }
    const int bit = live && (flip[oc] ? d <= threshold[oc] : d >= threshold[oc]) ? 1 : 0;
    lowbit::write_code_halves(y_packed, q, first_channel, o_channels, 1, bit);
}
