package dev.silhouette.backend.cuda;

import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Shape;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Optional;

/**
 * Host glue of the region-quantization graph ops (cuda/region_ops.cu): {@link Op.PactQuantize},
 * {@link Op.RegionQuantize}, {@link Op.DrqQuantize}, {@link Op.ChannelSqueeze}, {@link Op.NoiseSilhouette}
 * and {@link Op.LogitBlend}, each the sequence of launches that computes the CPU backend's result
 * ({@code RegionOps}, {@code CpuOps.logitBlend}) bit for bit. The region maps of RegionQuantize come from
 * {@link RegionMaskKernel}. Arguments are device addresses; temporaries come from a {@link Work} the
 * caller frees once the launches are queued (the backend's pool reuses memory in stream order).
 */
public final class RegionOpKernels {
    public static final String PACT = "region_pact_quantize";
    public static final String BY_MAP = "region_quantize_by_map";
    public static final String DRQ_MEANS = "region_drq_block_means";
    public static final String DRQ = "region_drq_quantize";
    public static final String SCORES = "region_squeeze_channel_scores";
    public static final String TOP = "region_squeeze_top_channels";
    public static final String SQUEEZE = "region_squeeze_channels";
    public static final String RANGE = "region_squeeze_range";
    public static final String RESCALE = "region_squeeze_rescale";
    public static final String HASH = "region_noise_image_hash";
    public static final String NOISE = "region_noise_silhouette";
    public static final String BLEND = "region_logit_blend";
    /** Every entry point of region_ops.cu that this class launches. */
    public static final List<String> KERNELS = List.of(PACT, BY_MAP, DRQ_MEANS, DRQ, SCORES, TOP, SQUEEZE, RANGE, RESCALE, HASH, NOISE, BLEND);

    static final int BLOCK = 256;
    static final int MAX_BLOCKS = 8192;

    /** Device memory for one op's temporaries: at least {@code bytes}, aligned for doubles. */
    @FunctionalInterface
    public interface Work {
        long allocate(long bytes, String what);
    }

    /**
     * A RegionQuantize node's constants on the device: each region's share of the pixels (ints), width
     * (ints) and clip level (floats), laid out by {@link #tableBytes}.
     */
    public record RegionTable(long shares, long bits, long alphas) {}

    private final KernelLauncher launcher;
    private final RegionMaskKernel masks;

    public RegionOpKernels(KernelModule module) {
        if (module == null) throw new IllegalArgumentException("kernel module is required");
        this.launcher = module::launch;
        this.masks = new RegionMaskKernel(module);
    }

    /** Launches through {@code launcher} and resizes through {@code resize} (tests: recording, host emulation). */
    public RegionOpKernels(KernelLauncher launcher, KernelLauncher.Resize resize) {
        this.launcher = launcher;
        this.masks = new RegionMaskKernel(launcher, resize);
    }

