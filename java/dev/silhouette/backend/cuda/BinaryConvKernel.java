package dev.silhouette.backend.cuda;

import dev.silhouette.tensor.Window;
import dev.silhouette.quant.BinaryNet;
import dev.silhouette.quant.ChannelAffine;
import dev.silhouette.quant.PackedLayout;
import dev.silhouette.tensor.Shape;

/**
 * The binary convolution ({@code binary_conv}, binary_conv.cu): XNOR-popcount over 1-bit planes of +-1
 * activations and weights (+1 as bit 1), as {@link BinaryNet#xnorConv}, writing the exact sums d, or the
 * folded BatchNorm's floats s_o d + t_o ({@link BinaryNet#fold}), or the frozen layer's signs
 * ({@link BinaryNet.Frozen}) as the next binary layer's 1-bit planes.
 */
public final class BinaryConvKernel {
    public static final String KERNEL = "binary_conv";
    static final int PIXELS_PER_BLOCK = 8;
    static final int THREADS = PIXELS_PER_BLOCK * 32;

    private final KernelLauncher launcher;

    public BinaryConvKernel(KernelModule module) {
        if (module == null) throw new IllegalArgumentException("kernel module is required");
        this.launcher = module::launch;
    }

    /** Launches through {@code launcher} instead of a kernel module (tests: recording, host emulation). */
    public BinaryConvKernel(KernelLauncher launcher) {
        this.launcher = launcher;
    }

    /** The binary layer as a 1-bit problem of the packed kernel's shape rules (its limits are the same or looser). */
    static PackedConvKernel.Problem problem(Shape input, Shape weights, Window window) {
        return new PackedConvKernel.Problem(input, weights, window, RegionWidths.uniform(1, 1f), 1, false);
    }

    /** |d| is at most taps x channels; otherwise the limits of the grid and of 32-bit counts. */
    public static KernelSupport supports(Shape input, Shape weights, Window window) {
        return PackedConvKernel.supports(problem(input, weights, window), null);
    }

    /** Output kinds: 0 sums, 1 folded floats, 2 frozen 1-bit planes (binary_conv_config). */
    private void launch(Shape input, Shape weights, Window window, long x, long w, int mode, long sums, long scale, long shift, long values,
                        long threshold, long flip, long packed, CudaStream stream) {
        supports(input, weights, window).require(KERNEL);
        Shape out = problem(input, weights, window).output();
        long pixels = (long) out.n() * out.h() * out.w();
        if (pixels == 0) return;
        int gridX = (int) ((pixels + PIXELS_PER_BLOCK - 1) / PIXELS_PER_BLOCK);
        int gridY = 2 * new PackedLayout.BitPlanes(1, out.c()).words();
        launcher.launch(KERNEL, gridX, gridY, THREADS, 0, stream, x, w, input.n(), input.c(), input.h(), input.w(), out.c(),
                window.kernelH(), window.kernelW(), window.strideH(), window.strideW(), window.padH(), window.padW(),
                window.dilationH(), window.dilationW(), out.h(), out.w(), mode, sums, scale, shift, values, threshold, flip, packed);
    }

    /** Queues d into {@code sums} (int32 NCHW). */
    public void launchSums(Shape input, Shape weights, Window window, long x, long w, long sums, CudaStream stream) {
        KernelSupport.addresses(KERNEL, "activations", x, "weights", w, "sums", sums);
        launch(input, weights, window, x, w, 0, sums, 0, 0, 0, 0, 0, 0, stream);
    }

    /** Queues scale_o d + shift_o into {@code values} (float NCHW). */
    public void launchFolded(Shape input, Shape weights, Window window, long x, long w, long scale, long shift, long values, CudaStream stream) {
        KernelSupport.addresses(KERNEL, "activations", x, "weights", w, "scales", scale, "shifts", shift, "values", values);
        launch(input, weights, window, x, w, 1, 0, scale, shift, values, 0, 0, 0, stream);
    }

