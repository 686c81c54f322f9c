// Just enough of CUDA, on the host, to run the kernels of cuda/ on the CPU for tests. Every thread of
// a block is a coroutine (ucontext) on the launching thread, scheduled cooperatively by launch.cpp's
// run: a thread runs until it reaches __syncthreads or a warp collective, and waits there until every
// thread of its block (or lane of its warp) has arrived. So warp votes and shuffles are real
// rendezvous of 32 lanes, __syncthreads a real block barrier, __shared__ memory one static per kernel
// shared by the block's threads (one block runs at a time), and atomics trivially atomic. The
// schedule is deterministic. The rounding intrinsics are IEEE operations compiled without contraction
// (-ffp-contract=off) and popcount is the compiler's. It checks indexing, layouts, launch grids, block
// synchronisation and arithmetic against the Java reference without a GPU; it says nothing about the
// GPU's memory model, scheduling or speed.
#pragma once
#include <stdint.h>
#include <algorithm>
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

// The block being run (launch.cpp): its threads wait at barriers by yielding to the scheduler.
struct emu_block {
    // Blocks the calling thread until every thread of the block has called it.
    virtual void block_barrier() = 0;
    // Blocks the calling thread until every lane of its warp has called it.
    virtual void warp_barrier() = 0;
    unsigned votes[32] = {};      // per warp: the ballot being gathered
    unsigned posted[1024] = {};   // per thread: its shuffle value
};
inline thread_local emu_block* emu_current = nullptr;

inline void __syncthreads() { emu_current->block_barrier(); }

inline unsigned atomicAdd(unsigned* address, unsigned value) {
    const unsigned old = *address;  // one thread runs at a time
    *address = old + value;
    return old;
}

// Every lane posts, waits for all, reads, and waits again before anyone posts anew.
inline unsigned __shfl_up_sync(unsigned, unsigned value, int offset) {
    const unsigned t = threadIdx.x, lane = t % 32;
    emu_current->posted[t] = value;
    emu_current->warp_barrier();
    const unsigned result = lane >= (unsigned)offset ? emu_current->posted[t - offset] : value;
    emu_current->warp_barrier();
    return result;
}

// Every lane ORs its vote in, waits for all, reads, waits again; lane 0 clears for the next ballot
// once everyone has read.
inline unsigned __ballot_sync(unsigned, int predicate) {
    unsigned& votes = emu_current->votes[threadIdx.x / 32];
    const unsigned lane = threadIdx.x % 32;
    if (predicate) votes |= 1u << lane;
    emu_current->warp_barrier();
    const unsigned result = votes;
    emu_current->warp_barrier();
    if (lane == 0) votes = 0;
    emu_current->warp_barrier();
    return result;
}