    /**
     * The device bytes of a {@link RegionTable} (what the backend uploads once per graph): shares and
     * widths as little-endian ints, clip levels as little-endian floats.
     */
    public static byte[][] tableBytes(Op.RegionQuantize op) {
        int regions = op.policy().regions().size();
        ByteBuffer shares = ByteBuffer.allocate(regions * Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (int share : op.policy().percents()) shares.putInt(share);
        ByteBuffer bits = ByteBuffer.allocate(regions * Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer alphas = ByteBuffer.allocate(regions * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (int r = 0; r < regions; r++) {
            bits.putInt(op.policy().bits(r));
            alphas.putFloat(op.alphas().get(r));
        }
        return new byte[][] {shares.array(), bits.array(), alphas.array()};
    }

    /**
     * CpuOps.logitBlend's gate g = sigmoid(w), rounded once to float, computed on the host the same way
     * so the device blend is bit-identical (CUDA's exp may differ from Math.exp in the last bit).
     */
    public static float gate(float w) {
        return (float) (1.0 / (1.0 + Math.exp(-w)));
    }

    /** Empty when these kernels take {@code op} on inputs of these shapes, else why not (BuiltinKernels' form). */
    public static Optional<BuiltinKernels.Unsupported> supports(Op op, List<Shape> inputs) {
        try {
            switch (op) {
                case Op.PactQuantize q -> indexable("elements", inputs.getFirst().size());
                case Op.RegionQuantize q -> checkRegion(inputs.getFirst(), inputs.get(1), q);
                case Op.DrqQuantize q -> checkDrq(inputs.getFirst());
                case Op.ChannelSqueeze q -> checkSqueeze(inputs.getFirst(), q);
                case Op.NoiseSilhouette q -> checkNoise(inputs.getFirst());
                case Op.LogitBlend q -> checkBlend(inputs.getFirst(), inputs.get(1));
                default -> {
                    return Optional.of(new BuiltinKernels.Unsupported(BuiltinKernels.Limit.NO_KERNEL, op + " is not a region-quantization op"));
                }
            }
            return Optional.empty();
        } catch (IllegalArgumentException e) {
            BuiltinKernels.Limit limit = e.getMessage().contains("2^31") ? BuiltinKernels.Limit.INDEX_RANGE : BuiltinKernels.Limit.SHAPE;
            return Optional.of(new BuiltinKernels.Unsupported(limit, op + ": " + e.getMessage()));
        }
    }

    /** Op.PactQuantize of {@code count} floats at x into y. */
    public void pactQuantize(long x, long y, long count, Op.PactQuantize op, CudaStream stream) {
        indexable("elements", count);
        if (count == 0) return;
        KernelSupport.addresses(PACT, "input", x, "output", y);
        launcher.launch(PACT, grid(count), 1, BLOCK, 0, stream, x, count, op.bits(), op.alpha(), y);
    }

    /**
     * Op.RegionQuantize of activations x (N x C x H x W) by silhouette s (N x 1 x h x w) into y: the layer's
     * region map (RegionMaskKernel, in the op's resize mode and order), then each element at its pixel's
     * region width and clip level. {@code table} holds the op's constants on the device.
     */
    public void regionQuantize(long x, Shape xs, long silhouette, Shape ss, Op.RegionQuantize op, RegionTable table, Work work, long y, CudaStream stream) {
        checkRegion(xs, ss, op);
        if (xs.size() == 0) return;
        KernelSupport.addresses(BY_MAP, "activations", x, "silhouette", silhouette, "region widths", table.bits(), "clip levels", table.alphas(),
                "output", y);
        int[] shares = op.policy().percents();
        int h = xs.h(), w = xs.w();
        long region = work.allocate((long) xs.n() * h * w, "region map");
        long cutKeys = work.allocate((long) ss.n() * Math.max(1, shares.length - 1) * Long.BYTES, "cut keys");
        long resizeFloats = RegionMaskKernel.workFloats(ss, h, w, op.order());
        long resized = resizeFloats == 0 ? 0 : work.allocate(resizeFloats * Float.BYTES, "resized silhouette");
        masks.launch(ss, silhouette, shares, table.shares(), h, w, op.resize(), op.order(), resized, cutKeys, region, stream);
        launcher.launch(BY_MAP, grid(xs.size()), 1, BLOCK, 0, stream, x, xs.n(), xs.c(), h * w, region, table.bits(), table.alphas(),
                op.onlyRegion(), y);
    }

    /** Op.DrqQuantize of x (N x C x H x W) into y: the block means of every channel, then each element at its block's width. */
    public void drqQuantize(long x, Shape xs, Op.DrqQuantize op, Work work, long y, CudaStream stream) {
        checkDrq(xs);
        if (xs.size() == 0) return;
        KernelSupport.addresses(DRQ, "input", x, "output", y);
        int planes = xs.n() * xs.c();
        long tiles = (long) planes * ceilDiv(xs.h(), op.block()) * ceilDiv(xs.w(), op.block());
        long means = work.allocate(tiles * Float.BYTES, "DRQ block means");
        launcher.launch(DRQ_MEANS, grid(tiles), 1, BLOCK, 0, stream, x, planes, xs.h(), xs.w(), op.block(), means);
        launcher.launch(DRQ, grid(xs.size()), 1, BLOCK, 0, stream, x, means, planes, xs.h(), xs.w(), op.block(), op.threshold(), op.lowBits(),
                op.lowAlpha(), op.highBits(), op.highAlpha(), op.onlyRegion(), y);
    }

    /** Op.ChannelSqueeze of x (N x C x H x W) into y (N x 1 x H x W): statistics and ranks for top-k, the squeeze, the per-image rescale. */
    public void channelSqueeze(long x, Shape xs, Op.ChannelSqueeze op, Work work, long y, CudaStream stream) {
        checkSqueeze(xs, op);
        int n = xs.n(), c = xs.c(), plane = xs.h() * xs.w();
        if (n == 0) return;
        KernelSupport.addresses(SQUEEZE, "input", x, "output", y);
        boolean topK = op.mode() == Op.ChannelSqueeze.Squeeze.TOP_K_BY_MEAN || op.mode() == Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD;
        long chosen = 0;
        int k = c;
        if (topK) {
            k = op.k();
            long scores = work.allocate((long) n * c * Double.BYTES, "channel scores");
            chosen = work.allocate((long) n * k * Integer.BYTES, "chosen channels");
            launcher.launch(SCORES, grid((long) n * c), 1, BLOCK, 0, stream, x, n, c, plane, op.mode() == Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD ? 1 : 0,
                    scores);
            launcher.launch(TOP, grid((long) n * c), 1, BLOCK, 0, stream, scores, n, c, k, chosen);
        }
        launcher.launch(SQUEEZE, grid((long) n * plane), 1, BLOCK, 0, stream, x, n, c, plane, chosen, k,
                op.mode() == Op.ChannelSqueeze.Squeeze.MAX ? 1 : 0, y);
        long range = work.allocate(2L * n * Float.BYTES, "value ranges");
        launcher.launch(RANGE, grid(n), 1, BLOCK, 0, stream, y, n, plane, range);
        launcher.launch(RESCALE, grid((long) n * plane), 1, BLOCK, 0, stream, y, n, plane, range);
    }

    /** Op.NoiseSilhouette of x (N x C x H x W) into y (N x 1 x H x W). */
    public void noiseSilhouette(long x, Shape xs, Op.NoiseSilhouette op, Work work, long y, CudaStream stream) {
        noiseSilhouette(x, xs, x, xs, op, work, y, stream);
    }

    /** Op.NoiseSilhouette at x's size (N x C x H x W), each image's draw seeded by the hash of its values in seedSource. */
    public void noiseSilhouette(long x, Shape xs, long seedSource, Shape seedShape, Op.NoiseSilhouette op, Work work, long y, CudaStream stream) {
        checkNoise(xs);
        int n = xs.n(), plane = xs.h() * xs.w();
        if (n == 0) return;
        KernelSupport.addresses(NOISE, "input", x, "output", y);
        long hash = work.allocate((long) n * Integer.BYTES, "image hashes");
        launcher.launch(HASH, grid(n), 1, BLOCK, 0, stream, seedSource, n, seedShape.sampleSize(), hash);
        launcher.launch(NOISE, grid((long) n * plane), 1, BLOCK, 0, stream, hash, n, plane, op.seed(), y);
    }

    /** Op.LogitBlend of {@code count} logits: y = g main + (1 - g) aux with g = {@link #gate}(w). */
    public void logitBlend(long main, long aux, long y, long count, float w, CudaStream stream) {
        indexable("logits", count);
        if (count == 0) return;
        KernelSupport.addresses(BLEND, "main logits", main, "auxiliary logits", aux, "output", y);
        launcher.launch(BLEND, grid(count), 1, BLOCK, 0, stream, main, aux, count, gate(w), y);
    }

    // Checks: bad shapes are refused with what was given; counts the kernels keep in 32 bits must stay below 2^31.

    private static void checkRegion(Shape x, Shape silhouette, Op.RegionQuantize op) {
        nchw("region quantization activations", x);
        if (silhouette.rank() != 4 || silhouette.n() != x.n()) {
            throw new IllegalArgumentException("silhouette " + silhouette + " does not match activations " + x);
        }
        RegionMaskKernel.validate(silhouette, op.policy().percents(), x.h(), x.w());
        indexable("activations per image", (long) x.c() * x.h() * x.w());
    }

    private static void checkDrq(Shape x) {
        nchw("DRQ input", x);
        indexable("planes", (long) x.n() * x.c());
        indexable("plane", (long) x.h() * x.w());
    }

    private static void checkSqueeze(Shape x, Op.ChannelSqueeze op) {
        nchw("channel squeeze input", x);
        boolean topK = op.mode() == Op.ChannelSqueeze.Squeeze.TOP_K_BY_MEAN || op.mode() == Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD;
        if (topK && op.k() > x.c()) {
            throw new IllegalArgumentException("channel squeeze top-" + op.k() + " of a feature map with " + x.c() + " channels; k must be at most " + x.c());
        }
        indexable("images x channels", (long) x.n() * x.c());
        indexable("plane", (long) x.h() * x.w());
    }

    private static void checkNoise(Shape x) {
        nchw("noise silhouette input", x);
        indexable("values per image", x.sampleSize());
    }

    private static void checkBlend(Shape main, Shape aux) {
        if (!main.equals(aux)) throw new IllegalArgumentException("logit blend of " + main + " and " + aux + ": the shapes must be equal");
        indexable("logits", main.size());
    }

    private static void nchw(String what, Shape s) {
        if (s.rank() != 4) throw new IllegalArgumentException(what + " must be N x C x H x W, got " + s);
    }

    private static void indexable(String what, long value) {
        KernelSupport.indexable(what, value).require("region ops");
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    private static int grid(long threads) {
        return (int) Math.max(1, Math.min(MAX_BLOCKS, (threads + BLOCK - 1) / BLOCK));
    }
}
