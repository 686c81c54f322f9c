package dev.silhouette.backend.cuda;

import dev.silhouette.graph.Op;
import dev.silhouette.graph.Op.LowBitConv2d.ActivationCodes;
import dev.silhouette.quant.LowBitWeights;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Window;

/**
 * Host glue of cuda/lowbit_igemm.cu: the packed path's {@link Op.LowBitConv2d} as an implicit GEMM on
 * INT8 tensor cores (mma.sync m16n8k32, u8 activation codes x s8 weight codes, exact int32). Two launches
 * per layer: {@code lowbit_codes} quantizes the float input to 8-bit codes (channels innermost) at each
 * pixel's region, then {@code lowbit_igemm_conv} accumulates A_r per region and applies the op's
 * epilogue, bit for bit {@code LowBitConv.run}. {@link #prepare} lays the weights out once, as the
 * kernel's B tiles. Checked bit for bit only under the host emulation; never run on a GPU.
 */
public final class LowBitIgemmKernel {
    public static final String CODES = "lowbit_codes";
    public static final String CONV = "lowbit_igemm_conv";
    public static final String REGION_TO_FLOATS = "lowbit_region_to_floats", REGION_TO_BYTES = "lowbit_region_to_bytes";
    /** igemm:: constants of lowbit_igemm.cu. */
    static final int THREADS = 128, TILE_M = 64, TILE_N = 32, TILE_K = 32, MAX_REGIONS = 4;
    static final int CODES_BLOCK = 256, CODES_MAX_BLOCKS = 8192;
    static final int ACCUMULATORS = 0, VALUES = 1;

    private final KernelLauncher launcher;

    public LowBitIgemmKernel(KernelModule module) {
        if (module == null) throw new IllegalArgumentException("kernel module is required");
        this.launcher = module::launch;
    }

    /** Launches through {@code launcher} instead of a kernel module (tests: recording, host emulation). */
    public LowBitIgemmKernel(KernelLauncher launcher) {
        this.launcher = launcher;
    }

    /**
     * One layer's constants laid out for the kernel: B tiles of every weight set (signed bytes,
     * {@code [set][group][column tile][k step][column][k]}), the per-channel weight sums the zero point
     * needs, scales {@code [set][channel]}, the regions' steps, code levels and zero point.
     */
    public record Prepared(byte[] weights, int weightSets, int[] weightSums, float[] scales, double[] steps, float[] codeSteps, int[] levels,
                           int zeroPoint, int kSteps, int nTiles) {}

    /** Why the kernel does not take {@code op} on an input of shape {@code in}, or YES. Every refused shape is named. */
    public static KernelSupport supports(Op.LowBitConv2d op, Shape in) {
        if (in.rank() != 4 || in.c() != op.conv().inChannels()) {
            throw new IllegalArgumentException("input " + in + " is not N x " + op.conv().inChannels() + " x H x W");
        }
        KernelSupport layer = supportsLayer(op);
        if (layer instanceof KernelSupport.Unsupported) return layer;
        Window win = op.conv().window();
        int regions = op.codes().regions();
        long oh = win.outH(in.h()), ow = win.outW(in.w());
        long nTiles = (op.weights().outPerGroup() + TILE_N - 1) / TILE_N;
        return KernelSupport.all(
                KernelSupport.indexable("input elements", (long) in.n() * in.c() * in.h() * in.w()),
                KernelSupport.indexable("output elements x regions", (long) in.n() * op.conv().outChannels() * oh * ow * regions),
                KernelSupport.indexable("output pixel tiles (grid x)", ((long) in.n() * oh * ow + TILE_M - 1) / TILE_M),
                (long) op.conv().groups() * nTiles > 65535
                        ? KernelSupport.no(KernelSupport.Reason.GRID_RANGE, op.conv().groups() + " groups x " + nTiles + " column tiles of " + TILE_N + " channels exceed grid y's 65535")
                        : KernelSupport.YES);
    }

