// Kernels with a fault planted on purpose, for the emulation only (never in the fatbin): each shows one of
// the emulation's checks catching a class of bug that a plain run on the CPU lets pass.
// EmulationHardeningTest launches each with the fault off (must pass) and on (must be caught). The
// `fault` argument switches between the correct kernel and the planted one.

// Out-of-bounds read: y[i] = x[i] + x[i + fault] reads one float past x for the last i when fault is 1.
// Caught by AddressSanitizer in the replay tool (the buffer is allocated at its exact size).
extern "C" __global__ void planted_oob_read(const float* __restrict__ x, float* __restrict__ y, int n, int fault) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const int j = fault ? i + 1 : min(i + 1, n - 1);
        y[i] = x[i] + x[j];
    }
}

// Uninitialised shared read: a block sums `count` values (count <= 64) with a tree over 64 slots; the
// faulty version leaves slots count..63 unwritten, which are zero on the first run of a static array and
// never written after, so only poisoning exposes it. y[block] = sum of x[block * count .. + count).
extern "C" __global__ void planted_uninitialised_shared(const int* __restrict__ x, int* __restrict__ y, int count, int fault) {
    __shared__ int slots[64];
    const int t = threadIdx.x;
    if (t < count) slots[t] = x[blockIdx.x * count + t];
    else if (!fault) slots[t] = 0;
    __syncthreads();
    for (int stride = 32; stride > 0; stride /= 2) {
        if (t < stride) slots[t] += slots[t + stride];
        __syncthreads();
    }
    if (t == 0) y[blockIdx.x] = slots[0];
}

// Missing barrier: thread 0 loads the block's value into shared memory and every thread adds its index;
// without the barrier (fault) the other threads may read before thread 0 wrote. y[b * blockDim + t] = x[b] + t.
extern "C" __global__ void planted_barrier(const int* __restrict__ x, int* __restrict__ y, int fault) {
    __shared__ int value;
    if (threadIdx.x == 0) value = x[blockIdx.x];
    if (!fault) __syncthreads();
    y[blockIdx.x * blockDim.x + threadIdx.x] = value + (int)threadIdx.x;
}

// Race between blocks: a prefix sum in which block b reads block b - 1's output, correct only if blocks run
// in grid order (fault); the correct version sums the inputs itself. y[b] = x[0] + ... + x[b]. One thread per block.
extern "C" __global__ void planted_previous_block(const int* __restrict__ x, int* __restrict__ y, int fault) {
    const int b = blockIdx.x;
    if (threadIdx.x != 0) return;
    if (fault) {
        y[b] = x[b] + (b > 0 ? y[b - 1] : 0);
    } else {
        int sum = 0;
        for (int i = 0; i <= b; i++) sum += x[i];
        y[b] = sum;
    }
}

// Partial warp: lanes past n leave, then the rest vote. With the full mask (fault) the vote names lanes that
// exited (undefined on a GPU); the correct mask names only the lanes still running. y[i] = the warp's count of x > 0.
extern "C" __global__ void planted_exited_lane(const int* __restrict__ x, int* __restrict__ y, int n, int fault) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int warp_first = i - (int)threadIdx.x % 32;
    const int live = min(32, n - warp_first);
    const unsigned mask = fault || live == 32 ? 0xffffffffu : (1u << live) - 1u;
    y[i] = __popc(__ballot_sync(mask, x[i] > 0));
}
