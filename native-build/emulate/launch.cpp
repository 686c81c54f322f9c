// Every kernel of cuda/ compiled for the host (cuda_emulation.h), plus the planted faults that prove the
// emulation's checks (planted_faults.cu), behind one C entry point that takes a launch as
// KernelModule.launch describes it: kernel name, grid, block, and the arguments in 64-bit slots
// (pointers as host addresses, ints sign-extended, floats as their bit patterns, a by-value struct as
// the address of its bytes).
#include "cuda_emulation.h"

#include <ucontext.h>

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "binary_conv.cu"
#include "binary_mma.cu"
#include "lowbit_igemm.cu"
#include "ops_elementwise.cu"
#include "ops_fallback.cu"
#include "ops_pool.cu"
#include "ops_resize.cu"
#include "packed_conv.cu"
#include "quantize_pack.cu"
#include "region_masks.cu"
#include "region_ops.cu"
#include "silhouette_threshold.cu"
#include "planted_faults.cu"

// The linker's bounds of the emu_shared section (cuda_emulation.h's __shared__).
extern "C" char __start_emu_shared[] __attribute__((weak));
extern "C" char __stop_emu_shared[] __attribute__((weak));

namespace {

template <typename T>
T from_slot(uint64_t v) {
    if constexpr (std::is_pointer_v<T>) {
        return reinterpret_cast<T>(v);
    } else if constexpr (std::is_same_v<T, float>) {
        return emu_value<float>((uint32_t)v);
    } else if constexpr (std::is_same_v<T, double>) {
        return emu_value<double>(v);
    } else if constexpr (std::is_class_v<T>) {
        T s;
        std::memcpy(&s, reinterpret_cast<const void*>(v), sizeof(T));
        return s;
    } else {
        return (T)(int64_t)v;
    }
}

template <typename... P, size_t... I>
void invoke(void (*f)(P...), const uint64_t* a, std::index_sequence<I...>) {
    f(from_slot<P>(a[I])...);
}

std::string last_error;

// One block's threads as coroutines on this thread. A thread runs until it finishes or waits at a
// barrier; sweeps over the threads run every ready one, and a barrier opens when all the threads it
// waits for have arrived. Sweeps go from the highest thread index down by default, so a thread 0 that
// prepares shared state for the others runs after them and a barrier missing between its writes and
// their reads gives a wrong answer instead of passing by luck; ascending sweeps turn the order round
// for the opposite case (others write, thread 0 reads). A sweep in which nothing ran and nothing
// opened is a deadlock (threads waiting at different barriers).
class Block final : public emu_block {
  public:
    Block(int threads, std::function<void()> body)
        : threads_(threads), contexts_(threads), state_(threads), mask_(threads), stacks_(threads), body_(std::move(body)) {
        for (auto& stack : stacks_) stack.reset(new char[STACK_BYTES]);
    }

    // Runs one block (blockIdx set by the caller) to the end; 0, or a launch error code with last_error set.
    int run(bool ascending) {
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
        std::fill(std::begin(waiting_), std::end(waiting_), 0);
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
            progressed = open_warp_barriers() > 0 || progressed;
            if (!progressed && finished < threads_) {
                if (const int rc = mask_error(); rc != 0) return rc;
                last_error = "deadlock: threads of block (" + std::to_string(blockIdx.x) + ", " + std::to_string(blockIdx.y)
                             + ") wait at different barriers";
                return -4;
            }
        }
        return 0;
    }

    void block_barrier() override {
        state_[current_] = AT_BLOCK;
        at_block_++;
        yield();
    }

