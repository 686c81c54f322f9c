package dev.silhouette.backend.cuda;

import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;

import java.util.List;
import java.util.Optional;

/**
 * Host glue for the built-in kernels of cuda/ops_*.cu: one method per kernel, taking raw device
 * addresses (0 only where a parameter says "none"). Each method checks its sizes against the kernel's
 * index limits, chooses the grid, and launches on the given stream without waiting. The kernels
 * reproduce CpuOps's arithmetic; each kernel's comment in cuda/ says how closely.
 */
public final class BuiltinKernels {
    /** Threads per block of the flat and plane kernels. */
    public static final int BLOCK = 256;
    /** Grid cap of the grid-stride flat kernels: 2M threads fill any current GPU; more only costs launches. */
    public static final int MAX_FLAT_BLOCKS = 8192;
    /** The hardware limit of grid y, where the plane kernels put planes (they loop past it). */
    public static final int MAX_GRID_Y = 65535;
    /** Rows and columns of the output tile of one SGEMM block (silhouette_gemm::TILE). */
    public static final int GEMM_TILE = 64;
    /** Softmax goes one block per position below this many positions, if there are enough classes to share. */
    static final int SOFTMAX_BLOCK_POSITIONS = 2048;
    static final int SOFTMAX_BLOCK_MIN_CLASSES = 64;

    /** Every entry point these methods launch: its {@code extern "C"} name in cuda/ and its source file. */
    public enum Kernel {
        RELU("silhouette_relu", "ops_elementwise.cu"),
        CLIP("silhouette_clip", "ops_elementwise.cu"),
        SIGMOID("silhouette_sigmoid", "ops_elementwise.cu"),
        ADD("silhouette_add", "ops_elementwise.cu"),
        CHANNEL_AFFINE("silhouette_channel_affine", "ops_elementwise.cu"),
        BIAS_ADD("silhouette_bias_add", "ops_elementwise.cu"),
        BROADCAST_ARITHMETIC("silhouette_broadcast_arithmetic", "ops_elementwise.cu"),
        HARD_SIGMOID("silhouette_hard_sigmoid", "ops_elementwise.cu"),
        HARD_SWISH("silhouette_hard_swish", "ops_elementwise.cu"),
        MAX_POOL("silhouette_max_pool", "ops_pool.cu"),
        AVG_POOL("silhouette_avg_pool", "ops_pool.cu"),
        GLOBAL_AVG_POOL("silhouette_global_avg_pool", "ops_pool.cu"),
        SOFTMAX("silhouette_softmax", "ops_pool.cu"),
        SOFTMAX_BLOCK("silhouette_softmax_block", "ops_pool.cu"),
        INTERPOLATE_NEAREST("silhouette_interpolate_nearest", "ops_resize.cu"),
        INTERPOLATE_BILINEAR("silhouette_interpolate_bilinear", "ops_resize.cu"),
        COPY_STRIDED("silhouette_copy_strided", "ops_resize.cu"),
        PAD("silhouette_pad", "ops_resize.cu"),
        CONV2D_DIRECT("silhouette_conv2d_direct", "ops_fallback.cu"),
        SGEMM_NT("silhouette_sgemm_nt", "ops_fallback.cu");

        private final String symbol;
        private final String source;

        Kernel(String symbol, String source) {
            this.symbol = symbol;
            this.source = source;
        }

        public String symbol() {
            return symbol;
        }

        public String source() {
            return source;
        }
    }

    /** Why the built-in kernels cannot run an op on given input shapes. */
    public enum Limit {
        /** The op needs no kernel (Flatten and Reshape alias their input). */
        NO_KERNEL,
        /** Input count, rank or dimensions do not fit the op. */
        SHAPE,
        /** A count the kernels index with 32 bits reaches 2^31. */
        INDEX_RANGE,
        /** No CUDA kernel computes the op yet; graphs with it run on the CPU backend. */
        NOT_IMPLEMENTED
    }

