// Just enough of CUDA, on the host, to run the kernels of cuda/ on the CPU for tests: every thread of a
// launch runs as plain C++ on its own std::thread, so warp votes and shuffles are real rendezvous of
// 32 lanes, and (in a whole-block launch, launch.cpp's run_block) __syncthreads is a barrier of the
// block's threads, __shared__ memory is one static per kernel shared by them (one block runs at a
// time) and atomicAdd is an atomic read-modify-write. The rounding intrinsics are IEEE operations
// compiled without contraction (-ffp-contract=off) and popcount is the compiler's. It checks indexing,
// layouts, launch grids, block synchronisation and arithmetic against the Java reference without a
// GPU; it says nothing about the GPU's memory model, scheduling or speed.
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

// One warp's rendezvous: every lane ORs its vote in (or posts its shuffle value), waits for all,
// reads, waits again, and lane 0 clears for the next ballot once everyone has read.
struct emu_warp {
    std::barrier<> sync{32};
    std::atomic<unsigned> votes{0};
    unsigned posted[32] = {};
};
inline thread_local emu_warp* emu_current_warp = nullptr;

// The barrier of the block being run; null outside a whole-block launch, where __syncthreads aborts.
inline thread_local std::barrier<>* emu_current_block = nullptr;

inline void __syncthreads() {
    if (emu_current_block == nullptr) std::abort();
    emu_current_block->arrive_and_wait();
}

inline unsigned atomicAdd(unsigned* address, unsigned value) {
    return std::atomic_ref<unsigned>(*address).fetch_add(value);
}

inline unsigned __shfl_up_sync(unsigned, unsigned value, int offset) {
    emu_warp* w = emu_current_warp;
    const unsigned lane = threadIdx.x % 32;
    w->posted[lane] = value;
    w->sync.arrive_and_wait();
    const unsigned result = lane >= (unsigned)offset ? w->posted[lane - offset] : value;
    w->sync.arrive_and_wait();
    return result;
}

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