    void warp_barrier(unsigned mask) override {
        state_[current_] = AT_WARP;
        mask_[current_] = mask;
        waiting_[current_ / 32]++;
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

    std::string where(int t) const {
        return "thread " + std::to_string(t) + " (warp " + std::to_string(t / 32) + ", lane " + std::to_string(t % 32) + ") of block ("
               + std::to_string(blockIdx.x) + ", " + std::to_string(blockIdx.y) + ")";
    }

    // Opens every warp collective whose mask's lanes have all arrived with that mask; the number opened.
    // Only warps with a waiting lane are looked at, so a sweep costs O(threads) however many collectives run.
    int open_warp_barriers() {
        int opened = 0;
        for (int w = 0; w * 32 < threads_; w++) {
            if (waiting_[w] == 0) continue;
            for (int t = w * 32; t < std::min(threads_, w * 32 + 32); t++) {
                if (state_[t] != AT_WARP) continue;
                const unsigned mask = mask_[t];
                if (__builtin_popcount(mask) > waiting_[w]) continue;
                bool all = true;
                for (int lane = 0; lane < 32 && all; lane++) {
                    const int u = w * 32 + lane;
                    if ((mask >> lane & 1u) && (u >= threads_ || state_[u] != AT_WARP || mask_[u] != mask)) all = false;
                }
                if (!all) continue;
                for (int lane = 0; lane < 32; lane++) {
                    if (mask >> lane & 1u) state_[w * 32 + lane] = READY;
                }
                waiting_[w] -= __builtin_popcount(mask);
                opened++;
            }
        }
        return opened;
    }

    // When nothing can run: the waiting lane whose mask omits it or names a lane that exited or does not
    // exist (an error code with last_error set), or 0 when the block is simply deadlocked.
    int mask_error() {
        for (int t = 0; t < threads_; t++) {
            if (state_[t] != AT_WARP) continue;
            const unsigned mask = mask_[t];
            const int base = t - t % 32;
            if (!(mask >> (t % 32) & 1u)) {
                last_error = where(t) + " called a warp collective with mask " + hex(mask) + ", which omits it";
                return -5;
            }
            for (int lane = 0; lane < 32; lane++) {
                const int u = base + lane;
                if ((mask >> lane & 1u) && (u >= threads_ || state_[u] == DONE)) {
                    last_error = where(t) + " waits in a warp collective with mask " + hex(mask) + " for lane " + std::to_string(lane)
                                 + (u >= threads_ ? ", which the block does not have" : ", which has exited");
                    return -5;
                }
            }
        }
        return 0;
    }

    static std::string hex(unsigned v) {
        char b[16];
        std::snprintf(b, sizeof b, "0x%08x", v);
        return b;
    }

    int threads_;
    std::vector<ucontext_t> contexts_;
    std::vector<State> state_;
    std::vector<unsigned> mask_;
    std::vector<std::unique_ptr<char[]>> stacks_;
    ucontext_t scheduler_{};
    std::function<void()> body_;
    int current_ = 0, at_block_ = 0;
    int waiting_[32] = {};  // per warp: lanes waiting in a collective
};

struct Settings {
    uint64_t block_order_seed = 0;  // 0: blocks in grid order; else a permutation drawn from this seed
    bool ascending = false;
    bool poison_shared = true;
};
Settings settings;

// Runs every block of the grid, in order or shuffled, all threads of a block as coroutines (Block).
template <typename... P>
int run(void (*f)(P...), int grid_x, int grid_y, int block_x, const uint64_t* args, int count) {
    if (count != (int)sizeof...(P)) {
        last_error = std::to_string(count) + " arguments, the kernel takes " + std::to_string(sizeof...(P));
        return -2;
    }
    if (block_x < 1 || block_x > 1024 || grid_x < 1 || grid_y < 1 || grid_y > 65535) {
        last_error = "grid " + std::to_string(grid_x) + "x" + std::to_string(grid_y) + ", block " + std::to_string(block_x) + " is not a valid launch";
        return -3;
    }
    gridDim = {(unsigned)grid_x, (unsigned)grid_y, 1};
    blockDim = {(unsigned)block_x, 1, 1};
    std::vector<std::pair<int, int>> order;
    order.reserve((size_t)grid_x * grid_y);
    for (int by = 0; by < grid_y; by++)
        for (int bx = 0; bx < grid_x; bx++) order.emplace_back(bx, by);
    if (settings.block_order_seed != 0) {
        std::mt19937_64 random(settings.block_order_seed);
        std::shuffle(order.begin(), order.end(), random);
    }
    Block block(block_x, [&] { invoke(f, args, std::index_sequence_for<P...>{}); });
    emu_current = &block;
    int rc = 0;
    for (auto [bx, by] : order) {
        blockIdx = {(unsigned)bx, (unsigned)by, 0};
        if (settings.poison_shared && __start_emu_shared != nullptr) {
            std::memset(__start_emu_shared, EMU_POISON_BYTE, (size_t)(__stop_emu_shared - __start_emu_shared));
        }
        rc = block.run(settings.ascending);
        if (rc != 0) break;
    }
    emu_current = nullptr;
    return rc;
}

using Runner = std::function<int(int, int, int, const uint64_t*, int)>;

template <typename... P>
Runner runner(void (*f)(P...)) {
    return [f](int gx, int gy, int bx, const uint64_t* a, int n) { return run(f, gx, gy, bx, a, n); };
}

const std::map<std::string, Runner>& kernels() {
#define K(name) {#name, runner(name)}
    static const std::map<std::string, Runner> table = {
        K(quantize_pack_bitplanes), K(region_map_threshold_then_resize), K(packed_conv), K(binary_conv), K(binary_mma_conv),
        K(lowbit_codes), K(lowbit_igemm_conv), K(lowbit_region_to_floats), K(lowbit_region_to_bytes),
        K(silhouette_interpolate_nearest), K(silhouette_interpolate_bilinear), K(silhouette_copy_strided), K(silhouette_pad),
        K(silhouette_cut_keys), K(silhouette_region_map),
        K(region_pact_quantize), K(region_quantize_by_map), K(region_drq_block_means), K(region_drq_quantize),
        K(region_squeeze_channel_scores), K(region_squeeze_top_channels), K(region_squeeze_channels), K(region_squeeze_range),
        K(region_squeeze_rescale), K(region_noise_image_hash), K(region_noise_silhouette), K(region_logit_blend),
        K(silhouette_relu), K(silhouette_clip), K(silhouette_sigmoid), K(silhouette_add), K(silhouette_channel_affine),
        K(silhouette_bias_add), K(silhouette_broadcast_arithmetic), K(silhouette_hard_sigmoid), K(silhouette_hard_swish),
        K(silhouette_max_pool), K(silhouette_avg_pool), K(silhouette_global_avg_pool), K(silhouette_softmax), K(silhouette_softmax_block),
        K(silhouette_conv2d_direct), K(silhouette_sgemm_nt),
        K(planted_oob_read), K(planted_uninitialised_shared), K(planted_barrier), K(planted_previous_block), K(planted_exited_lane),
    };
#undef K
    return table;
}

}  // namespace

// Later launches: blocks in an order drawn from `block_order_seed` (0: grid order), a block's threads swept
// from thread 0 up (ascending nonzero) or from the highest index down, shared memory poisoned at each
// block's start (poison_shared nonzero) or left as the previous block left it.
extern "C" void emu_configure(uint64_t block_order_seed, int ascending, int poison_shared) {
    settings = {block_order_seed, ascending != 0, poison_shared != 0};
}

// Kept for older callers: only the sweep order.
extern "C" void emu_sweep_ascending(int ascending) { settings.ascending = ascending != 0; }

// What the last failed launch did wrong, in words.
extern "C" const char* emu_last_error() { return last_error.c_str(); }

// 0, or: -1 unknown kernel, -2 argument count, -3 grid or block, -4 deadlock, -5 a warp collective's mask
// names an exited or missing lane or omits its caller (emu_last_error says which).
extern "C" int emu_launch(const char* kernel, int grid_x, int grid_y, int block_x, const uint64_t* args, int count) {
    last_error.clear();
    const auto& table = kernels();
    const auto found = table.find(kernel);
    if (found == table.end()) {
        last_error = std::string("no kernel named ") + kernel;
        return -1;
    }
    return found->second(grid_x, grid_y, block_x, args, count);
}
