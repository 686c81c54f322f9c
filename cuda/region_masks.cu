// Region masks of a layer: the silhouette brought to the layer's size and the per-pixel region index.
// The specification is docs/REGION_QUANTIZATION.md section 3, dev.silhouette.backend.cpu.RegionOps.regionMap
// (resizing as CpuOps.interpolate, the rank cuts and the region rule of SilhouetteThresholds). Cut keys
// themselves come from silhouette_cut_keys (silhouette_threshold.cu); these kernels supply what comes
// before (resize, for RESIZE_THEN_THRESHOLD) and after (the fused mask resize, for THRESHOLD_THEN_RESIZE).
#include "packed_layout.cuh"
#include "silhouette_common.cuh"

namespace region_masks {

constexpr int NEAREST = 0;

// Where output row (or column) d of out samples an input of in rows: CpuOps.interpolate's arithmetic
// in double with every step rounded as Java rounds it.
struct Taps {
    int i0, i1;
    double frac;
};

__device__ __forceinline__ int nearest_tap(int d, int in, int out) {
    const double s = __ddiv_rn((double)in, (double)out);
    return min((int)floor(__dmul_rn((double)d, s)), in - 1);
}

__device__ __forceinline__ Taps bilinear_taps(int d, int in, int out) {
    const double s = __ddiv_rn((double)in, (double)out);
    const double raw = __dsub_rn(__dmul_rn(__dadd_rn((double)d, 0.5), s), 0.5);
    const double f = 0.0 >= raw ? 0.0 : raw;  // Math.max(0, raw): +0 for a -0 product
    Taps t;
    t.i0 = min((int)f, in - 1);
    t.i1 = min(t.i0 + 1, in - 1);
    t.frac = __dsub_rn(f, (double)t.i0);
    return t;
}

// top = a (1 - lx) + b lx, bottom likewise, value = (float) (top (1 - ly) + bottom ly), as Java does it.
__device__ __forceinline__ float blend(float v00, float v01, float v10, float v11, double ly, double lx) {
    const double top = __dadd_rn(__dmul_rn((double)v00, __dsub_rn(1.0, lx)), __dmul_rn((double)v01, lx));
    const double bottom = __dadd_rn(__dmul_rn((double)v10, __dsub_rn(1.0, lx)), __dmul_rn((double)v11, lx));
    return __double2float_rn(__dadd_rn(__dmul_rn(top, __dsub_rn(1.0, ly)), __dmul_rn(bottom, ly)));
}

// The region rule of SilhouetteThresholds.regionMap: cut keys at or below the key of pixel `index` (value v).
__device__ __forceinline__ int region_of(float v, int index, const unsigned long long* __restrict__ cuts, int count) {
    const unsigned long long key = pixel_key(v, (uint32_t)index);
    int r = 0;
    for (int j = 0; j < count; j++) r += key >= cuts[j] ? 1 : 0;
    return r;
}

}  // namespace region_masks

// THRESHOLD_THEN_RESIZE in one pass: region[b][oy][ox] for a silhouette batch x h x w split at its
// own size (count cut keys per image, from silhouette_cut_keys) and each region's 0/1 mask resized
// to oh x ow; the pixel takes the region of the largest resized mask, the higher region on ties. The
// source region map and the regions' resized masks are never written: each output pixel finds the regions of its
// (up to four) source pixels and blends their indicator values per region on the fly. Nearest resizing
// reduces to copying the source pixel's region. Grid-stride over batch * oh * ow.
extern "C" __global__ void region_map_threshold_then_resize(const float* __restrict__ silhouette, int batch, int h, int w,
                                                            const unsigned long long* __restrict__ cut_keys, int count, int oh, int ow,
                                                            int mode, unsigned char* __restrict__ region) {
    using namespace region_masks;
    const long long total = (long long)batch * oh * ow;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int ox = (int)(i % ow), oy = (int)(i / ow % oh);
        const long long b = i / ((long long)oh * ow);
        const float* s = silhouette + b * h * w;
        const unsigned long long* t = cut_keys + b * count;
        if (mode == NEAREST) {
            const int source = nearest_tap(oy, h, oh) * w + nearest_tap(ox, w, ow);
            region[i] = (unsigned char)region_of(s[source], source, t, count);
            continue;
        }
        const Taps ty = bilinear_taps(oy, h, oh), tx = bilinear_taps(ox, w, ow);
        const int p00 = ty.i0 * w + tx.i0, p01 = ty.i0 * w + tx.i1, p10 = ty.i1 * w + tx.i0, p11 = ty.i1 * w + tx.i1;
        const int r00 = region_of(s[p00], p00, t, count), r01 = region_of(s[p01], p01, t, count);
        const int r10 = region_of(s[p10], p10, t, count), r11 = region_of(s[p11], p11, t, count);
        // Only the regions of the four taps can have a non-zero mask; the rest blend to exactly 0 and, with
        // ties going up, win only when every mask is 0, which cannot happen (the weights sum to 1).
        int best = 0;
        float best_value = -1.0f;
        for (int r = 0; r <= count; r++) {
            if (r != r00 && r != r01 && r != r10 && r != r11) continue;
            const float m = blend(r00 == r ? 1.0f : 0.0f, r01 == r ? 1.0f : 0.0f, r10 == r ? 1.0f : 0.0f, r11 == r ? 1.0f : 0.0f, ty.frac, tx.frac);
            if (m >= best_value) {
                best = r;
                best_value = m;
            }
        }
        region[i] = (unsigned char)best;
    }
}
