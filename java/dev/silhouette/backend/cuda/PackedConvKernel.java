package dev.silhouette.backend.cuda;

import dev.silhouette.tensor.Window;
import dev.silhouette.quant.ChannelAffine;
import dev.silhouette.quant.PackedLayout;
import dev.silhouette.quant.BitWidths;
import dev.silhouette.tensor.Shape;

/**
 * The packed low-bit convolution ({@code packed_conv}, packed_conv.cu): unsigned activation codes in
 * bit planes (each pixel at its region's width) against per-output-channel weight codes in bit planes,
 * bit-serial with 64-bit AND-popcount, one exact int32 accumulator per region (groups = 1). It writes
 * the accumulators, or the epilogue's float values, or those values requantized and packed for the
 * next layer. Specification: {@code BitSerialConv} for one region, docs/REGION_QUANTIZATION.md
 * section 6 for several; docs/KERNELS.md for the design and limits.
 */
public final class PackedConvKernel {
    public static final String KERNEL = "packed_conv";
    /** Output pixels per block, one warp each (packed_conv_config::PIXELS_PER_BLOCK). */
    static final int PIXELS_PER_BLOCK = 8;
    static final int THREADS = PIXELS_PER_BLOCK * 32;
    static final int MAX_GRID_Y = 65535;

    /**
     * One convolution: activations N x C x H x W at {@code activations}' widths, weights O x C x KH x KW
     * at {@code weightBits} (two's complement when {@code signedWeights}).
     */
    public record Problem(Shape input, Shape weights, Window window, RegionWidths activations, int weightBits, boolean signedWeights) {
        public Problem {
            if (input.rank() != 4 || weights.rank() != 4) throw new IllegalArgumentException("convolution needs NCHW input and OIHW weights, got " + input + " and " + weights);
            if (input.c() != weights.dim(1)) throw new IllegalArgumentException("input has " + input.c() + " channels, weights expect " + weights.dim(1) + " (groups = 1)");
            if (input.c() < 1 || weights.dim(0) < 1) throw new IllegalArgumentException("convolution needs at least one input and one output channel, got " + input + " and " + weights);
            if (weights.h() != window.kernelH() || weights.w() != window.kernelW()) {
                throw new IllegalArgumentException("weights " + weights + " do not match the " + window.kernelH() + "x" + window.kernelW() + " window");
            }
            if (window.outH(input.h()) < 1 || window.outW(input.w()) < 1) throw new IllegalArgumentException("window " + window + " leaves no output of " + input);
            BitWidths.code(weightBits, "packed convolution weight");
        }

        public int outChannels() {
            return weights.dim(0);
        }

        public Shape output() {
            return Shape.of(input.n(), outChannels(), window.outH(input.h()), window.outW(input.w()));
        }

        public PackedLayout.BitPlanes activationLayout() {
            return new PackedLayout.BitPlanes(activations.planeBits(), input.c());
        }

        public PackedLayout.BitPlanes weightLayout() {
            return new PackedLayout.BitPlanes(weightBits, input.c());
        }

        public long activationWords() {
            return (long) input.n() * input.h() * input.w() * activationLayout().wordsPerPosition();
        }

        public long weightWords() {
            return (long) outChannels() * weights.h() * weights.w() * weightLayout().wordsPerPosition();
        }

        /** Largest |accumulator|: taps x largest activation code x largest |weight code|. */
        public long accumulatorBound() {
            long taps = (long) input.c() * weights.h() * weights.w();
            long code = (1L << activations.planeBits()) - 1;
            long weight = signedWeights ? 1L << (weightBits - 1) : (1L << weightBits) - 1;
            return taps * code * weight;
        }
    }

    /**
     * How accumulators become floats (derivations in packed_conv.cu and docs/KERNELS.md).
     * CHANNEL_AFFINE: y = scale_o A + shift_o in float, one region ({@link ChannelAffine}; GDRQ's folded
     * group steps and BatchNorm). REGION_COMBINE: y = (float) (shift_o + sum_r (scale_o step_r) A_r) in
     * double, scale the shared weight scales and shift the bias (null for none).
     */
    public record Epilogue(Kind kind, float[] scale, float[] shift) {
        public enum Kind { CHANNEL_AFFINE, REGION_COMBINE }

