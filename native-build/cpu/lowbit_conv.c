// The packed path's convolution on x86 CPUs: codes times weight codes with the 8-bit integer multiply-add
// instructions the Java Vector API cannot emit (VNNI vpdpbusd on AVX-512, vpmaddwd on AVX2). The Java
// kernel (dev.silhouette.backend.cpu.LowBitConv) is the specification: same codes (Quantizers.code:
// clamp(rint(x / step) + zeroPoint, 0, qmax), NaN -> 0), same int32 accumulators, same double epilogue;
// LowBitConvTest compares them bit for bit. Built by native-build/build-cpu-kernels.sh, called through
// java.lang.foreign (NativeLowBitConv).
//
// Accumulators, per output pixel and region r: A_r = sum over taps in region r of w * (q - z). Codes are
// stored as u8 q with the padding border holding the zero point z, so the raw sum over every tap is
// sum w q and A = raw - z * sum_taps w (z != 0 only with one region). y = bias + sum_r step_r scale_(o,r) A_r.
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    D_N, D_C, D_H, D_W, D_REGIONS, D_ZERO, D_GROUPS, D_CG, D_OG, D_KH, D_KW, D_SH, D_SW, D_PH, D_PW, D_DH, D_DW,
    D_OH, D_OW, D_WSETS, D_OGP, D_CPG, D_N0, D_N1, D_OY0, D_OY1, D_CLASS, D_COUNT
};

// 1: AVX-512 VNNI (weights [set][g][tap][cg/4][ogp][4] int8, ogp a multiple of 16)
// 2: AVX2 (weights [set][g][tap][cg/2][ogp][2] int16, ogp a multiple of 8); 0: neither (Java runs).
int silhouette_cpu_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni")) return 1;
    if (__builtin_cpu_supports("avx2")) return 2;
    return 0;
}

int silhouette_dims_count(void) { return D_COUNT; }

// One row of one channel: codes of W values, each pixel with its own step and top code. Written for the
// auto-vectoriser (division, round-half-even, clamp in lanes); target_clones builds AVX-512, AVX2 and
// baseline copies. NaN gives code 0, as Java's (int) NaN does after the clamp.
__attribute__((target_clones("avx512f", "avx2", "default")))
static void quantize_row(const float *restrict src, const float *restrict stepOf, const float *restrict qmaxOf, float zero,
                         int32_t *restrict dst, int W) {
    for (int i = 0; i < W; i++) {
        float v = src[i] / stepOf[i];
        float r = __builtin_roundevenf(v) + zero;
        r = r < 0.f ? 0.f : r;
        r = r > qmaxOf[i] ? qmaxOf[i] : r;
        dst[i] = v == v ? (int32_t) r : 0;
    }
}