    /** Most axes a broadcast operand may have (SILHOUETTE_MAX_BROADCAST_RANK in ops_elementwise.cu). */
    public static final int MAX_BROADCAST_RANK = 8;

    public record Unsupported(Limit limit, String detail) {
        @Override
        public String toString() {
            return limit + ": " + detail;
        }
    }

    private final KernelLauncher launcher;

    public BuiltinKernels(KernelModule module) {
        if (module == null) throw new IllegalArgumentException("kernel module is null");
        this.launcher = (kernel, gx, gy, bx, shared, s, args) -> module.launch(kernel, gx, gy, bx, shared, stream(s), args);
    }

    /** Launches through {@code launcher} instead of a kernel module (tests: the host emulation, which takes no stream). */
    public BuiltinKernels(KernelLauncher launcher) {
        if (launcher == null) throw new IllegalArgumentException("kernel launcher is null");
        this.launcher = launcher;
    }

    /**
     * Empty when the built-in kernels (or, for the region-quantization ops, {@link RegionOpKernels}) run
     * {@code op} on inputs of these shapes, else why not. Shapes are
     * host shapes (at most 2^31 - 9 elements each), so the per-kernel checks below rarely bind.
     */
    public static Optional<Unsupported> supports(Op op, List<Shape> inputs) {
        if (inputs == null || inputs.isEmpty()) return shape(op, "no input shapes");
        Shape s = inputs.getFirst();
        if (op.arity() > 0 && inputs.size() != op.arity()) return shape(op, inputs.size() + " inputs, expected " + op.arity());
        return switch (op) {
            case Op.Flatten f -> Optional.of(new Unsupported(Limit.NO_KERNEL, "Flatten is a reshape: the backend aliases its input"));
            case Op.Relu r -> Optional.empty();
            case Op.Clip c -> Optional.empty();
            case Op.Sigmoid sg -> Optional.empty();
            case Op.Add a -> inputs.get(1).equals(s) ? Optional.empty() : shape(op, "operand shapes " + s + " and " + inputs.get(1) + " differ");
            case Op.BatchNorm bn -> s.rank() < 2 || s.dim(1) != bn.channels()
                    ? shape(op, "input " + s + " does not have " + bn.channels() + " channels on axis 1") : Optional.empty();
            case Op.Conv2d conv -> {
                if (s.rank() != 4 || s.c() != conv.inChannels()) yield shape(op, "input " + s + " is not N x " + conv.inChannels() + " x H x W");
                yield window(op, s, conv.window()).or(() -> index(op, "output planes (n * out channels)", (long) s.n() * conv.outChannels()));
            }
            case Op.MaxPool p -> s.rank() != 4 ? shape(op, "input " + s + " is not NCHW") : window(op, s, p.window());
            case Op.AvgPool p -> s.rank() != 4 ? shape(op, "input " + s + " is not NCHW") : window(op, s, p.window());
            case Op.GlobalAvgPool g -> s.rank() != 4 ? shape(op, "input " + s + " is not NCHW") : Optional.empty();
            case Op.Linear l -> s.rank() != 2 || s.dim(1) != l.inFeatures()
                    ? shape(op, "input " + s + " is not N x " + l.inFeatures()) : Optional.empty();
            case Op.Softmax sm -> s.rank() < 2 ? shape(op, "input " + s + " has no axis 1") : Optional.empty();
            case Op.Interpolate ip -> s.rank() != 4 ? shape(op, "input " + s + " is not NCHW")
                    : index(op, "output size", (long) s.n() * s.c() * ip.outH() * ip.outW());
            case Op.Concat c -> concat(op, c, inputs);
            case Op.Elementwise e -> broadcast(op, s, inputs.get(1));
            case Op.ElementwiseConstant e -> broadcast(op, s, e.constantShape());
            case Op.HardSigmoid h -> Optional.empty();
            case Op.HardSwish h -> Optional.empty();
            case Op.Reshape r -> Optional.of(new Unsupported(Limit.NO_KERNEL, "Reshape keeps the values: the backend aliases its input"));
            case Op.Pad p -> s.rank() != 4 ? shape(op, "input " + s + " is not NCHW")
                    : index(op, "output plane", (long) (s.h() + p.top() + p.bottom()) * (s.w() + p.left() + p.right()));
            case Op.PactQuantize q -> RegionOpKernels.supports(op, inputs);
            case Op.AffineQuantize q -> Optional.of(new Unsupported(Limit.NOT_IMPLEMENTED, "no CUDA kernel for affine activation quantization yet; post-training plans run on the CPU"));
            case Op.LowBitConv2d c -> {
                if (s.rank() != 4 || s.c() != c.conv().inChannels()) yield shape(op, "input " + s + " is not N x " + c.conv().inChannels() + " x H x W");
                if (inputs.size() > 1 && !inputs.get(1).equals(Shape.of(s.n(), 1, s.h(), s.w()))) {
                    yield shape(op, "region map " + inputs.get(1) + " is not " + s.n() + " x 1 x " + s.h() + " x " + s.w());
                }
                yield LowBitIgemmKernel.supports(c, s) instanceof KernelSupport.Unsupported u
                        ? Optional.of(new Unsupported(Limit.NOT_IMPLEMENTED, "the tensor-core low-bit kernel refuses it: " + u)) : Optional.empty();
            }
            case Op.RegionMap m -> s.rank() != 4 || s.c() != 1 ? shape(op, "silhouette " + s + " is not N x 1 x h x w")
                    : index(op, "region map", (long) s.n() * m.height() * m.width());
            case Op.RegionQuantize q -> RegionOpKernels.supports(op, inputs);
            case Op.DrqQuantize q -> RegionOpKernels.supports(op, inputs);
            case Op.ChannelSqueeze q -> RegionOpKernels.supports(op, inputs);
            case Op.NoiseSilhouette q -> RegionOpKernels.supports(op, inputs);
            case Op.LogitBlend q -> RegionOpKernels.supports(op, inputs);
        };
    }

