// Per-image region cuts and region maps. The specification is the CPU reference
// dev.silhouette.quant.SilhouetteThresholds; these kernels match it bit for bit. Pixels rank by
// (value, pixel index) through 64-bit keys (pixel_key), so every rank is one pixel and ties split by
// index. NaN silhouettes are outside the contract (the silhouette is a sigmoid output).
#include "silhouette_common.cuh"

namespace silhouette_select {

constexpr int WARP = 32;
constexpr unsigned FULL_WARP = 0xffffffffu;
constexpr int DIGIT_BITS = 8;
constexpr int BUCKETS = 1 << DIGIT_BITS;
constexpr int BUCKETS_PER_LANE = BUCKETS / WARP;
// Ranks selected together in one sweep: their histograms take MAX_RANKS KiB of shared memory. One rank
// per cut, so one sweep serves policies of up to 17 regions.
constexpr int MAX_RANKS = 16;
// Threads per block the selection is built for. A block works alone on its image and waits on its
// passes, so the widest block is fastest (SilhouetteThresholdKernel.SELECT_BLOCK launches this many).
constexpr int SELECT_THREADS = 1024;

struct State {
    uint32_t histogram[MAX_RANKS][BUCKETS];
    uint32_t rank[MAX_RANKS];              // rank still sought among the keys that share prefix[r]
    unsigned long long prefix[MAX_RANKS];  // high bits of the rank-r key found so far (the whole key at the end)
    int slot[MAX_RANKS];                   // histogram of rank r: ranks with equal prefixes share one
    unsigned long long distinct_prefix[MAX_RANKS];
    int distinct;
};

// Block-wide radix select. On entry s.rank[0..count) hold 0-based ascending ranks among the pixel keys
// of v[0..n) (each < n); on return s.prefix[r] is the key of rank s.rank[r] as it was on entry.
//
// Why it works: write the sorted keys as a list. Suppose the top bits P of the sought key K are known
// and K is at position k among the keys that start with P. Counting those keys by their next 8-bit
// digit gives a histogram h; the digit of K is the d with h[0] + ... + h[d-1] <= k < h[0] + ... +
// h[d], and K is at position k - (h[0] + ... + h[d-1]) among the keys starting with P:d. Passes over
// bits 63..56 down to 7..0 fix all 64 bits, each with one read of the image and one shared-memory
// atomic per key. The low 32 bits are the pixel index, below n: a digit above n - 1's highest bit is 0
// in every key, so its pass is skipped (28x28 images take 6 passes, 112x112 images 6, one pixel 4).
//
// blockDim.x must be a multiple of 32 (whole warps scan the histograms).
__device__ void select_ranks(const float* __restrict__ v, int n, int count, State& s) {
    const int lane = threadIdx.x % WARP;
    const int warp = threadIdx.x / WARP;
    const int warps = blockDim.x / WARP;
    if (threadIdx.x == 0) {
        for (int r = 0; r < count; r++) s.prefix[r] = 0;
    }
    for (int shift = 64 - DIGIT_BITS; shift >= 0; shift -= DIGIT_BITS) {
        if (shift < 32 && ((uint32_t)(n - 1) >> shift) == 0) continue;  // uniform across the block
        const unsigned long long mask = shift == 64 - DIGIT_BITS ? 0ull : ~0ull << (shift + DIGIT_BITS);
        if (threadIdx.x == 0) {
            // Ranks whose prefixes agree share one histogram, so ranks that coincide so far (every rank
            // of a constant image, in its value passes) cost one atomic per key, not one each.
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
            const unsigned long long key = pixel_key(v[i], (uint32_t)i);
            const unsigned long long high = key & mask;
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
                s.prefix[r] |= (unsigned long long)digit << shift;
                s.rank[r] = k - below;
            }
        }
        __syncthreads();
    }
}

}  // namespace silhouette_select

// cut_keys[b * (regions - 1) + j] = the key of image b's pixel at cut rank j (cut_rank), ABOVE_ALL when
// that rank is the image's pixel count. shares: the policy's `regions` positive shares. One block per
// image (grid = batch), blockDim.x a multiple of 32 up to SELECT_THREADS; up to 16 cuts per sweep.
extern "C" __global__ void __launch_bounds__(silhouette_select::SELECT_THREADS)
silhouette_cut_keys(const float* __restrict__ silhouette, int batch, int pixels,
                    const int* __restrict__ shares, int regions, unsigned long long* __restrict__ cut_keys) {
    using namespace silhouette_select;
    __shared__ State s;
    const int b = blockIdx.x;
    const int count = regions - 1;
    if (b >= batch || pixels < 1) return;
    const float* v = silhouette + (size_t)b * pixels;
    uint32_t wanted[MAX_RANKS];  // thread 0's cut ranks of the sweep, kept across the select
    for (int first = 0; first < count; first += MAX_RANKS) {
        const int here = min(MAX_RANKS, count - first);
        if (threadIdx.x == 0) {
            // A cut at rank n has no pixel to select; rank n - 1 stands in and the key is replaced below.
            for (int m = 0; m < here; m++) {
                wanted[m] = cut_rank(shares, regions, first + m, pixels);
                s.rank[m] = min(wanted[m], (uint32_t)pixels - 1);
            }
        }
        select_ranks(v, pixels, here, s);
        if (threadIdx.x == 0) {
            for (int m = 0; m < here; m++) {
                cut_keys[(size_t)b * count + first + m] = wanted[m] == (uint32_t)pixels ? ABOVE_ALL : s.prefix[m];
            }
        }
        __syncthreads();  // the next sweep rewrites s
    }
}

// region[i] = number of its image's count cut keys at or below the pixel's key (at most 255): region j
// holds the ranks [c_j, c_(j+1)). Grid-stride over batch * pixels.
extern "C" __global__ void silhouette_region_map(const float* __restrict__ silhouette, int batch, int pixels,
                                                 const unsigned long long* __restrict__ cut_keys, int count,
                                                 unsigned char* __restrict__ region) {
    const size_t total = (size_t)batch * pixels;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const unsigned long long* c = cut_keys + i / pixels * count;
        const unsigned long long key = pixel_key(silhouette[i], (uint32_t)(i % pixels));
        unsigned int r = 0;
        for (int j = 0; j < count; j++) r += key >= c[j] ? 1u : 0u;
        region[i] = (unsigned char)r;
    }
}
