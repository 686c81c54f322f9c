// The low-bit kernels of cuda/ compiled for the host (cuda_emulation.h), behind one C entry point that
// takes a launch as KernelModule.launch describes it: kernel name, grid, block, and the arguments in
// 64-bit slots (pointers as host addresses, ints sign-extended, floats as their bit patterns).
#include "cuda_emulation.h"

#include <ucontext.h>

#include <functional>
#include <memory>
#include <string>
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

// One block's threads as coroutines on this thread. A thread runs until it finishes or waits at a
// barrier; sweeps over the threads run every ready one, and a barrier opens when all the threads it
// waits for have arrived. Sweeps go from the highest thread index down by default, so a thread 0
// that prepares shared state for the others runs after them and a barrier missing between its writes
// and their reads gives a wrong answer instead of passing by luck; emu_sweep_ascending turns the
// order round for the opposite case (others write, thread 0 reads). A sweep in which nothing ran and
// nothing opened is a deadlock (threads waiting at different barriers): run returns false.
class Block final : public emu_block {
  public:
    // body: what every thread of every block runs (the kernel with its arguments).
    Block(int threads, std::function<void()> body)
        : threads_(threads), contexts_(threads), state_(threads), stacks_(threads), body_(std::move(body)) {
        for (auto& stack : stacks_) stack.reset(new char[STACK_BYTES]);
    }

    // Runs one block (blockIdx set by the caller) to the end; false on a deadlock.
    bool run(bool ascending) {
        int finished = 0;
        for (int t = 0; t < threads_; t++) {
            state_[t] = READY;
            getcontext(&contexts_[t]);
            contexts_[t].uc_stack.ss_sp = stacks_[t].get();
            contexts_[t].uc_stack.ss_size = STACK_BYTES;
            contexts_[t].uc_link = &scheduler_;
            makecontext(&contexts_[t], &Block::entry, 0);
        }
        at_block_ = 0;
        std::fill(std::begin(at_warp_), std::end(at_warp_), 0);
        while (finished < threads_) {
            bool progressed = false;
            for (int i = 0; i < threads_; i++) {
                const int t = ascending ? i : threads_ - 1 - i;
                if (state_[t] != READY) continue;
                current_ = t;
                threadIdx = {(unsigned)t, 0, 0};
                swapcontext(&scheduler_, &contexts_[t]);
                if (state_[t] == DONE) finished++;
                progressed = true;
            }
            if (at_block_ > 0 && at_block_ + finished == threads_) {
                for (int t = 0; t < threads_; t++) if (state_[t] == AT_BLOCK) state_[t] = READY;
                at_block_ = 0;
                progressed = true;
            }
            for (int w = 0; w < threads_ / 32; w++) {
                if (at_warp_[w] < 32) continue;
                for (int t = w * 32; t < w * 32 + 32; t++) state_[t] = READY;
                at_warp_[w] = 0;
                progressed = true;
            }
            if (!progressed && finished < threads_) return false;
        }
        return true;
    }

    void block_barrier() override {
        state_[current_] = AT_BLOCK;
        at_block_++;
        yield();
    }

    void warp_barrier() override {
        state_[current_] = AT_WARP;
        at_warp_[current_ / 32]++;
        yield();
    }

  private:
    enum State { READY, AT_BLOCK, AT_WARP, DONE };
    static constexpr size_t STACK_BYTES = 64 * 1024;

    static void entry() {
        auto* self = static_cast<Block*>(emu_current);
        self->body_();
        self->state_[self->current_] = DONE;  // uc_link returns to the scheduler
    }

    void yield() { swapcontext(&contexts_[current_], &scheduler_); }

    int threads_;
    std::vector<ucontext_t> contexts_;
    std::vector<State> state_;
    std::vector<std::unique_ptr<char[]>> stacks_;
    ucontext_t scheduler_{};
    std::function<void()> body_;
    int current_ = 0, at_block_ = 0;
    int at_warp_[32] = {};
};

bool ascending_sweeps = false;

// Runs every block of the grid, one after another, all threads of a block as coroutines (Block).
template <typename... P>
int run(void (*f)(P...), int grid_x, int grid_y, int block_x, const uint64_t* args, int count) {
    if (count != (int)sizeof...(P)) return -2;
    if (block_x % 32 != 0 || block_x > 1024) return -3;
    gridDim = {(unsigned)grid_x, (unsigned)grid_y, 1};
    blockDim = {(unsigned)block_x, 1, 1};
    Block block(block_x, [&] { invoke(f, args, std::index_sequence_for<P...>{}); });
    emu_current = &block;
    for (int by = 0; by < grid_y; by++) {
        for (int bx = 0; bx < grid_x; bx++) {
            blockIdx = {(unsigned)bx, (unsigned)by, 0};
            if (!block.run(ascending_sweeps)) {
                emu_current = nullptr;
                return -4;
            }
        }
    }
    emu_current = nullptr;
    return 0;
}

}  // namespace

// Later launches sweep a block's threads from thread 0 up (nonzero) or from the highest index down (0, the default).
extern "C" void emu_sweep_ascending(int ascending) { ascending_sweeps = ascending != 0; }

extern "C" int emu_launch(const char* kernel, int grid_x, int grid_y, int block_x, const uint64_t* args, int count) {
    const std::string k = kernel;
    if (k == "quantize_pack_bitplanes") return run(quantize_pack_bitplanes, grid_x, grid_y, block_x, args, count);
    if (k == "region_map_threshold_then_resize") return run(region_map_threshold_then_resize, grid_x, grid_y, block_x, args, count);
    if (k == "packed_conv") return run(packed_conv, grid_x, grid_y, block_x, args, count);
    if (k == "binary_conv") return run(binary_conv, grid_x, grid_y, block_x, args, count);
    if (k == "silhouette_interpolate_nearest") return run(silhouette_interpolate_nearest, grid_x, grid_y, block_x, args, count);
    if (k == "silhouette_interpolate_bilinear") return run(silhouette_interpolate_bilinear, grid_x, grid_y, block_x, args, count);
    if (k == "silhouette_cut_keys") return run(silhouette_cut_keys, grid_x, grid_y, block_x, args, count);
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
