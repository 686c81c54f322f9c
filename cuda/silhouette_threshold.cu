// Per-image silhouette thresholds and region maps. The specification is the CPU reference
// dev.silhouette.quant.SilhouetteThresholds; these kernels match it bit for bit. NaN silhouettes are
// outside the contract (the silhouette is a sigmoid output); they would order as keys above +inf or
// below -inf on both sides, but no result is promised for them.
#include "silhouette_common.cuh"

namespace silhouette_select {

constexpr int WARP = 32;
constexpr unsigned FULL_WARP = 0xffffffffu;
constexpr int DIGIT_BITS = 8;
constexpr int BUCKETS = 1 << DIGIT_BITS;
constexpr int BUCKETS_PER_LANE = BUCKETS / WARP;
// Ranks selected together in one sweep of four passes: their histograms take MAX_RANKS KiB of shared
// memory. Two ranks per threshold, so one sweep serves policies of up to 9 regions.
constexpr int MAX_RANKS = 16;
// Threads per block the selection is built for. A block works alone on its image and waits on its
// passes, so the widest block is fastest: on an H100, 1024 threads select 2.3x faster than 256 at
// 112x112 and no slower at 28x28 (SilhouetteThresholdKernel.SELECT_BLOCK launches this many).
constexpr int SELECT_THREADS = 1024;

struct State {
    uint32_t histogram[MAX_RANKS][BUCKETS];
    uint32_t rank[MAX_RANKS];    // rank still sought among the keys that share prefix[r]
    uint32_t prefix[MAX_RANKS];  // high bits of the rank-r key found so far (the whole key at the end)
    int slot[MAX_RANKS];         // histogram of rank r: ranks with equal prefixes share one
    uint32_t distinct_prefix[MAX_RANKS];
    int distinct;
};

// Block-wide radix select. On entry s.rank[0..count) hold 0-based ascending ranks among the order keys
// of v[0..n) (each < n); on return s.prefix[r] is the key of rank s.rank[r] as it was on entry.
//
// Why it works: write the sorted keys as a list (ties repeated). Suppose the top bits P of the sought
// key K are known and K is at position k among the keys that start with P. Counting those keys by
// their next 8-bit digit gives a histogram h; the digit of K is the d with h[0] + ... + h[d-1] <= k <
// h[0] + ... + h[d], and K is at position k - (h[0] + ... + h[d-1]) among the keys starting with P:d.
// Four passes (bits 31..24, 23..16, 15..8, 7..0) fix all 32 bits. Counts include multiplicity, so
// equal keys are separate order statistics exactly as in a sort, and no pass needs more than one read
// of the image and one shared-memory atomic per key.
//
// blockDim.x must be a multiple of 32 (whole warps scan the histograms).
__device__ void select_ranks(const float* __restrict__ v, int n, int count, State& s) {
    const int lane = threadIdx.x % WARP;
    const int warp = threadIdx.x / WARP;
    const int warps = blockDim.x / WARP;
    if (threadIdx.x == 0) {
        for (int r = 0; r < count; r++) s.prefix[r] = 0;
    }
    for (int shift = 32 - DIGIT_BITS; shift >= 0; shift -= DIGIT_BITS) {
        const uint32_t mask = shift == 32 - DIGIT_BITS ? 0u : 0xffffffffu << (shift + DIGIT_BITS);
        if (threadIdx.x == 0) {
            // Ranks whose prefixes agree share one histogram, so ranks that coincide (v_lo and v_hi of
            // a threshold, or every rank of a constant image) cost one atomic per key, not one each.
            int distinct = 0;
            for (int r = 0; r < count; r++) {
                int d = 0;
                while (d < distinct && s.distinct_prefix[d] != s.prefix[r]) d++;
                if (d == distinct) s.distinct_prefix[distinct++] = s.prefix[r];
                s.slot[r] = d;
            }
            s.distinct = distinct;
        }
        __syncthreads();
        const int distinct = s.distinct;
        uint32_t* histograms = &s.histogram[0][0];
        for (int i = threadIdx.x; i < distinct * BUCKETS; i += blockDim.x) histograms[i] = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            const uint32_t key = order_key(v[i]);
            const uint32_t high = key & mask;
            for (int d = 0; d < distinct; d++) {
                if (high == s.distinct_prefix[d]) {
                    atomicAdd(&s.histogram[d][(key >> shift) & (BUCKETS - 1)], 1u);
                    break;
                }
            }
        }
        __syncthreads();
        // One warp per rank: each lane sums 8 consecutive buckets, a warp scan finds the lane whose
        // buckets hold position k, and that lane walks its 8 buckets to the digit.
        for (int r = warp; r < count; r += warps) {
            const uint32_t* h = s.histogram[s.slot[r]];
            const uint32_t k = s.rank[r];
            uint32_t own = 0;
            for (int j = 0; j < BUCKETS_PER_LANE; j++) own += h[lane * BUCKETS_PER_LANE + j];
            uint32_t upto = own;
            for (int offset = 1; offset < WARP; offset <<= 1) {
                const uint32_t other = __shfl_up_sync(FULL_WARP, upto, offset);
                if (lane >= offset) upto += other;
            }
            uint32_t below = upto - own;
            if (below <= k && k < upto) {
                int digit = lane * BUCKETS_PER_LANE;
                while (below + h[digit] <= k) below += h[digit++];
                s.prefix[r] |= (uint32_t)digit << shift;
                s.rank[r] = k - below;
            }
        }
        __syncthreads();
    }
}