        public Epilogue {
            if (scale == null) throw new IllegalArgumentException("epilogue scales are required");
            if (kind == Kind.CHANNEL_AFFINE && (shift == null || shift.length != scale.length)) {
                throw new IllegalArgumentException("a channel-affine epilogue needs one shift per scale");
            }
            if (shift != null && shift.length != scale.length) throw new IllegalArgumentException(scale.length + " scales but " + shift.length + " shifts");
        }

        public static Epilogue of(ChannelAffine affine) {
            return new Epilogue(Kind.CHANNEL_AFFINE, affine.scale(), affine.shift());
        }

        public static Epilogue regionCombine(float[] weightScales, float[] bias) {
            return new Epilogue(Kind.REGION_COMBINE, weightScales, bias);
        }

        int id() {
            return kind == Kind.CHANNEL_AFFINE ? 0 : 1;
        }
    }

    /** Requantization of the epilogue's values for the next layer: PACT at each output pixel's region. */
    public record Requantize(RegionWidths widths, byte[] regionMap) {}

    /** Device addresses of what a launch writes. */
    public sealed interface Target {
        /** int32 ((n O + o) OH + oy) OW + ox) R + r. */
        record Accumulators(long out) implements Target {}

        /** Floats NCHW; {@code steps} (REGION_COMBINE) one float per region, alpha_r / (2^b_r - 1). */
        record Values(Epilogue.Kind kind, long scale, long shift, long steps, long out) implements Target {}

        /** Bit planes of the output, {@code widths.planeBits()} planes over O channels; {@code region} 0 for one region. */
        record Packed(Epilogue.Kind kind, long scale, long shift, long steps, RegionWidths widths, long region, long alphas,
                      long out) implements Target {}
    }

    private final KernelLauncher launcher;

    public PackedConvKernel(KernelModule module) {
        if (module == null) throw new IllegalArgumentException("kernel module is required");
        this.launcher = module::launch;
    }

    /** Launches through {@code launcher} instead of a kernel module (tests: recording, host emulation). */
    public PackedConvKernel(KernelLauncher launcher) {
        this.launcher = launcher;
    }

    /** Why the kernel does not take the problem with this epilogue (null: accumulators only), or YES. */
    public static KernelSupport supports(Problem p, Epilogue.Kind epilogue) {
        Shape out = p.output();
        int words = p.weightLayout().words();
        return KernelSupport.all(
                p.activations().supported(),
                p.accumulatorBound() > Integer.MAX_VALUE
                        ? KernelSupport.no(KernelSupport.Reason.ACCUMULATOR_RANGE, "|A| can reach " + p.accumulatorBound() + " (" + p.input().c() + " channels x "
                        + p.weights().h() + "x" + p.weights().w() + " taps at A" + p.activations().planeBits() + "W" + p.weightBits() + ")")
                        : KernelSupport.YES,
                KernelSupport.indexable("input words", p.activationWords()),
                KernelSupport.indexable("weight words", p.weightWords()),
                KernelSupport.indexable("output values", (long) out.n() * out.c() * out.h() * out.w() * p.activations().regions()),
                2L * new PackedLayout.BitPlanes(1, p.outChannels()).words() > MAX_GRID_Y
                        ? KernelSupport.no(KernelSupport.Reason.GRID_RANGE, p.outChannels() + " output channels need more than " + MAX_GRID_Y + " warps on grid y")
                        : KernelSupport.YES,
                epilogue == Epilogue.Kind.CHANNEL_AFFINE && p.activations().regions() != 1
                        ? KernelSupport.no(KernelSupport.Reason.EPILOGUE_REGIONS, "channel-affine epilogue on " + p.activations().regions() + " regions")
                        : KernelSupport.YES,
                words < 1 ? KernelSupport.no(KernelSupport.Reason.INDEX_RANGE, "no channels") : KernelSupport.YES);
    }

