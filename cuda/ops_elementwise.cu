// Elementwise kernels: relu, clip, sigmoid, add, per-channel affine (BatchNorm), per-channel bias
// with optional ReLU, and the ops of imported models: broadcast arithmetic, hard sigmoid, hard swish. The specification is dev.silhouette.backend.cpu.CpuOps; every formula is spelled
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

// Java's Math.max(float, float), argument order included: a NaN first argument wins, then a NaN second
// one (a >= NaN is false), and max(+0, -0) is the first argument (+0 >= -0).
__device__ __forceinline__ float ew_java_max(float a, float b) {
    if (a != a) return a;
    if (a == 0.0f && b == 0.0f && __float_as_uint(a) == 0x80000000u) return b;
    return a >= b ? a : b;
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

// The operands of a broadcast op, NumPy style (dev.silhouette.backend.cpu.CpuOps.elementwise): output
// dims and each operand's element strides, right-aligned to rank, 0 along the axes where the operand has
// size 1 or lacks the axis. Passed by value; BuiltinKernels.BroadcastShape packs the same 25 ints.
#define SILHOUETTE_MAX_BROADCAST_RANK 8
struct BroadcastShape {
    int rank;
    int dims[SILHOUETTE_MAX_BROADCAST_RANK];
    int strideA[SILHOUETTE_MAX_BROADCAST_RANK];
    int strideB[SILHOUETTE_MAX_BROADCAST_RANK];
};
static_assert(sizeof(BroadcastShape) == 25 * sizeof(int), "BroadcastShape must match the Java packing");

// One IEEE float32 operation, as Op.Arithmetic.apply; op is the enum's ordinal (ADD, SUB, MUL, DIV).
__device__ __forceinline__ float ew_arithmetic(int op, float a, float b) {
    switch (op) {
        case 0: return __fadd_rn(a, b);
        case 1: return __fsub_rn(a, b);
        case 2: return __fmul_rn(a, b);
        default: return __fdiv_rn(a, b);
    }
}

// y = a (op) b with broadcasting over count = prod(dims) outputs; the host keeps every index below 2^31.
extern "C" __global__ void silhouette_broadcast_arithmetic(const float* a, const float* b, float* y, size_t count, int op,
                                                           BroadcastShape shape) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x) {
        unsigned rest = (unsigned)i;
        int ia = 0, ib = 0;
        for (int d = shape.rank - 1; d >= 0; d--) {
            unsigned index = rest % (unsigned)shape.dims[d];
            rest /= (unsigned)shape.dims[d];
            ia += (int)index * shape.strideA[d];
            ib += (int)index * shape.strideB[d];
        }
        y[i] = ew_arithmetic(op, a[ia], b[ib]);
    }
}

// y = Math.max(0, Math.min(1, alpha * x + beta)) in float32, as CpuOps.hardSigmoid.
extern "C" __global__ void silhouette_hard_sigmoid(const float* x, float* y, size_t count, float alpha, float beta) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x) {
        float v = __fadd_rn(__fmul_rn(alpha, x[i]), beta);
        y[i] = ew_java_max(0.0f, ew_java_min(1.0f, v));
    }
}

// y = x * Math.max(0, Math.min(1, x * (1f / 6f) + 0.5f)), as CpuOps.hardSwish; 0x3e2aaaab is the float
// nearest 1/6, the value Java's constant 1f / 6f folds to.
extern "C" __global__ void silhouette_hard_swish(const float* x, float* y, size_t count) {
    const float sixth = __uint_as_float(0x3e2aaaabu);
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        float gate = ew_java_max(0.0f, ew_java_min(1.0f, __fadd_rn(__fmul_rn(v, sixth), 0.5f)));
        y[i] = __fmul_rn(v, gate);
    }
}