    /** Queues the frozen signs into {@code packed} (1-bit planes over the output channels); {@code flip} is one int 0/1 per channel. */
    public void launchFrozen(Shape input, Shape weights, Window window, long x, long w, long threshold, long flip, long packed, CudaStream stream) {
        KernelSupport.addresses(KERNEL, "activations", x, "weights", w, "thresholds", threshold, "flips", flip, "packed output", packed);
        launch(input, weights, window, x, w, 2, 0, 0, 0, 0, threshold, flip, packed, stream);
    }

    // Synchronous host forms (conformance tests, tools); x and w as BinaryNet.packActivations / packWeights give them.

    public int[] sums(CudaContext context, Shape input, Shape weights, Window window, long[] x, long[] w) {
        PackedConvKernel.Problem p = checked(input, weights, window, x, w);
        try (DeviceScratch s = new DeviceScratch(context); CudaStream stream = new CudaStream()) {
            long out = s.allocate((long) p.output().size() * Integer.BYTES, "sums");
            launchSums(input, weights, window, s.upload(x, "packed activations"), s.upload(w, "packed weights"), out, stream);
            s.synchronize(KERNEL + " (sums) on " + input + " * " + weights);
            return s.downloadInts(out, p.output().size(), "sums");
        }
    }

    public float[] folded(CudaContext context, Shape input, Shape weights, Window window, long[] x, long[] w, ChannelAffine folded) {
        PackedConvKernel.Problem p = checked(input, weights, window, x, w);
        if (folded.scale().length != weights.dim(0)) throw new IllegalArgumentException("folded map has " + folded.scale().length + " channels, weights " + weights.dim(0));
        try (DeviceScratch s = new DeviceScratch(context); CudaStream stream = new CudaStream()) {
            long out = s.allocate((long) p.output().size() * Float.BYTES, "values");
            launchFolded(input, weights, window, s.upload(x, "packed activations"), s.upload(w, "packed weights"),
                    s.upload(folded.scale(), "scales"), s.upload(folded.shift(), "shifts"), out, stream);
            s.synchronize(KERNEL + " (folded) on " + input + " * " + weights);
            return s.downloadFloats(out, p.output().size(), "values");
        }
    }

    /** The frozen layer's output as 1-bit planes over the output channels (bit 1 = +1). */
    public long[] frozen(CudaContext context, Shape input, Shape weights, Window window, long[] x, long[] w, BinaryNet.Frozen frozen) {
        PackedConvKernel.Problem p = checked(input, weights, window, x, w);
        if (frozen.threshold().length != weights.dim(0)) throw new IllegalArgumentException("frozen layer has " + frozen.threshold().length + " channels, weights " + weights.dim(0));
        int[] flip = new int[frozen.flip().length];
        for (int o = 0; o < flip.length; o++) flip[o] = frozen.flip()[o] ? 1 : 0;
        Shape out = p.output();
        int words = (int) ((long) out.n() * out.h() * out.w() * new PackedLayout.BitPlanes(1, out.c()).wordsPerPosition());
        try (DeviceScratch s = new DeviceScratch(context); CudaStream stream = new CudaStream()) {
            long y = s.allocate((long) words * Long.BYTES, "packed signs");
            launchFrozen(input, weights, window, s.upload(x, "packed activations"), s.upload(w, "packed weights"),
                    s.upload(frozen.threshold(), "thresholds"), s.upload(flip, "flips"), y, stream);
            s.synchronize(KERNEL + " (frozen) on " + input + " * " + weights);
            return s.downloadLongs(y, words, "packed signs");
        }
    }

    private static PackedConvKernel.Problem checked(Shape input, Shape weights, Window window, long[] x, long[] w) {
        PackedConvKernel.Problem p = problem(input, weights, window);
        supports(input, weights, window).require(KERNEL);
        if (x.length != p.activationWords()) throw new IllegalArgumentException("packed activations have " + x.length + " words; " + input + " needs " + p.activationWords());
        if (w.length != p.weightWords()) throw new IllegalArgumentException("packed weights have " + w.length + " words; " + weights + " needs " + p.weightWords());
        return p;
    }
}
