// Just enough of CUDA, on the host, to run every kernel of cuda/ on the CPU for tests. Every thread of
// a block is a coroutine (ucontext) on the launching thread, scheduled cooperatively by launch.cpp's
// Block: a thread runs until it reaches __syncthreads or a warp collective, and waits there until every
// thread of its block (or every lane its mask names) has arrived. So warp votes, shuffles and mma.sync
// are real rendezvous of the lanes a mask names, __syncthreads a real block barrier, and atomics
// trivially atomic. Made to catch what a GPU would not show reliably:
//  - __shared__ variables live in one linker section ("emu_shared") that launch.cpp fills with poison
//    bytes at the start of every block, so a read of shared memory no thread of the block wrote gives
//    a wrong answer instead of the previous block's value or zero;
//  - blocks run in an order shuffled by a seed, so a block that reads what another block writes fails;
//  - a collective whose mask names a lane that has exited, or omits the calling lane, is an error, and
//    a shuffle from a lane outside the mask reads poison (undefined on a GPU);
//  - mma.sync shapes are computed from the PTX ISA's fragment layouts over all 32 lanes' registers;
//  - built with AddressSanitizer and UndefinedBehaviorSanitizer (the replay tool, emulate_main.cpp),
//    out-of-bounds reads of global memory abort at the exact buffer end.
// The rounding intrinsics are IEEE operations compiled without contraction (-ffp-contract=off). It says
// nothing about the GPU's memory model, scheduling or speed, nor about nvcc's device code.
#pragma once
#include <stdint.h>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#define SILHOUETTE_EMULATION 1
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
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline float __int2float_rn(int v) { return (float)v; }
inline float __double2float_rn(double v) { return (float)v; }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
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

// Every __shared__ variable in one section; launch.cpp poisons [__start_emu_shared, __stop_emu_shared)
// at each block's start. (GCC's AddressSanitizer leaves variables with a section attribute unpadded.)
#define __shared__ static __attribute__((section("emu_shared"), aligned(16)))

// What a collective reads from a lane outside its mask, and what shared memory holds at a block's start.
constexpr unsigned char EMU_POISON_BYTE = 0xA5;
constexpr uint64_t EMU_POISON = 0xA5A5A5A5A5A5A5A5ull;

// The block being run (launch.cpp): its threads wait at barriers by yielding to the scheduler.
struct emu_block {
    // Blocks the calling thread until every thread of the block still running has called it.
    virtual void block_barrier() = 0;
    // Blocks the calling lane until every lane of `mask` has called it with the same mask; a mask naming a
    // lane that has exited or that does not exist, or omitting the caller, ends the launch with an error.
    virtual void warp_barrier(unsigned mask) = 0;
    uint64_t posted[1024] = {};      // per thread: the value it offers the collective
    uint32_t posted_a[1024][4] = {};  // per thread: the A registers it offers an mma.sync
    uint32_t posted_b[1024][2] = {};  // per thread: the B registers it offers an mma.sync
};
inline thread_local emu_block* emu_current = nullptr;

inline void __syncthreads() { emu_current->block_barrier(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { emu_current->warp_barrier(mask); }

inline unsigned atomicAdd(unsigned* address, unsigned value) {
    const unsigned old = *address;  // one thread runs at a time
    *address = old + value;
    return old;
}
inline int atomicAdd(int* address, int value) {
    const int old = *address;
    *address = (int)((unsigned)old + (unsigned)value);
    return old;
}

template <typename T>
uint64_t emu_bits(T v) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "a shuffled value is at most 64 bits");
    uint64_t u = 0;
    std::memcpy(&u, &v, sizeof(T));
    return u;
}
template <typename T>
T emu_value(uint64_t u) {
    T v;
    std::memcpy(&v, &u, sizeof(T));
    return v;
}

// A shuffle: every lane of the mask posts, waits for all, reads lane `source(lane)` (its own value when
// source returns -1), and waits again before anyone posts anew. A source outside the mask reads poison.
template <typename T, typename Source>
T emu_shuffle(unsigned mask, T value, Source source) {
    const unsigned t = threadIdx.x, lane = t % 32, warp_base = t - lane;
    emu_current->posted[t] = emu_bits(value);
    emu_current->warp_barrier(mask);
    const int s = source((int)lane);
    uint64_t got = emu_bits(value);
    if (s >= 0) got = (mask >> s & 1u) ? emu_current->posted[warp_base + s] : EMU_POISON;
    emu_current->warp_barrier(mask);
    return emu_value<T>(got);
}