    private static Optional<Unsupported> broadcast(Op op, Shape a, Shape b) {
        int rank = Math.max(a.rank(), b.rank());
        if (rank > MAX_BROADCAST_RANK) return shape(op, "operands " + a + " and " + b + " have more than " + MAX_BROADCAST_RANK + " axes");
        try {
            return index(op, "output size", broadcastShape(a, b).size());
        } catch (IllegalArgumentException e) {
            return shape(op, e.getMessage());
        }
    }

    /** The NumPy broadcast of two shapes: right-aligned, each axis equal or 1 on one side. */
    static Shape broadcastShape(Shape a, Shape b) {
        int rank = Math.max(a.rank(), b.rank());
        int[] dims = new int[rank];
        for (int d = 0; d < rank; d++) {
            int da = d - (rank - a.rank()) >= 0 ? a.dim(d - (rank - a.rank())) : 1;
            int db = d - (rank - b.rank()) >= 0 ? b.dim(d - (rank - b.rank())) : 1;
            if (da != db && da != 1 && db != 1) throw new IllegalArgumentException("operands " + a + " and " + b + " do not broadcast");
            dims[d] = Math.max(da, db);
        }
        return Shape.of(dims);
    }

    /**
     * The by-value kernel argument of silhouette_broadcast_arithmetic (struct BroadcastShape): rank, the
     * output dims, then each operand's strides, right-aligned, 0 where it broadcasts; unused axes are 0.
     */
    static int[] broadcastArgument(Shape a, Shape b, Shape out) {
        int rank = out.rank();
        int[] packed = new int[1 + 3 * MAX_BROADCAST_RANK];
        packed[0] = rank;
        for (int d = 0; d < rank; d++) packed[1 + d] = out.dim(d);
        int[][] operands = {broadcastStrides(a, rank), broadcastStrides(b, rank)};
        for (int k = 0; k < 2; k++) System.arraycopy(operands[k], 0, packed, 1 + (k + 1) * MAX_BROADCAST_RANK, rank);
        return packed;
    }