    /** The refusals that do not depend on the input's size: codes, regions, offsets, accumulator range. */
    public static KernelSupport supportsLayer(Op.LowBitConv2d op) {
        LowBitWeights w = op.weights();
        Window win = op.conv().window();
        int regions = op.codes().regions();
        if (op.codes() instanceof ActivationCodes.DrqClass) {
            return KernelSupport.no(KernelSupport.Reason.ACTIVATION_GRID, "DRQ-class activation codes (per-tile sensitivity) have no CUDA kernel yet");
        }
        if (regions > MAX_REGIONS) return KernelSupport.no(KernelSupport.Reason.TOO_MANY_REGIONS, regions + " regions; the tensor-core kernel takes at most " + MAX_REGIONS);
        if (w.hasOffsets()) return KernelSupport.no(KernelSupport.Reason.BIAS_CORRECTION, "bias-correction offsets need the code sums S_r, which the kernel does not compute");
        int maxCode = 0, minWeight = 0, maxWeight = 0;
        for (int r = 0; r < regions; r++) maxCode = Math.max(maxCode, (1 << op.codes().bits(r)) - 1);
        for (short[] set : w.codes()) for (short c : set) {
            minWeight = Math.min(minWeight, c);
            maxWeight = Math.max(maxWeight, c);
        }
        if (maxCode > 255) return KernelSupport.no(KernelSupport.Reason.CODE_RANGE, "activation codes up to " + maxCode + " do not fit u8");
        if (minWeight < -128 || maxWeight > 127) {
            return KernelSupport.no(KernelSupport.Reason.CODE_RANGE, "weight codes " + minWeight + ".." + maxWeight + " do not fit s8");
        }
        long k = (long) win.taps() * w.inPerGroup();
        long bound = k * maxCode * Math.max(-minWeight, maxWeight);
        if (bound > Integer.MAX_VALUE) {
            return KernelSupport.no(KernelSupport.Reason.ACCUMULATOR_RANGE, "|A| can reach " + bound + " (" + k + " products of codes up to " + maxCode + " and weights up to "
                    + Math.max(-minWeight, maxWeight) + ")");
        }
        return KernelSupport.YES;
    }

    /** Lays out {@code op}'s weights and constants for the kernel (once per model); refuses what {@link #supportsLayer} refuses. */
    public static Prepared prepare(Op.LowBitConv2d op) {
        supportsLayer(op).require(CONV);
        LowBitWeights w = op.weights();
        int groups = op.conv().groups(), og = w.outPerGroup(), cg = w.inPerGroup(), taps = w.taps(), outC = op.conv().outChannels();
        int k = taps * cg, kSteps = (k + TILE_K - 1) / TILE_K, nTiles = (og + TILE_N - 1) / TILE_N, sets = w.regions();
        byte[] tiles = new byte[sets * groups * nTiles * kSteps * TILE_N * TILE_K];
        int[] sums = new int[outC];
        float[] scales = new float[sets * outC];
        for (int s = 0; s < sets; s++) {
            short[] codes = w.codes().get(s);
            System.arraycopy(w.scales().get(s), 0, scales, s * outC, outC);
            for (int g = 0; g < groups; g++)
                for (int o = 0; o < og; o++)
                    for (int kk = 0; kk < k; kk++) {
                        int tap = kk / cg, ch = kk % cg;
                        short code = codes[w.row(g, tap, ch) + o];
                        int tile = ((s * groups + g) * nTiles + o / TILE_N) * kSteps + kk / TILE_K;
                        tiles[(tile * TILE_N + o % TILE_N) * TILE_K + kk % TILE_K] = (byte) code;
                        if (s == 0) sums[g * og + o] += code;
                    }
        }
        int regions = op.codes().regions();
        double[] steps = new double[regions];
        float[] codeSteps = new float[regions];
        int[] levels = new int[regions];
        for (int r = 0; r < regions; r++) {
            codeSteps[r] = op.codes().step(r);
            steps[r] = codeSteps[r];
            levels[r] = (1 << op.codes().bits(r)) - 1;
        }
        return new Prepared(tiles, sets, sums, scales, steps, codeSteps, levels, op.codes().zeroPoint(), kSteps, nTiles);
    }

