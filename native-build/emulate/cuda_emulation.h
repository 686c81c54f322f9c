// Just enough of CUDA, on the host, to run the low-bit kernels of cuda/ on the CPU for tests: every
// thread of a launch runs as plain C++ (each warp's 32 lanes as 32 std::threads, so __ballot_sync
// is a real rendezvous), the rounding intrinsics are IEEE operations compiled without contraction
// (-ffp-contract=off) and popcount is the compiler's. It checks indexing, layouts, launch grids and
// arithmetic against the Java reference without a GPU; it says nothing about the GPU's memory model,
// scheduling or speed. Not for __syncthreads, shared memory or atomics (the select kernel): those
// compile here only so that silhouette_threshold.cu, whose region map kernel is emulated, can be included,
// and abort if ever reached (emu_launch does not offer the select kernel).
#pragma once
#include <stdint.h>
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdlib>
#include <cstring>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)

struct emu_dim3 {
    unsigned x = 0, y = 0, z = 0;
};
inline thread_local emu_dim3 threadIdx, blockIdx;
inline emu_dim3 blockDim, gridDim;

using std::max;
using std::min;
using std::signbit;

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline float __int2float_rn(int v) { return (float)v; }
inline float __double2float_rn(double v) { return (float)v; }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
inline unsigned __float_as_uint(float f) {
    unsigned u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float __uint_as_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

#define __shared__ static
[[noreturn]] inline void emu_not_emulated() { std::abort(); }
inline void __syncthreads() { emu_not_emulated(); }
inline unsigned atomicAdd(unsigned*, unsigned) { emu_not_emulated(); }
inline unsigned __shfl_up_sync(unsigned, unsigned, int) { emu_not_emulated(); }

// One warp's rendezvous: every lane ORs its vote in, waits for all, reads, waits again, and lane 0
// clears for the next ballot once everyone has read.
struct emu_warp {
    std::barrier<> sync{32};
    std::atomic<unsigned> votes{0};
};
inline thread_local emu_warp* emu_current_warp = nullptr;

inline unsigned __ballot_sync(unsigned, int predicate) {
    emu_warp* w = emu_current_warp;
    const unsigned lane = threadIdx.x % 32;
    if (predicate) w->votes.fetch_or(1u << lane);
    w->sync.arrive_and_wait();
    const unsigned result = w->votes.load();
    w->sync.arrive_and_wait();
    if (lane == 0) w->votes.store(0);
    w->sync.arrive_and_wait();
    return result;
}