    private static int[] broadcastStrides(Shape s, int rank) {
        int[] strides = new int[rank];
        int stride = 1;
        for (int d = s.rank() - 1; d >= 0; d--) {
            strides[d + rank - s.rank()] = s.dim(d) == 1 ? 0 : stride;
            stride *= s.dim(d);
        }
        return strides;

    }

    private static Optional<Unsupported> shape(Op op, String detail) {
        return Optional.of(new Unsupported(Limit.SHAPE, op + ": " + detail));
    }

    private static Optional<Unsupported> index(Op op, String what, long value) {
        return value > Integer.MAX_VALUE
                ? Optional.of(new Unsupported(Limit.INDEX_RANGE, op + ": " + what + " " + value + " exceeds 2^31 - 1"))
                : Optional.empty();
    }

    private static Optional<Unsupported> window(Op op, Shape s, Window win) {
        int oh = win.outH(s.h()), ow = win.outW(s.w());
        if (oh < 1 || ow < 1) return shape(op, "window " + win + " leaves no output on " + s.h() + "x" + s.w());
        return index(op, "output plane", (long) oh * ow);
    }

    private static Optional<Unsupported> concat(Op op, Op.Concat c, List<Shape> inputs) {
        Shape first = inputs.getFirst();
        int axis = c.axis();
        if (axis < 0 || axis >= first.rank()) return shape(op, "axis " + axis + " outside rank " + first.rank());
        long along = 0;
        for (Shape t : inputs) {
            if (t.rank() != first.rank()) return shape(op, "inputs " + first + " and " + t + " differ in rank");
            for (int d = 0; d < t.rank(); d++) {
                if (d != axis && t.dim(d) != first.dim(d)) return shape(op, "inputs " + first + " and " + t + " differ off axis " + axis);
            }
            along += t.dim(axis);
        }
        long rest = first.size() / Math.max(1, first.dim(axis));
        return index(op, "output size", along * rest);
    }

    // Elementwise: count floats at x (and b) into y; y may equal x.

    public void relu(long x, long y, long count, CudaStream s) {
        if (flat("relu", count, x, y)) launcher.launch(Kernel.RELU.symbol(), flatGrid(count), 1, BLOCK, 0, s, x, y, count);
    }

    public void clip(long x, long y, long count, float min, float max, CudaStream s) {
        if (!(min <= max)) throw new IllegalArgumentException("clip range [" + min + ", " + max + "] is empty");
        if (flat("clip", count, x, y)) launcher.launch(Kernel.CLIP.symbol(), flatGrid(count), 1, BLOCK, 0, s, x, y, count, min, max);
    }

    public void sigmoid(long x, long y, long count, CudaStream s) {
        if (flat("sigmoid", count, x, y)) launcher.launch(Kernel.SIGMOID.symbol(), flatGrid(count), 1, BLOCK, 0, s, x, y, count);
    }

    public void add(long a, long b, long y, long count, CudaStream s) {
        if (flat("add", count, a, b, y)) launcher.launch(Kernel.ADD.symbol(), flatGrid(count), 1, BLOCK, 0, s, a, b, y, count);
    }

    /**
     * BatchNorm of [n, c, plane] as y = x * scale[c] + shift[c]; scale and shift hold c floats computed by
     * {@link #batchNormScaleShift}. y may equal x.
     */
    public void batchNorm(long x, long y, long scale, long shift, int n, int c, int plane, CudaStream s) {
        long count = channelCount("batchNorm", n, c, plane);
        if (flat("batchNorm", count, x, y, scale, shift)) {
            launcher.launch(Kernel.CHANNEL_AFFINE.symbol(), flatGrid(count), 1, BLOCK, 0, s, x, y, scale, shift, count, c, plane);
        }
    }