// Codes of images [n0, n1) as [n][PH][PW][groups * cpg] u8 (cpg: channels per group padded), border = zero point.
// classes (optional, N x C x H x W): a DRQ sensitivity class per activation; with d[D_CLASS] >= 0 only the
// activations of that class keep their codes, the others are 0 (the layer's other convolution reads them).
static int quantize(const int32_t *d, const float *x, const float *map, const uint8_t *classes, const int32_t *bits, const float *steps,
                    uint8_t *codes, uint8_t *region) {
    int C = d[D_C], H = d[D_H], W = d[D_W], ph = d[D_PH], pw = d[D_PW], PH = H + 2 * ph, PW = W + 2 * pw;
    int G = d[D_GROUPS], cg = d[D_CG], cpg = d[D_CPG], stride = G * cpg, zero = d[D_ZERO];
    int images = d[D_N1] - d[D_N0];
    // Padded channels 0 (their weights are 0 too); the border holds the zero point (real 0); the interior is overwritten below.
    memset(codes, 0, (size_t) images * PH * PW * stride);
    if (zero != 0) {
        for (size_t i = 0; i < (size_t) images * PH * PW; i++) {
            int y = (int) (i / PW % PH), xx = (int) (i % PW);
            if (y >= ph && y < ph + H && xx >= pw && xx < pw + W) continue;
            for (int g = 0; g < G; g++) memset(codes + i * stride + g * cpg, zero, cg);
        }
    }
    memset(region, 0, (size_t) images * PH * PW);
    if (W > 8192) return -1;
    float stepOf[8192], qmaxOf[8192];
    int32_t row[8192];
    // Only the input rows the call's output rows [oy0, oy1) read: a batch split by rows quantizes each row once.
    int ylo = d[D_OY0] * d[D_SH] - ph, yhi = (d[D_OY1] - 1) * d[D_SH] + (d[D_KH] - 1) * d[D_DH] - ph + 1;
    if (ylo < 0) ylo = 0;
    if (yhi > H) yhi = H;
    for (int n = 0; n < images; n++) {
        const float *img = x + (size_t) (d[D_N0] + n) * C * H * W;
        for (int y = ylo; y < yhi; y++) {
            size_t first = ((size_t) n * PH + y + ph) * PW + pw;
            for (int xx = 0; xx < W; xx++) {
                int r = map ? (int) map[((size_t) (d[D_N0] + n) * H + y) * W + xx] : 0;
                region[first + xx] = (uint8_t) r;
                stepOf[xx] = steps[r];
                qmaxOf[xx] = (float) ((1 << bits[r]) - 1);
            }
            for (int c = 0; c < C; c++) {
                quantize_row(img + ((size_t) c * H + y) * W, stepOf, qmaxOf, (float) zero, row, W);
                if (classes && d[D_CLASS] >= 0) {
                    const uint8_t *cls = classes + (((size_t) (d[D_N0] + n) * C + c) * H + y) * W;
                    for (int xx = 0; xx < W; xx++) if (cls[xx] != d[D_CLASS]) row[xx] = 0;
                }
                uint8_t *to = codes + first * stride + (c / cg) * cpg + c % cg;
                for (int xx = 0; xx < W; xx++) to[(size_t) xx * stride] = (uint8_t) row[xx];
            }
        }
    }
    return 0;
}

#define MAX_REGIONS 8

// What the pixel loops need to finish a pixel: y = bias + sum_r step_r (scale_(o,r) A_r), in double as the Java
// epilogue (same order of operations, no contraction), rounded once to float, written NCHW from image n0.
typedef struct {
    const float *steps, *scales, *bias;
    const int32_t *wsum;
    int32_t *acc;   // optional: [n][oc][oy][ox][r] (tests compare them with the Java kernel's)
    float *out;     // optional
} Epilogue;

static void finish_lanes(const int32_t *d, const Epilogue *e, int n, int g, int oy, int ox, int ob, int lanes, const int32_t *a /* [r][lanes] */) {
    int og = d[D_OG], outC = d[D_GROUPS] * og, OH = d[D_OH], OW = d[D_OW], regions = d[D_REGIONS], zero = d[D_ZERO];
    for (int o = ob; o < ob + lanes && o < og; o++) {
        int oc = g * og + o;
        double y = e->bias ? e->bias[oc] : 0;
        for (int r = 0; r < regions; r++) {
            int32_t A = a[r * lanes + o - ob] - (zero != 0 ? zero * e->wsum[oc] : 0);
            int set = d[D_WSETS] == 1 ? 0 : r;
            if (e->acc) e->acc[((((size_t) n * outC + oc) * OH + oy) * OW + ox) * regions + r] = A;
            y += (double) e->steps[r] * ((double) e->scales[set * outC + oc] * A);
        }
        if (e->out) e->out[(((size_t) n * outC + oc) * OH + oy) * OW + ox] = (float) y;
    }
}

