package dev.silhouette.backend.cuda;

import dev.silhouette.quant.PackedLayout;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Window;

/**
 * Host glue of cuda/binary_mma.cu: BinaryNet's XNOR sums on single-bit tensor cores (mma.sync m16n8k256
 * AND-popc), the same output as {@link BinaryConvKernel#launchSums}. The folded and frozen epilogues stay
 * on binary_conv. Checked bit for bit only under the host emulation; never run on a GPU.
 */
public final class BinaryMmaKernel {
    public static final String NAME = "binary_mma_conv";
    static final int THREADS = 128, TILE_M = 64, TILE_N = 32, STEP_WORDS = 4;

    private final KernelLauncher launcher;

    public BinaryMmaKernel(KernelModule module) {
        if (module == null) throw new IllegalArgumentException("kernel module is required");
        this.launcher = module::launch;
    }

    /** Launches through {@code launcher} instead of a kernel module (tests: the host emulation). */
    public BinaryMmaKernel(KernelLauncher launcher) {
        this.launcher = launcher;
    }

    /** Why the kernel does not take the problem, or YES. */
    public static KernelSupport supports(Shape in, Shape weights, Window win) {
        long oh = win.outH(in.h()), ow = win.outW(in.w()), tiles = (weights.dim(0) + TILE_N - 1) / TILE_N;
        return KernelSupport.all(
                KernelSupport.indexable("output elements", (long) in.n() * weights.dim(0) * oh * ow),
                KernelSupport.indexable("output pixel tiles (grid x)", ((long) in.n() * oh * ow + TILE_M - 1) / TILE_M),
                tiles > 65535 ? KernelSupport.no(KernelSupport.Reason.GRID_RANGE, tiles + " column tiles of " + TILE_N + " channels exceed grid y's 65535") : KernelSupport.YES);
    }

    /** k steps of 256 bits over the taps' channel words. */
    static int kSteps(Shape weights, Window win) {
        int words = new PackedLayout.BitPlanes(1, weights.dim(1)).words();
        return (win.taps() * words + STEP_WORDS - 1) / STEP_WORDS;
    }

    /**
     * The weight tiles the kernel reads (prepared once): per column tile and k step, 32 columns x 8 32-bit
     * halves of the k words, from BinaryNet.packWeights' bit planes {@code w} of an O x C x KH x KW kernel.
     */
    public static int[] tiles(long[] w, Shape weights, Window win) {
        int out = weights.dim(0), words = new PackedLayout.BitPlanes(1, weights.dim(1)).words(), taps = win.taps();
        int steps = kSteps(weights, win), tileCount = (out + TILE_N - 1) / TILE_N;
        if (w.length != out * taps * words) throw new IllegalArgumentException(w.length + " weight words for " + weights + " (" + out * taps * words + " expected)");
        int[] t = new int[tileCount * steps * TILE_N * 8];
        for (int o = 0; o < out; o++)
            for (int k = 0; k < taps * words; k++) {
                long word = w[o * taps * words + k];   // position (o, tap) then word: k = tap * words + word
                int base = (((o / TILE_N) * steps + k / STEP_WORDS) * TILE_N + o % TILE_N) * 8 + 2 * (k % STEP_WORDS);
                t[base] = (int) word;
                t[base + 1] = (int) (word >>> 32);
            }
        return t;
    }

    /** Queues the sums d (int32, N x O x OH x OW) of bit-packed x against the {@link #tiles} at {@code wTiles}. */
    public void launchSums(Shape in, Shape weights, Window win, long x, long wTiles, long out, CudaStream s) {
        supports(in, weights, win).require(NAME);
        KernelSupport.addresses(NAME, "x", x, "weight tiles", wTiles, "sums", out);
        int oh = win.outH(in.h()), ow = win.outW(in.w());
        long pixels = (long) in.n() * oh * ow;
        if (pixels == 0) return;
        launcher.launch(NAME, (int) ((pixels + TILE_M - 1) / TILE_M), (weights.dim(0) + TILE_N - 1) / TILE_N, THREADS, 0, s,
                x, wTiles, in.n(), in.c(), in.h(), in.w(), weights.dim(0), win.kernelH(), win.kernelW(), win.strideH(), win.strideW(),
                win.padH(), win.padW(), win.dilationH(), win.dilationW(), oh, ow, kSteps(weights, win), out);
    }
}