    /** y = x + bias[channel] over [n, c, plane], then ReLU if {@code relu}; y may equal x (in-place bias). */
    public void biasAdd(long x, long bias, long y, int n, int c, int plane, boolean relu, CudaStream s) {
        long count = channelCount("biasAdd", n, c, plane);
        if (flat("biasAdd", count, x, bias, y)) {
            launcher.launch(Kernel.BIAS_ADD.symbol(), flatGrid(count), 1, BLOCK, 0, s, x, bias, y, count, c, plane, relu ? 1 : 0);
        }
    }

    /**
     * The per-channel factors of inference BatchNorm exactly as CpuOps.batchNorm computes them:
     * scale = (float) (gamma / sqrt((double) var + eps)), shift = beta - mean * scale in float. Returns
     * {scale, shift}.
     */
    public static float[][] batchNormScaleShift(float[] gamma, float[] beta, float[] mean, float[] var, float eps) {
        int c = gamma.length;
        if (beta.length != c || mean.length != c || var.length != c) {
            throw new IllegalArgumentException("BatchNorm parameters of " + c + ", " + beta.length + ", " + mean.length + ", " + var.length + " channels");
        }
        float[] scale = new float[c], shift = new float[c];
        for (int i = 0; i < c; i++) {
            scale[i] = (float) (gamma[i] / Math.sqrt((double) var[i] + eps));
            shift[i] = beta[i] - mean[i] * scale[i];
        }
        return new float[][] {scale, shift};
    }

    // Pooling and softmax.

    /** Max pooling of [n, c, h, w] into [n, c, oh, ow]; oh and ow must be the window's output size. */
    public void maxPool(long x, long y, int n, int c, int h, int w, Window win, int oh, int ow, CudaStream s) {
        int planes = pooled("maxPool", x, y, n, c, h, w, win, oh, ow);
        if (planes == 0) return;
        launcher.launch(Kernel.MAX_POOL.symbol(), planeGridX((long) oh * ow), planeGridY(planes), BLOCK, 0, s,
                x, y, planes, h, w, oh, ow, win.kernelH(), win.kernelW(), win.strideH(), win.strideW(), win.padH(), win.padW(),
                win.dilationH(), win.dilationW());
    }

    /** Average pooling; with countIncludePad the divisor is the whole window, else the in-bounds taps. */
    public void avgPool(long x, long y, int n, int c, int h, int w, Window win, boolean countIncludePad, int oh, int ow, CudaStream s) {
        int planes = pooled("avgPool", x, y, n, c, h, w, win, oh, ow);
        if (planes == 0) return;
        launcher.launch(Kernel.AVG_POOL.symbol(), planeGridX((long) oh * ow), planeGridY(planes), BLOCK, 0, s,
                x, y, planes, h, w, oh, ow, win.kernelH(), win.kernelW(), win.strideH(), win.strideW(), win.padH(), win.padW(),
                win.dilationH(), win.dilationW(), countIncludePad ? 1 : 0);
    }

    /** y[p] = mean of the {@code plane} floats of plane p, for {@code planes} planes (one warp each). */
    public void globalAvgPool(long x, long y, int planes, int plane, CudaStream s) {
        nonNegative("globalAvgPool", "planes", planes);
        nonNegative("globalAvgPool", "plane", plane);
        if (planes == 0) return;
        addresses("globalAvgPool", x, y);
        int warpsPerBlock = BLOCK / 32;
        int grid = (int) Math.min(MAX_FLAT_BLOCKS, ((long) planes + warpsPerBlock - 1) / warpsPerBlock);
        launcher.launch(Kernel.GLOBAL_AVG_POOL.symbol(), grid, 1, BLOCK, 0, s, x, y, planes, plane);
    }

