// Resizing and copying kernels: nearest and bilinear interpolation of H and W, the strided chunk
// copy that concatenation along any axis reduces to, and constant padding of H and W. The specification is CpuOps.interpolate and
// CpuOps.concat. Interpolation evaluates CpuOps's double formulas with explicit round-to-nearest
// intrinsics (no FMA contraction), so source indices and blend weights, and hence outputs, are
// bit-identical.
//
// Planes go on grid y and the pixels of a plane on grid x, both grid-stride; the host keeps counts below
// 2^31 so the unsigned counters cannot wrap.
#include "silhouette_common.cuh"

// Nearest (PyTorch's "nearest", CpuOps.interpolate): source index min(floor(dst * (in / out)), in - 1)
// with the scale in double.
extern "C" __global__ void silhouette_interpolate_nearest(const float* __restrict__ x, float* __restrict__ y, int planes,
                                                          int h, int w, int oh, int ow) {
    double sy = __ddiv_rn((double)h, (double)oh), sx = __ddiv_rn((double)w, (double)ow);
    unsigned pixels = (unsigned)oh * (unsigned)ow;
    for (unsigned p = blockIdx.y; p < (unsigned)planes; p += gridDim.y) {
        const float* src = x + (size_t)p * h * w;
        float* dst = y + (size_t)p * pixels;
        for (unsigned o = blockIdx.x * blockDim.x + threadIdx.x; o < pixels; o += gridDim.x * blockDim.x) {
            int oy = (int)(o / (unsigned)ow), ox = (int)(o % (unsigned)ow);
            int iy = min((int)floor(__dmul_rn((double)oy, sy)), h - 1);
            int ix = min((int)floor(__dmul_rn((double)ox, sx)), w - 1);
            dst[o] = src[(size_t)iy * w + ix];
        }
    }
}

// The clamped source coordinate of bilinear align_corners=false: Math.max(0, (dst + 0.5) * scale - 0.5),
// where Java's max returns +0 for a -0 product (0.0 >= -0.0).
__device__ __forceinline__ double resize_source_coordinate(int dst, double scale) {
    double f = __dsub_rn(__dmul_rn(__dadd_rn((double)dst, 0.5), scale), 0.5);
    return 0.0 >= f ? 0.0 : f;
}

// Bilinear, align_corners=false, as CpuOps.interpolate: blend of the two neighbours along x in double,
// then along y, rounded to float once.
extern "C" __global__ void silhouette_interpolate_bilinear(const float* __restrict__ x, float* __restrict__ y, int planes,
                                                           int h, int w, int oh, int ow) {
    double sy = __ddiv_rn((double)h, (double)oh), sx = __ddiv_rn((double)w, (double)ow);
    unsigned pixels = (unsigned)oh * (unsigned)ow;
    for (unsigned p = blockIdx.y; p < (unsigned)planes; p += gridDim.y) {
        const float* src = x + (size_t)p * h * w;
        float* dst = y + (size_t)p * pixels;
        for (unsigned o = blockIdx.x * blockDim.x + threadIdx.x; o < pixels; o += gridDim.x * blockDim.x) {
            int oy = (int)(o / (unsigned)ow), ox = (int)(o % (unsigned)ow);
            double fy = resize_source_coordinate(oy, sy), fx = resize_source_coordinate(ox, sx);
            int y0 = min((int)fy, h - 1), x0 = min((int)fx, w - 1);
            int y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1);
            double ly = __dsub_rn(fy, (double)y0), lx = __dsub_rn(fx, (double)x0);
            double kx = __dsub_rn(1.0, lx), ky = __dsub_rn(1.0, ly);
            const float* r0 = src + (size_t)y0 * w;
            const float* r1 = src + (size_t)y1 * w;
            double top = __dadd_rn(__dmul_rn((double)r0[x0], kx), __dmul_rn((double)r0[x1], lx));
            double bottom = __dadd_rn(__dmul_rn((double)r1[x0], kx), __dmul_rn((double)r1[x1], lx));
            dst[o] = __double2float_rn(__dadd_rn(__dmul_rn(top, ky), __dmul_rn(bottom, ly)));
        }
    }
}

// dst[o * dst_stride + dst_offset + j] = src[o * src_stride + j] for o < outer, j < chunk: one input of a
// concatenation (outer = product of the dims before the axis, chunk = that input's axis * inner,
// dst_stride = the output's axis * inner). Flat over outer * chunk so that short chunks (concatenating
// features of [batch, f] tensors) still fill whole warps; 32-bit division whenever the total allows.
extern "C" __global__ void silhouette_copy_strided(const float* __restrict__ src, float* __restrict__ dst, int outer, int chunk,
                                                   int src_stride, int dst_stride, int dst_offset) {
    size_t total = (size_t)outer * chunk;
    bool narrow = total <= 0xffffffffull;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t o, j;
        if (narrow) {
            o = (unsigned)i / (unsigned)chunk;
            j = (unsigned)i % (unsigned)chunk;
        } else {
            o = i / (size_t)chunk;
            j = i % (size_t)chunk;
        }
        dst[o * dst_stride + dst_offset + j] = src[o * src_stride + j];
    }
}

// Constant padding of each h x w plane into oh x ow = (h + top + bottom) x (w + left + right), as
// CpuOps.pad: the input lands at (top, left), everything else is value.
extern "C" __global__ void silhouette_pad(const float* __restrict__ x, float* __restrict__ y, int planes, int h, int w,
                                          int top, int left, int oh, int ow, float value) {
    unsigned pixels = (unsigned)oh * (unsigned)ow;
    for (unsigned p = blockIdx.y; p < (unsigned)planes; p += gridDim.y) {
        const float* src = x + (size_t)p * h * w;
        float* dst = y + (size_t)p * pixels;
        for (unsigned o = blockIdx.x * blockDim.x + threadIdx.x; o < pixels; o += gridDim.x * blockDim.x) {
            int iy = (int)(o / (unsigned)ow) - top, ix = (int)(o % (unsigned)ow) - left;
            dst[o] = iy >= 0 && iy < h && ix >= 0 && ix < w ? src[(size_t)iy * w + ix] : value;
        }
    }
}