    /** Bytes of the code buffer {@link #launchCodes} writes: one per input element. */
    public static long codeBytes(Shape in) {
        return (long) in.n() * in.c() * in.h() * in.w();
    }

    /**
     * Quantizes {@code x} (float NCHW) into {@code codes}. {@code region} (bytes, N x H x W) may be 0 for one
     * grid; {@code codeSteps} and {@code levels} are device copies of {@link Prepared#codeSteps()} and {@link Prepared#levels()}.
     */
    public void launchCodes(Shape in, long x, long region, long codeSteps, long levels, int zeroPoint, long codes, CudaStream s) {
        KernelSupport.addresses(CODES, "x", x, "code steps", codeSteps, "levels", levels, "codes", codes);
        long total = codeBytes(in);
        if (total == 0) return;
        int grid = (int) Math.min(CODES_MAX_BLOCKS, (total + CODES_BLOCK - 1) / CODES_BLOCK);
        launcher.launch(CODES, grid, 1, CODES_BLOCK, 0, s, x, in.n(), in.c(), in.h(), in.w(), region, codeSteps, levels, zeroPoint, codes);
    }

    /** Converts a region map between the graph's floats and the kernels' bytes ({@code toFloats}: bytes to floats). */
    public void launchRegionConversion(long from, long to, long count, boolean toFloats, CudaStream s) {
        KernelSupport.addresses(toFloats ? REGION_TO_FLOATS : REGION_TO_BYTES, "from", from, "to", to);
        if (count == 0) return;
        int grid = (int) Math.min(CODES_MAX_BLOCKS, (count + CODES_BLOCK - 1) / CODES_BLOCK);
        launcher.launch(toFloats ? REGION_TO_FLOATS : REGION_TO_BYTES, grid, 1, CODES_BLOCK, 0, s, from, to, count);
    }

    /** Device addresses of one layer's {@link Prepared} constants and its bias (0: none). */
    public record Constants(long weights, long weightSums, long scales, long steps, long bias) {}

    /**
     * Accumulates and writes: {@code accumulators} != 0 gets A_r as int32 at (((n O + o) OH + oy) OW + ox) R + r
     * (LowBitConv.Accumulators' layout), else {@code y} gets the op's float output NCHW.
     */
    public void launchConv(Op.LowBitConv2d op, Shape in, Prepared p, Constants c, long codes, long region, long accumulators, long y, CudaStream s) {
        supports(op, in).require(CONV);
        KernelSupport.addresses(CONV, "codes", codes, "weights", c.weights(), "weight sums", c.weightSums(), "scales", c.scales(), "steps", c.steps());
        if ((accumulators == 0) == (y == 0)) throw new IllegalArgumentException(CONV + ": give exactly one of the accumulator and the value outputs");
        if (op.codes().regions() > 1 && region == 0) throw new IllegalArgumentException(CONV + ": " + op.codes().regions() + " regions need a region map");
        Window win = op.conv().window();
        int oh = win.outH(in.h()), ow = win.outW(in.w());
        long pixels = (long) in.n() * oh * ow;
        if (pixels == 0) return;
        int gridX = (int) ((pixels + TILE_M - 1) / TILE_M), gridY = op.conv().groups() * p.nTiles();
        launcher.launch(CONV, gridX, gridY, THREADS, 0, s, codes, region, op.codes().regions(), c.weights(), p.weightSets(), c.weightSums(), p.zeroPoint(),
                in.n(), in.c(), in.h(), in.w(), op.conv().groups(), op.conv().outPerGroup(), win.kernelH(), win.kernelW(), win.strideH(), win.strideW(),
                win.padH(), win.padW(), win.dilationH(), win.dilationW(), oh, ow, p.kSteps(), p.nTiles(),
                accumulators != 0 ? ACCUMULATORS : VALUES, accumulators, c.scales(), c.steps(), c.bias(), y);
    }
}