    /**
     * Softmax over axis 1 of [n, classes, inner] (inner = product of the axes after 1). Many positions: a
     * thread each, in the CPU's order. Few positions with many classes (logits): a block each.
     */
    public void softmax(long x, long y, int n, int classes, int inner, CudaStream s) {
        nonNegative("softmax", "n", n);
        nonNegative("softmax", "classes", classes);
        nonNegative("softmax", "inner", inner);
        long positions = (long) n * inner;
        if (positions == 0 || classes == 0) return;
        addresses("softmax", x, y);
        if (positions < SOFTMAX_BLOCK_POSITIONS && classes >= SOFTMAX_BLOCK_MIN_CLASSES) {
            launcher.launch(Kernel.SOFTMAX_BLOCK.symbol(), (int) positions, 1, BLOCK, 0, s, x, y, n, classes, inner);
        } else {
            launcher.launch(Kernel.SOFTMAX.symbol(), flatGrid(positions), 1, BLOCK, 0, s, x, y, n, classes, inner);
        }
    }

    /** y = a (op) b with NumPy broadcasting of a's and b's shapes into {@code out}; y may equal a or b only when shapes match. */
    public void broadcastArithmetic(long a, Shape aShape, long b, Shape bShape, long y, Shape out, Op.Arithmetic op, CudaStream s) {
        String what = "broadcastArithmetic";
        if (out.rank() > MAX_BROADCAST_RANK) throw new IllegalArgumentException(what + ": " + out + " has more than " + MAX_BROADCAST_RANK + " axes");
        if (!broadcastShape(aShape, bShape).equals(out)) {
            throw new IllegalArgumentException(what + ": operands " + aShape + " and " + bShape + " do not broadcast to " + out);
        }
        long count = out.size();
        indexable(what, "output size", count);
        if (flat(what, count, a, b, y)) {
            launcher.launch(Kernel.BROADCAST_ARITHMETIC.symbol(), flatGrid(count), 1, BLOCK, 0, s, a, b, y, count, op.ordinal(),
                    broadcastArgument(aShape, bShape, out));
        }
    }

    public void hardSigmoid(long x, long y, long count, float alpha, float beta, CudaStream s) {
        if (flat("hardSigmoid", count, x, y)) {
            launcher.launch(Kernel.HARD_SIGMOID.symbol(), flatGrid(count), 1, BLOCK, 0, s, x, y, count, alpha, beta);
        }
    }

    public void hardSwish(long x, long y, long count, CudaStream s) {
        if (flat("hardSwish", count, x, y)) launcher.launch(Kernel.HARD_SWISH.symbol(), flatGrid(count), 1, BLOCK, 0, s, x, y, count);
    }

    // Resizing and copying.

    /** Constant padding of H and W: [n, c, h, w] into [n, c, h + top + bottom, w + left + right]. */
    public void pad(long x, long y, int n, int c, int h, int w, Op.Pad p, CudaStream s) {
        String what = "pad";
        nonNegative(what, "n", n);
        nonNegative(what, "c", c);
        positive(what, "height", h);
        positive(what, "width", w);
        int oh = h + p.top() + p.bottom(), ow = w + p.left() + p.right();
        long planes = (long) n * c;
        indexable(what, "planes", planes);
        indexable(what, "input plane", (long) h * w);
        indexable(what, "output plane", (long) oh * ow);
        if (planes == 0) return;
        addresses(what, x, y);
        launcher.launch(Kernel.PAD.symbol(), planeGridX((long) oh * ow), planeGridY((int) planes), BLOCK, 0, s,
                x, y, (int) planes, h, w, p.top(), p.left(), oh, ow, p.value());
    }

    /** Resizes each of {@code planes} h x w planes to oh x ow, nearest or bilinear (align_corners=false). */
    public void interpolate(long x, long y, int planes, int h, int w, int oh, int ow, boolean bilinear, CudaStream s) {
        String what = "interpolate";
        nonNegative(what, "planes", planes);
        positive(what, "input height", h);
        positive(what, "input width", w);
        positive(what, "output height", oh);
        positive(what, "output width", ow);
        indexable(what, "input plane", (long) h * w);
        indexable(what, "output plane", (long) oh * ow);
        if (planes == 0) return;
        addresses(what, x, y);
        Kernel k = bilinear ? Kernel.INTERPOLATE_BILINEAR : Kernel.INTERPOLATE_NEAREST;
        launcher.launch(k.symbol(), planeGridX((long) oh * ow), planeGridY(planes), BLOCK, 0, s, x, y, planes, h, w, oh, ow);
    }

