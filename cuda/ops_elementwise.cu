// Elementwise kernels: relu, clip, sigmoid, add, per-channel affine (BatchNorm) and per-channel bias
// with optional ReLU. The specification is dev.silhouette.backend.cpu.CpuOps; every formula is spelled
// with round-to-nearest intrinsics (__fmul_rn, __fadd_rn, __dadd_rn, ...) because nvcc would otherwise
// contract a multiply and an add into one FMA, which rounds once where Java rounds twice. Results are
// bit-identical to the CPU (sigmoid up to the last double ulp of exp, see below).
//
// No __restrict__ here: the backend runs some of these in place (x == y), and each thread reads its
// element before writing it, so aliasing is harmless. Loops are grid-stride with 64-bit indices, so a
// grid capped by the host covers tensors of any size.
#include "silhouette_common.cuh"

// Java's Math.min(float, float): a NaN argument wins, and -0 is smaller than +0 (plain fminf differs on
// both). Clip's NaN and signed-zero outputs therefore match the CPU's.
__device__ __forceinline__ float ew_java_min(float a, float b) {
    if (a != a) return a;
    if (a == 0.0f && b == 0.0f && __float_as_uint(b) == 0x80000000u) return b;
    return a <= b ? a : b;
}

// The channel of flat element i of an [n, channels, plane] tensor. 64-bit division costs several times a
// 32-bit one, so tensors whose indices fit 32 bits (nearly all) take the narrow path; the branch is
// uniform across the grid.
__device__ __forceinline__ unsigned ew_channel(size_t i, unsigned plane, unsigned channels, bool narrow) {
    return narrow ? ((unsigned)i / plane) % channels : (unsigned)((i / plane) % channels);
}

// y = x > 0 ? x : 0, as CpuOps.relu: NaN and -0 both become +0.
extern "C" __global__ void silhouette_relu(const float* x, float* y, size_t count) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        y[i] = v > 0.0f ? v : 0.0f;
    }
}

// y = x < lo ? lo : Math.min(x, hi), as CpuOps.clip (NaN passes through).
extern "C" __global__ void silhouette_clip(const float* x, float* y, size_t count, float lo, float hi) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        y[i] = v < lo ? lo : ew_java_min(v, hi);
    }
}

// y = (float) (1 / (1 + exp(-x))) in double, as CpuOps.sigmoid. CUDA's exp and Java's Math.exp are both
// within 1 ulp of the exact value, so the doubles may differ in the last bit and the floats, rarely, by
// one ulp (only when the double lies that close to a float rounding boundary).
extern "C" __global__ void silhouette_sigmoid(const float* x, float* y, size_t count) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x) {
        double e = exp(-(double)x[i]);
        y[i] = __double2float_rn(__ddiv_rn(1.0, __dadd_rn(1.0, e)));
    }
}

// y = a + b, as CpuOps.add.
extern "C" __global__ void silhouette_add(const float* a, const float* b, float* y, size_t count) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x) {
        y[i] = __fadd_rn(a[i], b[i]);
    }
}

// BatchNorm at inference as CpuOps.batchNorm applies it: y = x * scale[c] + shift[c], rounded after the
// multiply and after the add. The host computes scale and shift exactly as the CPU does, so the output
// is bit-identical. x is [count / (channels * plane), channels, plane].
extern "C" __global__ void silhouette_channel_affine(const float* x, float* y, const float* scale, const float* shift,
                                                     size_t count, int channels, int plane) {
    bool narrow = count <= 0xffffffffull;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x) {
        unsigned c = ew_channel(i, (unsigned)plane, (unsigned)channels, narrow);
        y[i] = __fadd_rn(__fmul_rn(x[i], scale[c]), shift[c]);
    }
}

// y = x + bias[c], then ReLU when relu != 0: the bias of a convolution or linear layer computed by a
// library without one, fused with the activation that usually follows (CpuOps.add then CpuOps.relu).
extern "C" __global__ void silhouette_bias_add(const float* x, const float* bias, float* y, size_t count,
                                               int channels, int plane, int relu) {
    bool narrow = count <= 0xffffffffull;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x) {
        unsigned c = ew_channel(i, (unsigned)plane, (unsigned)channels, narrow);
        float v = __fadd_rn(x[i], bias[c]);
        y[i] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}