// The same epilogue in lanes: 16 outputs as two halves of 8 doubles, the products and sums in the scalar
// order (bias, then region by region step_r * (scale * A)), so the float results are identical.
__attribute__((target("avx512f,avx512dq")))
static void finish_16(const int32_t *d, const Epilogue *e, int n, int g, int oy, int ox, int ob, const __m512i *a) {
    int og = d[D_OG], outC = d[D_GROUPS] * og, OH = d[D_OH], OW = d[D_OW], regions = d[D_REGIONS], zero = d[D_ZERO];
    if (e->acc || ob + 16 > og) {
        int32_t lanes[MAX_REGIONS * 16];
        for (int r = 0; r < regions; r++) _mm512_storeu_si512(lanes + 16 * r, a[r]);
        finish_lanes(d, e, n, g, oy, ox, ob, 16, lanes);
        return;
    }
    int oc0 = g * og + ob;
    __m512d y[2];
    for (int h = 0; h < 2; h++) y[h] = e->bias ? _mm512_cvtps_pd(_mm256_loadu_ps(e->bias + oc0 + 8 * h)) : _mm512_setzero_pd();
    for (int r = 0; r < regions; r++) {
        int set = d[D_WSETS] == 1 ? 0 : r;
        __m512i A = a[r];
        if (zero != 0) A = _mm512_sub_epi32(A, _mm512_mullo_epi32(_mm512_set1_epi32(zero), _mm512_loadu_si512(e->wsum + oc0)));
        __m512d step = _mm512_set1_pd((double) e->steps[r]);
        for (int h = 0; h < 2; h++) {
            __m256i half = h == 0 ? _mm512_castsi512_si256(A) : _mm512_extracti64x4_epi64(A, 1);
            __m512d scale = _mm512_cvtps_pd(_mm256_loadu_ps(e->scales + set * outC + oc0 + 8 * h));
            y[h] = _mm512_add_pd(y[h], _mm512_mul_pd(step, _mm512_mul_pd(scale, _mm512_cvtepi32_pd(half))));
        }
    }
    if (!e->out) return;
    size_t plane = (size_t) OH * OW, at = (((size_t) n * outC + oc0) * OH + oy) * OW + ox;
    __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int) plane));
    __m512 out = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(y[0])), _mm512_cvtpd_ps(y[1]), 1);
    _mm512_i32scatter_ps(e->out + at, index, out, 4);
}

__attribute__((target("avx2")))
static void finish_8(const int32_t *d, const Epilogue *e, int n, int g, int oy, int ox, int ob, const __m256i *a) {
    int32_t lanes[MAX_REGIONS * 8];
    for (int r = 0; r < d[D_REGIONS]; r++) _mm256_storeu_si256((__m256i *) (lanes + 8 * r), a[r]);
    finish_lanes(d, e, n, g, oy, ox, ob, 8, lanes);
}