    /**
     * dst[o * dstStride + dstOffset + j] = src[o * srcStride + j] for o < outer, j < chunk: one input of
     * a concatenation, where outer is the product of the axes before the concat axis.
     */
    public void copyStrided(long src, long dst, int outer, int chunk, int srcStride, int dstStride, int dstOffset, CudaStream s) {
        String what = "copyStrided";
        nonNegative(what, "outer", outer);
        nonNegative(what, "chunk", chunk);
        nonNegative(what, "dstOffset", dstOffset);
        if (outer == 0 || chunk == 0) return;
        if (srcStride < chunk) throw new IllegalArgumentException(what + ": source stride " + srcStride + " is shorter than the chunk " + chunk);
        if ((long) dstOffset + chunk > dstStride) {
            throw new IllegalArgumentException(what + ": chunk " + chunk + " at offset " + dstOffset + " overruns the destination stride " + dstStride);
        }
        addresses(what, src, dst);
        long total = (long) outer * chunk;
        launcher.launch(Kernel.COPY_STRIDED.symbol(), flatGrid(total), 1, BLOCK, 0, s, src, dst, outer, chunk, srcStride, dstStride, dstOffset);
    }

    // Fallbacks for missing cuDNN / cuBLAS.

    /**
     * Direct convolution of x [in] with weight [out, in/groups, kh, kw] and optional bias (0 for none) into
     * y [n, out, oh, ow]; oh and ow must be the window's output size.
     */
    public void conv2dDirect(long x, long w, long bias, long y, Shape in, Op.Conv2d op, int oh, int ow, CudaStream s) {
        String what = "conv2dDirect";
        if (in == null || op == null) throw new IllegalArgumentException(what + ": null shape or op");
        supports(op, List.of(in)).ifPresent(u -> {
            throw new IllegalArgumentException(what + ": " + u);
        });
        Window win = op.window();
        if (oh != win.outH(in.h()) || ow != win.outW(in.w())) {
            throw new IllegalArgumentException(what + ": output " + oh + "x" + ow + " is not the window's " + win.outH(in.h()) + "x" + win.outW(in.w()));
        }
        indexable(what, "output size", (long) in.n() * op.outChannels() * oh * ow);
        if (in.n() == 0) return;
        addresses(what, x, w, y);
        if (bias != 0) addresses(what, bias);
        long pixels = (long) oh * ow;
        int block = (int) Math.min(BLOCK, Math.max(32, (pixels + 31) / 32 * 32));
        int gridX = (int) Math.min(MAX_FLAT_BLOCKS, (pixels + block - 1) / block);
        launcher.launch(Kernel.CONV2D_DIRECT.symbol(), gridX, planeGridY(in.n() * op.outChannels()), block, 0, s,
                x, w, bias, y, in.n(), in.c(), in.h(), in.w(), op.outChannels(), oh, ow, win.kernelH(), win.kernelW(),
                win.strideH(), win.strideW(), win.padH(), win.padW(), win.dilationH(), win.dilationW(), op.groups());
    }

    /** A linear layer: y [batch, out] = x [batch, in] * weight [out, in]^T + bias [out] (0 for none). */
    public void linear(long x, long w, long bias, long y, int batch, int in, int out, CudaStream s) {
        gemmNt(x, w, bias, y, batch, out, in, in, in, out, s);
    }

