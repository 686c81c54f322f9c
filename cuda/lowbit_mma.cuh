// The tensor-core instructions of the low-bit kernels, one wrapper each: inline PTX on the device, the
// host emulation's warp-wide model of the same instruction (native-build/emulate/cuda_emulation.h,
// written from the PTX ISA's fragment layouts) when compiled for tests. Every build target is sm_80 or
// newer, where both shapes exist; sm_90 runs the same mma.sync (its wgmma has no 4-bit or 1-bit form and
// its 8-bit form is not used yet), so the sm_80 and sm_90 code is the same.
#pragma once
#include <stdint.h>

namespace lowbit_mma {

// d = a b + c, A 16x32 unsigned 8-bit (row), B 32x8 signed 8-bit (col), C and D 16x8 int32.
__device__ __forceinline__ void m16n8k32_u8s8(int d[4], const unsigned a[4], const unsigned b[2], const int c[4]) {
#if defined(SILHOUETTE_EMULATION)
    emu_mma_m16n8k32_u8s8(d, a, b, c);
#elif defined(__CUDA_ARCH__)
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
                 : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]));
#endif
}

// d = c + popcount(a_row AND b_column) over 256 bits: A 16x256 (row), B 256x8 (col), single-bit.
__device__ __forceinline__ void m16n8k256_and_popc(int d[4], const unsigned a[4], const unsigned b[2], const int c[4]) {
#if defined(SILHOUETTE_EMULATION)
    emu_mma_m16n8k256_and_popc(d, a, b, c);
#elif defined(__CUDA_ARCH__)
    asm volatile("mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
                 : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]));
#endif
}

}  // namespace lowbit_mma