__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void pixels_vnni(const int32_t *d, const Epilogue *e, const uint8_t *codes, const uint8_t *region, const int8_t *weights) {
    int PH = d[D_H] + 2 * d[D_PH], PW = d[D_W] + 2 * d[D_PW], G = d[D_GROUPS], cpg = d[D_CPG], stride = G * cpg;
    int kh = d[D_KH], kw = d[D_KW], taps = kh * kw, ogp = d[D_OGP], regions = d[D_REGIONS], wsets = d[D_WSETS];
    int OW = d[D_OW], c4 = cpg / 4;
    size_t setSize = (size_t) G * taps * c4 * ogp * 4;
    // Output-channel blocks outermost: one block's weights (taps x channels x 16 lanes) stay in cache
    // while every pixel of the images reuses them.
    for (int g = 0; g < G; g++)
        for (int ob = 0; ob < ogp; ob += 16)
            for (int n = 0; n < d[D_N1] - d[D_N0]; n++)
                for (int oy = d[D_OY0]; oy < d[D_OY1]; oy++) {
                    int ox = 0;
                    // Four pixels of a row at a time with shared weights: each weight vector loaded once feeds
                    // four multiply-adds (the loads, not the dpbusd, bound the one-pixel loop).
                    if (wsets == 1) {
                        for (; ox + 4 <= OW; ox += 4) {
                            __m512i a[4][MAX_REGIONS];
                            for (int j = 0; j < 4; j++)
                                for (int r = 0; r < regions; r++) a[j][r] = _mm512_setzero_si512();
                            for (int t = 0; t < taps; t++) {
                                int iy = oy * d[D_SH] + (t / kw) * d[D_DH];
                                const uint8_t *q[4];
                                int r[4];
                                for (int j = 0; j < 4; j++) {
                                    size_t p = ((size_t) n * PH + iy) * PW + (ox + j) * d[D_SW] + (t % kw) * d[D_DW];
                                    r[j] = region[p];
                                    q[j] = codes + p * stride + g * cpg;
                                }
                                const int8_t *w = weights + ((size_t) (g * taps + t) * c4) * ogp * 4 + ob * 4;
                                __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
                                for (int k = 0; k < c4; k++) {
                                    __m512i wv = _mm512_loadu_si512(w + (size_t) k * ogp * 4);
                                    int32_t f0, f1, f2, f3;
                                    memcpy(&f0, q[0] + 4 * k, 4);
                                    memcpy(&f1, q[1] + 4 * k, 4);
                                    memcpy(&f2, q[2] + 4 * k, 4);
                                    memcpy(&f3, q[3] + 4 * k, 4);
                                    s0 = _mm512_dpbusd_epi32(s0, _mm512_set1_epi32(f0), wv);
                                    s1 = _mm512_dpbusd_epi32(s1, _mm512_set1_epi32(f1), wv);
                                    s2 = _mm512_dpbusd_epi32(s2, _mm512_set1_epi32(f2), wv);
                                    s3 = _mm512_dpbusd_epi32(s3, _mm512_set1_epi32(f3), wv);
                                }
                                a[0][r[0]] = _mm512_add_epi32(a[0][r[0]], s0);
                                a[1][r[1]] = _mm512_add_epi32(a[1][r[1]], s1);
                                a[2][r[2]] = _mm512_add_epi32(a[2][r[2]], s2);
                                a[3][r[3]] = _mm512_add_epi32(a[3][r[3]], s3);
                            }
                            for (int j = 0; j < 4; j++) finish_16(d, e, n, g, oy, ox + j, ob, a[j]);
                        }
                    }
                    for (; ox < OW; ox++) {
                        __m512i a[MAX_REGIONS];
                        for (int r = 0; r < regions; r++) a[r] = _mm512_setzero_si512();
                        for (int t = 0; t < taps; t++) {
                            int iy = oy * d[D_SH] + (t / kw) * d[D_DH], ix = ox * d[D_SW] + (t % kw) * d[D_DW];
                            size_t p = ((size_t) n * PH + iy) * PW + ix;
                            int r = region[p];
                            const uint8_t *q = codes + p * stride + g * cpg;
                            const int8_t *w = weights + (wsets == 1 ? 0 : r * setSize) + ((size_t) (g * taps + t) * c4) * ogp * 4 + ob * 4;
                            __m512i s = _mm512_setzero_si512();
                            for (int k = 0; k < c4; k++) {
                                int32_t four;
                                memcpy(&four, q + 4 * k, 4);
                                s = _mm512_dpbusd_epi32(s, _mm512_set1_epi32(four), _mm512_loadu_si512(w + (size_t) k * ogp * 4));
                            }
                            a[r] = _mm512_add_epi32(a[r], s);
                        }
                        finish_16(d, e, n, g, oy, ox, ob, a);
                    }
                }
}

