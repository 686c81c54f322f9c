// The low-bit kernels of cuda/ compiled for the host (cuda_emulation.h), behind one C entry point that
// takes a launch as KernelModule.launch describes it: kernel name, grid, block, and the arguments in
// 64-bit slots (pointers as host addresses, ints sign-extended, floats as their bit patterns).
#include "cuda_emulation.h"

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "quantize_pack.cu"
#include "region_masks.cu"
#include "packed_conv.cu"
#include "binary_conv.cu"
#include "ops_resize.cu"
#include "silhouette_threshold.cu"
#include "region_ops.cu"

namespace {

template <typename T>
T from_slot(uint64_t v) {
    if constexpr (std::is_pointer_v<T>) {
        return reinterpret_cast<T>(v);
    } else if constexpr (std::is_same_v<T, float>) {
        uint32_t bits = (uint32_t)v;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    } else if constexpr (std::is_same_v<T, double>) {
        double d;
        std::memcpy(&d, &v, 8);
        return d;
    } else {
        return (T)(int64_t)v;
    }
}

template <typename... P, size_t... I>
void invoke(void (*f)(P...), const uint64_t* a, std::index_sequence<I...>) {
    f(from_slot<P>(a[I])...);
}

template <typename... P>
int arity(void (*)(P...)) {
    return (int)sizeof...(P);
}

// Runs every block; within a block, warp after warp, each warp's 32 lanes on 32 threads kept for the
// whole launch (a ballot needs its lanes running together).
template <typename... P>
int run(void (*f)(P...), int grid_x, int grid_y, int block_x, const uint64_t* args, int count) {
    if (count != (int)sizeof...(P)) return -2;
    if (block_x % 32 != 0 || block_x > 1024) return -3;
    gridDim = {(unsigned)grid_x, (unsigned)grid_y, 1};
    blockDim = {(unsigned)block_x, 1, 1};
    std::barrier<> start(33), done(33);
    emu_warp warp;
    int bx = 0, by = 0, w = 0;
    bool stop = false;
    std::vector<std::thread> lanes;
    for (int lane = 0; lane < 32; lane++) {
        lanes.emplace_back([&, lane] {
            emu_current_warp = &warp;
            for (;;) {
                start.arrive_and_wait();
                if (stop) return;
                blockIdx = {(unsigned)bx, (unsigned)by, 0};
                threadIdx = {(unsigned)(w * 32 + lane), 0, 0};
                invoke(f, args, std::index_sequence_for<P...>{});
                done.arrive_and_wait();
            }
        });
    }
    for (by = 0; by < grid_y; by++) {
        for (bx = 0; bx < grid_x; bx++) {
            for (w = 0; w < block_x / 32; w++) {
                start.arrive_and_wait();
                done.arrive_and_wait();
            }
        }
    }
    stop = true;
    start.arrive_and_wait();
    for (auto& t : lanes) t.join();
    return 0;
}

// Runs every block with all its threads at once (one std::thread each, kept for the whole launch), for
// kernels that synchronise a block: __syncthreads is a barrier of blockDim.x threads, and each warp
// has its own rendezvous for shuffles and votes.
template <typename... P>
int run_block(void (*f)(P...), int grid_x, int grid_y, int block_x, const uint64_t* args, int count) {
    if (count != (int)sizeof...(P)) return -2;
    if (block_x % 32 != 0 || block_x > 1024) return -3;
    gridDim = {(unsigned)grid_x, (unsigned)grid_y, 1};
    blockDim = {(unsigned)block_x, 1, 1};
    std::barrier<> start(block_x + 1), done(block_x + 1), block(block_x);
    std::unique_ptr<emu_warp[]> warps(new emu_warp[block_x / 32]);
    int bx = 0, by = 0;
    bool stop = false;
    std::vector<std::thread> threads;
    for (int t = 0; t < block_x; t++) {
        threads.emplace_back([&, t] {
            emu_current_warp = &warps[t / 32];
            emu_current_block = &block;
            for (;;) {
                start.arrive_and_wait();
                if (stop) return;
                blockIdx = {(unsigned)bx, (unsigned)by, 0};
                threadIdx = {(unsigned)t, 0, 0};
                invoke(f, args, std::index_sequence_for<P...>{});
                done.arrive_and_wait();
            }
        });
    }
    for (by = 0; by < grid_y; by++) {
        for (bx = 0; bx < grid_x; bx++) {
            start.arrive_and_wait();
            done.arrive_and_wait();
        }
    }
    stop = true;
    start.arrive_and_wait();
    for (auto& t : threads) t.join();
    return 0;
}

}  // namespace

extern "C" int emu_launch(const char* kernel, int grid_x, int grid_y, int block_x, const uint64_t* args, int count) {
    const std::string k = kernel;
    if (k == "quantize_pack_bitplanes") return run(quantize_pack_bitplanes, grid_x, grid_y, block_x, args, count);
    if (k == "region_map_threshold_then_resize") return run(region_map_threshold_then_resize, grid_x, grid_y, block_x, args, count);
    if (k == "packed_conv") return run(packed_conv, grid_x, grid_y, block_x, args, count);
    if (k == "binary_conv") return run(binary_conv, grid_x, grid_y, block_x, args, count);
    if (k == "silhouette_interpolate_nearest") return run(silhouette_interpolate_nearest, grid_x, grid_y, block_x, args, count);
    if (k == "silhouette_interpolate_bilinear") return run(silhouette_interpolate_bilinear, grid_x, grid_y, block_x, args, count);
    if (k == "silhouette_cut_keys") return run_block(silhouette_cut_keys, grid_x, grid_y, block_x, args, count);
    if (k == "silhouette_region_map") return run(silhouette_region_map, grid_x, grid_y, block_x, args, count);
    if (k == "region_pact_quantize") return run(region_pact_quantize, grid_x, grid_y, block_x, args, count);
    if (k == "region_quantize_by_map") return run(region_quantize_by_map, grid_x, grid_y, block_x, args, count);
    if (k == "region_drq_block_means") return run(region_drq_block_means, grid_x, grid_y, block_x, args, count);
    if (k == "region_drq_quantize") return run(region_drq_quantize, grid_x, grid_y, block_x, args, count);
    if (k == "region_squeeze_channel_scores") return run(region_squeeze_channel_scores, grid_x, grid_y, block_x, args, count);
    if (k == "region_squeeze_top_channels") return run(region_squeeze_top_channels, grid_x, grid_y, block_x, args, count);
    if (k == "region_squeeze_channels") return run(region_squeeze_channels, grid_x, grid_y, block_x, args, count);
    if (k == "region_squeeze_range") return run(region_squeeze_range, grid_x, grid_y, block_x, args, count);
    if (k == "region_squeeze_rescale") return run(region_squeeze_rescale, grid_x, grid_y, block_x, args, count);
    if (k == "region_noise_image_hash") return run(region_noise_image_hash, grid_x, grid_y, block_x, args, count);
    if (k == "region_noise_silhouette") return run(region_noise_silhouette, grid_x, grid_y, block_x, args, count);
    if (k == "region_logit_blend") return run(region_logit_blend, grid_x, grid_y, block_x, args, count);
    return -1;
}