    /**
     * Row-major C [m, n] = A [m, k] * B [n, k]^T + bias [n] (0 for none), with leading dimensions (row
     * strides in floats) lda, ldb, ldc.
     */
    public void gemmNt(long a, long b, long bias, long c, int m, int n, int k, int lda, int ldb, int ldc, CudaStream s) {
        String what = "gemmNt";
        nonNegative(what, "m", m);
        nonNegative(what, "n", n);
        nonNegative(what, "k", k);
        // Tile origins plus the tile size must stay inside int.
        if (m > Integer.MAX_VALUE - GEMM_TILE || n > Integer.MAX_VALUE - GEMM_TILE) {
            throw new IllegalArgumentException(what + ": " + m + " x " + n + " reaches the 2^31 index limit");
        }
        if (lda < k || ldb < k || ldc < n) {
            throw new IllegalArgumentException(what + ": leading dimensions " + lda + ", " + ldb + ", " + ldc + " shorter than rows of " + k + ", " + k + ", " + n);
        }
        if (m == 0 || n == 0) return;
        addresses(what, a, b, c);
        if (bias != 0) addresses(what, bias);
        int gridX = (n + GEMM_TILE - 1) / GEMM_TILE;
        int gridY = Math.min(MAX_GRID_Y, (m + GEMM_TILE - 1) / GEMM_TILE);
        launcher.launch(Kernel.SGEMM_NT.symbol(), gridX, gridY, BLOCK, 0, s, a, b, bias, c, m, n, k, lda, ldb, ldc);
    }

    // Checks and grids.

    private static CudaStream stream(CudaStream s) {
        if (s == null) throw new IllegalArgumentException("stream is null");
        return s;
    }

    /** Checks an elementwise launch; false when there is nothing to do. */
    private static boolean flat(String what, long count, long... addresses) {
        if (count < 0) throw new IllegalArgumentException(what + ": negative count " + count);
        if (count == 0) return false;
        addresses(what, addresses);
        return true;
    }

    private static void addresses(String what, long... addresses) {
        for (int i = 0; i < addresses.length; i++) {
            if (addresses[i] == 0) throw new IllegalArgumentException(what + ": device address " + i + " is null");
            if ((addresses[i] & 3) != 0) {
                throw new IllegalArgumentException(what + ": device address " + i + " (0x" + Long.toHexString(addresses[i]) + ") is not float-aligned");
            }
        }
    }

    private static void nonNegative(String what, String name, long value) {
        if (value < 0) throw new IllegalArgumentException(what + ": negative " + name + " " + value);
    }

    private static void positive(String what, String name, long value) {
        if (value < 1) throw new IllegalArgumentException(what + ": " + name + " " + value + " must be positive");
    }

    /** Counts the plane kernels index with 32-bit unsigned counters (which must not wrap past a stride). */
    private static void indexable(String what, String name, long value) {
        if (value > Integer.MAX_VALUE) throw new IllegalArgumentException(what + ": " + name + " " + value + " exceeds the 2^31 - 1 index limit");
    }

    private static long channelCount(String what, int n, int c, int plane) {
        nonNegative(what, "n", n);
        positive(what, "channels", c);
        positive(what, "plane", plane);
        return (long) n * c * plane;
    }

    /** Checks a pooling launch and returns its plane count (0: nothing to do). */
    private static int pooled(String what, long x, long y, int n, int c, int h, int w, Window win, int oh, int ow) {
        if (win == null) throw new IllegalArgumentException(what + ": null window");
        nonNegative(what, "n", n);
        nonNegative(what, "c", c);
        positive(what, "height", h);
        positive(what, "width", w);
        if (oh != win.outH(h) || ow != win.outW(w) || oh < 1 || ow < 1) {
            throw new IllegalArgumentException(what + ": output " + oh + "x" + ow + " is not window " + win + "'s on " + h + "x" + w);
        }
        long planes = (long) n * c;
        indexable(what, "planes", planes);
        indexable(what, "input plane", (long) h * w);
        indexable(what, "output plane", (long) oh * ow);
        if (planes == 0) return 0;
        addresses(what, x, y);
        return (int) planes;
    }

    private static int flatGrid(long count) {
        return (int) Math.min(MAX_FLAT_BLOCKS, (count + BLOCK - 1) / BLOCK);
    }

    private static int planeGridX(long pixels) {
        return (int) Math.min(MAX_FLAT_BLOCKS, (pixels + BLOCK - 1) / BLOCK);
    }

    private static int planeGridY(int planes) {
        return Math.min(MAX_GRID_Y, planes);
    }
}