// Where fraction q falls among n sorted values: p = q (n - 1), lo = floor(p), hi = min(lo + 1, n - 1),
// frac = (float) (p - lo). Explicit rounding intrinsics keep nvcc from fusing the multiply into the
// subtraction (an FMA would skip the rounding of p that the CPU performs).
struct Position {
    uint32_t lo, hi;
    float frac;
};

__device__ __forceinline__ Position position(double q, int n) {
    const double p = __dmul_rn(q, (double)(n - 1));
    const double lo = floor(p);
    Position pos;
    pos.lo = (uint32_t)lo;
    pos.hi = pos.lo + 1 < (uint32_t)n ? pos.lo + 1 : (uint32_t)n - 1;
    pos.frac = __double2float_rn(__dsub_rn(p, lo));
    return pos;
}

}  // namespace silhouette_select

// thresholds[b * count + j] = linear-interpolated quantile of image b at cumulative fraction
// fractions[j] (count = regions - 1 interior fractions, each in [0, 1]):
//   t = v_lo + (v_hi - v_lo) * frac in float with round-to-nearest on every step (no FMA contraction),
// where v_r is the rank-r value of the image and lo, hi, frac come from position(). One block per image
// (grid = batch), blockDim.x a multiple of 32 up to SELECT_THREADS; all thresholds of up to 8 fractions
// come from one sweep of four passes over the image.
extern "C" __global__ void __launch_bounds__(silhouette_select::SELECT_THREADS)
silhouette_thresholds(const float* __restrict__ silhouette, int batch, int pixels,
                                                 const double* __restrict__ fractions, int count,
                                                 float* __restrict__ thresholds) {
    using namespace silhouette_select;
    __shared__ State s;
    const int b = blockIdx.x;
    if (b >= batch || pixels < 1) return;
    const float* v = silhouette + (size_t)b * pixels;
    constexpr int PER_SWEEP = MAX_RANKS / 2;
    for (int first = 0; first < count; first += PER_SWEEP) {
        const int here = min(PER_SWEEP, count - first);
        if (threadIdx.x == 0) {
            for (int m = 0; m < here; m++) {
                const Position pos = position(fractions[first + m], pixels);
                s.rank[2 * m] = pos.lo;
                s.rank[2 * m + 1] = pos.hi;
            }
        }
        select_ranks(v, pixels, 2 * here, s);
        if (threadIdx.x == 0) {
            for (int m = 0; m < here; m++) {
                const Position pos = position(fractions[first + m], pixels);
                const float v_lo = key_value(s.prefix[2 * m]);
                const float v_hi = key_value(s.prefix[2 * m + 1]);
                thresholds[(size_t)b * count + first + m] = __fadd_rn(v_lo, __fmul_rn(__fsub_rn(v_hi, v_lo), pos.frac));
            }
        }
        __syncthreads();  // the next sweep rewrites s
    }
}

// region[i] = number of its image's count thresholds t_j with value >= t_j (at most 255). For
// ascending thresholds region j is [t_j, t_(j+1)): values equal to a threshold go to the higher region.
// Grid-stride over batch * pixels.
extern "C" __global__ void silhouette_region_map(const float* __restrict__ silhouette, int batch, int pixels,
                                                 const float* __restrict__ thresholds, int count,
                                                 unsigned char* __restrict__ region) {
    const size_t total = (size_t)batch * pixels;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const float* t = thresholds + i / pixels * count;
        const float value = silhouette[i];
        unsigned int r = 0;
        for (int j = 0; j < count; j++) r += value >= t[j] ? 1u : 0u;
        region[i] = (unsigned char)r;
    }
}