__attribute__((target("avx2")))
static void pixels_avx2(const int32_t *d, const Epilogue *e, const uint8_t *codes, const uint8_t *region, const int16_t *weights) {
    int PH = d[D_H] + 2 * d[D_PH], PW = d[D_W] + 2 * d[D_PW], G = d[D_GROUPS], cpg = d[D_CPG], stride = G * cpg;
    int kh = d[D_KH], kw = d[D_KW], taps = kh * kw, ogp = d[D_OGP], regions = d[D_REGIONS], wsets = d[D_WSETS];
    int OW = d[D_OW], c2 = cpg / 2;
    size_t setSize = (size_t) G * taps * c2 * ogp * 2;
    // Output-channel blocks outermost: one block's weights (taps x channels x 8 lanes) stay in cache
    // while every pixel of the images reuses them.
    for (int g = 0; g < G; g++)
        for (int ob = 0; ob < ogp; ob += 8)
            for (int n = 0; n < d[D_N1] - d[D_N0]; n++)
                for (int oy = d[D_OY0]; oy < d[D_OY1]; oy++)
                    for (int ox = 0; ox < OW; ox++) {
                        __m256i a[MAX_REGIONS];
                        for (int r = 0; r < regions; r++) a[r] = _mm256_setzero_si256();
                        for (int t = 0; t < taps; t++) {
                            int iy = oy * d[D_SH] + (t / kw) * d[D_DH], ix = ox * d[D_SW] + (t % kw) * d[D_DW];
                            size_t p = ((size_t) n * PH + iy) * PW + ix;
                            int r = region[p];
                            const uint8_t *q = codes + p * stride + g * cpg;
                            const int16_t *w = weights + (wsets == 1 ? 0 : r * setSize) + ((size_t) (g * taps + t) * c2) * ogp * 2 + ob * 2;
                            __m256i s = _mm256_setzero_si256();
                            for (int k = 0; k < c2; k++) {
                                int32_t two = (int32_t) q[2 * k] | ((int32_t) q[2 * k + 1] << 16);
                                s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_set1_epi32(two), _mm256_loadu_si256((const __m256i *) (w + (size_t) k * ogp * 2))));
                            }
                            a[r] = _mm256_add_epi32(a[r], s);
                        }
                        finish_8(d, e, n, g, oy, ox, ob, a);
                    }
}

// Images [n0, n1), output rows [oy0, oy1): accumulators into acc (indexed from image n0, every row of the
// images, [n][oc][oy][ox][r], zero-point corrected), and, when out is not null, the epilogue into out
// (NCHW from image n0). weights are laid out for isa; wsum[set][oc] is the sum of a set's weight codes.
// Returns 0, or -1 when scratch memory cannot be had, -2 for an unknown isa or too many regions.
int silhouette_lowbit_conv(int isa, const int32_t *d, const float *x, const float *map, const uint8_t *classes, const int32_t *bits, const float *steps,
                           const void *weights, const int32_t *wsum, const float *scales, const float *bias, int32_t *acc, float *out) {
    if ((isa != 1 && isa != 2) || d[D_REGIONS] > MAX_REGIONS) return -2;
    int images = d[D_N1] - d[D_N0];
    size_t pixels = (size_t) images * (d[D_H] + 2 * d[D_PH]) * (d[D_W] + 2 * d[D_PW]);
    // Scratch owned by the calling thread (the Java pool's workers), grown as needed and kept: a fresh
    // allocation per call costs page faults on every layer.
    static __thread uint8_t *scratch;
    static __thread size_t capacity;
    size_t need = pixels * d[D_GROUPS] * d[D_CPG] + pixels;
    if (need > capacity) {
        free(scratch);
        scratch = malloc(need);
        capacity = scratch ? need : 0;
        if (!scratch) return -1;
    }
    uint8_t *codes = scratch, *region = scratch + pixels * d[D_GROUPS] * d[D_CPG];
    if (quantize(d, x, map, classes, bits, steps, codes, region) != 0) return -1;
    Epilogue e = {steps, scales, bias, wsum, acc, out};
    if (isa == 1) pixels_vnni(d, &e, codes, region, weights);
    else pixels_avx2(d, &e, codes, region, weights);
    return 0;
}