    /** Queues the convolution. {@code xRegion} is the input's N x H x W region map (0 for one region). */
    public void launch(Problem p, long x, long xRegion, long w, Target target, CudaStream stream) {
        Epilogue.Kind kind = switch (target) {
            case Target.Accumulators a -> null;
            case Target.Values v -> v.kind();
            case Target.Packed k -> k.kind();
        };
        supports(p, kind).require(KERNEL);
        KernelSupport.addresses(KERNEL, "activations", x, "weights", w);
        switch (target) {
            case Target.Accumulators a -> KernelSupport.addresses(KERNEL, "accumulators", a.out());
            case Target.Values v -> KernelSupport.addresses(KERNEL, "scales", v.scale(), "values", v.out(),
                    v.kind() == Epilogue.Kind.CHANNEL_AFFINE ? "shifts" : "region steps", v.kind() == Epilogue.Kind.CHANNEL_AFFINE ? v.shift() : v.steps());
            case Target.Packed k -> KernelSupport.addresses(KERNEL, "scales", k.scale(), "packed output", k.out(), "output clip levels", k.alphas(),
                    k.kind() == Epilogue.Kind.CHANNEL_AFFINE ? "shifts" : "region steps", k.kind() == Epilogue.Kind.CHANNEL_AFFINE ? k.shift() : k.steps());
        }
        if (xRegion == 0 && p.activations().regions() != 1) throw new IllegalArgumentException(KERNEL + ": " + p.activations().regions() + " regions need a region map");
        Shape out = p.output();
        long pixels = (long) out.n() * out.h() * out.w();
        if (pixels == 0) return;
        int gridX = (int) ((pixels + PIXELS_PER_BLOCK - 1) / PIXELS_PER_BLOCK);
        int gridY = 2 * new PackedLayout.BitPlanes(1, p.outChannels()).words();
        long acc = 0, scale = 0, shift = 0, steps = 0, values = 0, yRegion = 0, yAlphas = 0, packed = 0;
        int output, epilogue = 0, yWidths = 0, yPlanes = 0;
        switch (target) {
            case Target.Accumulators a -> {
                output = 0;
                acc = a.out();
            }
            case Target.Values v -> {
                output = 1;
                epilogue = v.kind() == Epilogue.Kind.CHANNEL_AFFINE ? 0 : 1;
                scale = v.scale();
                shift = v.shift();
                steps = v.steps();
                values = v.out();
            }
            case Target.Packed k -> {
                k.widths().supported().require(KERNEL + " output");
                if (k.region() == 0 && k.widths().regions() != 1) throw new IllegalArgumentException(KERNEL + ": output of " + k.widths().regions() + " regions needs a region map");
                output = 2;
                epilogue = k.kind() == Epilogue.Kind.CHANNEL_AFFINE ? 0 : 1;
                scale = k.scale();
                shift = k.shift();
                steps = k.steps();
                yRegion = k.region();
                yWidths = k.widths().packed();
                yAlphas = k.alphas();
                yPlanes = k.widths().planeBits();
                packed = k.out();
            }
        }
        Shape in = p.input();
        Window win = p.window();
        launcher.launch(KERNEL, gridX, gridY, THREADS, 0, stream,
                x, xRegion, p.activations().packed(), p.activations().planeBits(), p.activations().regions(), w, p.weightBits(), p.signedWeights() ? 1 : 0,
                in.n(), in.c(), in.h(), in.w(), p.outChannels(), win.kernelH(), win.kernelW(), win.strideH(), win.strideW(), win.padH(), win.padW(),
                win.dilationH(), win.dilationW(), out.h(), out.w(),
                output, acc, epilogue, scale, shift, steps, values, yRegion, yWidths, yAlphas, yPlanes, packed);
    }

    // Synchronous host forms (conformance tests, tools).