template <typename T>
T __shfl_up_sync(unsigned mask, T value, unsigned offset, int width = 32) {
    return emu_shuffle(mask, value, [&](int lane) { return lane % width >= (int)offset ? lane - (int)offset : -1; });
}
template <typename T>
T __shfl_down_sync(unsigned mask, T value, unsigned offset, int width = 32) {
    return emu_shuffle(mask, value, [&](int lane) { return lane % width + (int)offset < width ? lane + (int)offset : -1; });
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
    return emu_shuffle(mask, value, [&](int lane) {
        const int s = lane ^ lane_mask;
        return s / width == lane / width ? s : -1;
    });
}
template <typename T>
T __shfl_sync(unsigned mask, T value, int source, int width = 32) {
    return emu_shuffle(mask, value, [&](int lane) { return lane / width * width + source % width; });
}

// A vote: the lanes of the mask post their predicate; bit i of the result is lane i's (lanes outside the mask 0).
inline unsigned __ballot_sync(unsigned mask, int predicate) {
    const unsigned t = threadIdx.x, lane = t % 32, warp_base = t - lane;
    emu_current->posted[t] = predicate != 0;
    emu_current->warp_barrier(mask);
    unsigned result = 0;
    for (int i = 0; i < 32; i++) {
        if ((mask >> i & 1u) && emu_current->posted[warp_base + i]) result |= 1u << i;
    }
    emu_current->warp_barrier(mask);
    return result;
}
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
inline int __all_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) == mask; }

// ---- mma.sync, from the PTX ISA's fragment layouts ("Matrix Fragments for mma.m16n8k32" and
// ".m16n8k256"). g = lane / 4 (groupID), t = lane % 4 (threadID_in_group); every register is 32 bits:
//   A (16 x K, .row): a0 row g, a1 row g+8, a2 row g, a3 row g+8; a0/a1 hold k chunk t, a2/a3 chunk 4+t
//   B (K x 8, .col):  b0 column g, chunk t; b1 column g, chunk 4+t
//   C, D (16 x 8, s32): c0, c1 row g, columns 2t, 2t+1; c2, c3 row g+8, same columns
// where chunk j is elements 4j..4j+3 (8-bit, K = 32, element i of a register in byte i) or 32j..32j+31
// (1-bit, K = 256, element i in bit i). All 32 lanes must take part (mma.sync.aligned): the warp
// barrier's full mask enforces it. Integer mma wraps modulo 2^32 as the instruction does (.satfinite is
// not used).
namespace emu_mma {

// One 16 x 8 x K product: d = a b + c on the unpacked matrices, row-major A[16][K], B[K][8] stored as B[8][K].
template <int K, typename Element>
void gather_and_multiply(int d[4], const unsigned a[4], const unsigned b[2], const int c[4], Element element) {
    const unsigned t = threadIdx.x, lane = t % 32, warp_base = t - lane;
    for (int i = 0; i < 4; i++) emu_current->posted_a[t][i] = a[i];
    emu_current->posted_b[t][0] = b[0];
    emu_current->posted_b[t][1] = b[1];
    emu_current->warp_barrier(0xffffffffu);
    constexpr int CHUNK = K / 8;  // elements per 32-bit register
    const int g = (int)lane / 4, tg = (int)lane % 4;
    for (int e = 0; e < 4; e++) {
        const int row = g + (e >= 2 ? 8 : 0), col = 2 * tg + (e & 1);
        int64_t sum = 0;
        for (int k = 0; k < K; k++) {
            const int chunk = k / CHUNK, within = k % CHUNK;
            // A register holding (row, k): chunk < 4 in a0 (row < 8) / a1 (row >= 8), else a2 / a3; lane 4 row' + chunk % 4.
            const int a_lane = (row % 8) * 4 + chunk % 4, a_reg = (chunk >= 4 ? 2 : 0) + (row >= 8 ? 1 : 0);
            const int b_lane = col * 4 + chunk % 4, b_reg = chunk >= 4 ? 1 : 0;
            const unsigned av = emu_current->posted_a[warp_base + a_lane][a_reg];
            const unsigned bv = emu_current->posted_b[warp_base + b_lane][b_reg];
            sum += element(av, bv, within);
        }
        d[e] = (int)(uint32_t)((uint32_t)c[e] + (uint32_t)(int64_t)sum);
    }
    emu_current->warp_barrier(0xffffffffu);
}

}  // namespace emu_mma

// mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32: unsigned 8-bit A, signed 8-bit B.
inline void emu_mma_m16n8k32_u8s8(int d[4], const unsigned a[4], const unsigned b[2], const int c[4]) {
    emu_mma::gather_and_multiply<32>(d, a, b, c, [](unsigned av, unsigned bv, int i) {
        return (int64_t)(uint8_t)(av >> (8 * i)) * (int64_t)(int8_t)(bv >> (8 * i));
    });
}

// mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc: d = c + popcount(a_row AND b_column).
inline void emu_mma_m16n8k256_and_popc(int d[4], const unsigned a[4], const unsigned b[2], const int c[4]) {
    emu_mma::gather_and_multiply<256>(d, a, b, c, [](unsigned av, unsigned bv, int i) { return (int64_t)((av >> i) & (bv >> i) & 1u); });
}