    /** A_(o,r), laid out ((n O + o) OH + oy) OW + ox) R + r. */
    public int[] accumulators(CudaContext context, Problem p, long[] x, byte[] xRegion, long[] w) {
        try (DeviceScratch s = new DeviceScratch(context); CudaStream stream = new CudaStream()) {
            long[] in = inputs(s, p, x, xRegion, w);
            int count = p.output().size() * p.activations().regions();
            long out = s.allocate((long) count * Integer.BYTES, "accumulators");
            launch(p, in[0], in[1], in[2], new Target.Accumulators(out), stream);
            s.synchronize(KERNEL + " (accumulators) on " + p);
            return s.downloadInts(out, count, "accumulators");
        }
    }

    /** The epilogue's floats, NCHW. */
    public float[] values(CudaContext context, Problem p, long[] x, byte[] xRegion, long[] w, Epilogue e) {
        checkEpilogue(p, e);
        try (DeviceScratch s = new DeviceScratch(context); CudaStream stream = new CudaStream()) {
            long[] in = inputs(s, p, x, xRegion, w);
            long[] ep = epilogue(s, p, e);
            int count = p.output().size();
            long out = s.allocate((long) count * Float.BYTES, "values");
            launch(p, in[0], in[1], in[2], new Target.Values(e.kind(), ep[0], ep[1], ep[2], out), stream);
            s.synchronize(KERNEL + " (values) on " + p);
            return s.downloadFloats(out, count, "values");
        }
    }

    /** The epilogue's values requantized at the output's regions, as bit planes over the output channels. */
    public long[] packed(CudaContext context, Problem p, long[] x, byte[] xRegion, long[] w, Epilogue e, Requantize q) {
        checkEpilogue(p, e);
        Shape out = p.output();
        QuantizePackKernel.checkRegionMap(out, q.regionMap(), q.widths());
        int words = (int) QuantizePackKernel.outputWords(out, q.widths());
        try (DeviceScratch s = new DeviceScratch(context); CudaStream stream = new CudaStream()) {
            long[] in = inputs(s, p, x, xRegion, w);
            long[] ep = epilogue(s, p, e);
            long region = q.regionMap() == null ? 0 : s.upload(q.regionMap(), "output region map");
            long alphas = s.upload(q.widths().alphas(), "output clip levels");
            long y = s.allocate((long) words * Long.BYTES, "packed output");
            launch(p, in[0], in[1], in[2], new Target.Packed(e.kind(), ep[0], ep[1], ep[2], q.widths(), region, alphas, y), stream);
            s.synchronize(KERNEL + " (packed) on " + p);
            return s.downloadLongs(y, words, "packed output");
        }
    }

    private static long[] inputs(DeviceScratch s, Problem p, long[] x, byte[] xRegion, long[] w) {
        supports(p, null).require(KERNEL);
        if (x.length != p.activationWords()) throw new IllegalArgumentException("packed activations have " + x.length + " words; " + p.input() + " at " + p.activations().planeBits() + " planes needs " + p.activationWords());
        if (w.length != p.weightWords()) throw new IllegalArgumentException("packed weights have " + w.length + " words; " + p.weights() + " at " + p.weightBits() + " bits needs " + p.weightWords());
        QuantizePackKernel.checkRegionMap(p.input(), xRegion, p.activations());
        return new long[] {s.upload(x, "packed activations"), xRegion == null ? 0 : s.upload(xRegion, "input region map"), s.upload(w, "packed weights")};
    }

    private static void checkEpilogue(Problem p, Epilogue e) {
        if (e.scale().length != p.outChannels()) throw new IllegalArgumentException("epilogue has " + e.scale().length + " scales for " + p.outChannels() + " output channels");
    }

    private static long[] epilogue(DeviceScratch s, Problem p, Epilogue e) {
        long scale = s.upload(e.scale(), "epilogue scales");
        long shift = e.shift() == null ? 0 : s.upload(e.shift(), "epilogue shifts");
        long steps = s.upload(p.activations().steps(), "region steps");
        return new long[] {scale, shift, steps};
    }
}
