package dev.silhouette.backend.cpu;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.ShapeInference;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The CPU implementation of every op, multithreaded over planes (or GEMM tiles). These define the
 * numerics other backends are held to: elementwise formulas are written out exactly as computed.
 */
public final class CpuOps {
    private CpuOps() {}

    /**
     * A node's learned tensors by suffix ("weight", "bias", ...): the graph's own for inference, the live
     * (and possibly fake-quantized) copies for training.
     */
    @FunctionalInterface
    public interface Parameters {
        Tensor get(String suffix);
    }

    /** One node with the graph's parameters. */
    public static Tensor forward(Graph graph, Node node, List<Tensor> in) {
        return forward(node, in, suffix -> graph.parameter(node, suffix));
    }

    /**
     * The CPU's one dispatch from op to kernel, for the backend and for training's forward alike. The
     * inputs' shapes are checked first ({@link ShapeInference}, errors naming the node), and Concat,
     * Elementwise and Reshape build on the output shape it gives.
     */
    public static Tensor forward(Node node, List<Tensor> in, Parameters parameters) {
        List<Shape> shapes = new ArrayList<>(in.size());
        for (Tensor t : in) shapes.add(t.shape());
        Shape expected = ShapeInference.infer(node, shapes);
        Tensor x = in.getFirst();
        return switch (node.op()) {
            case Op.Conv2d conv -> conv2d(x, parameters.get("weight"), conv.bias() ? parameters.get("bias") : null, conv);
            case Op.BatchNorm bn -> batchNorm(x, parameters.get("weight"), parameters.get("bias"),
                    parameters.get("running_mean"), parameters.get("running_var"), bn);
            case Op.Relu r -> relu(x);
            case Op.Clip c -> clip(x, c);
            case Op.Add a -> add(x, in.get(1));
            case Op.MaxPool p -> maxPool(x, p);
            case Op.AvgPool p -> avgPool(x, p);
            case Op.GlobalAvgPool g -> globalAvgPool(x);
            case Op.Linear l -> linear(x, parameters.get("weight"), l.bias() ? parameters.get("bias") : null, l);
            case Op.Flatten f -> flatten(x);
            case Op.Sigmoid s -> sigmoid(x);
            case Op.Softmax s -> softmax(x);
            case Op.Interpolate i -> interpolate(x, i);
            case Op.Concat c -> concat(in, expected, c);
            case Op.Elementwise e -> elementwise(x, in.get(1), e.arithmetic(), expected);
            case Op.ElementwiseConstant e -> elementwiseConstant(x, parameters.get("constant"), e);
            case Op.HardSigmoid h -> hardSigmoid(x, h);
            case Op.HardSwish h -> hardSwish(x);
            case Op.Reshape r -> reshape(x, expected);
            case Op.Pad p -> pad(x, p);
            case Op.LowBitConv2d c -> LowBitConv.run(x, c.arity() == 2 ? in.get(1) : null, c.conv().bias() ? parameters.get("bias") : null, c);
            case Op.RegionMap m -> RegionOps.regionMapTensor(x, m);
            case Op.PactQuantize q -> RegionOps.pactQuantize(x, q);
            case Op.AffineQuantize q -> RegionOps.affineQuantize(x, q);
            case Op.RegionQuantize q -> RegionOps.regionQuantize(x, in.get(1), q);
            case Op.DrqQuantize q -> RegionOps.drqQuantize(x, q);
            case Op.ChannelSqueeze q -> RegionOps.channelSqueeze(x, q);
            case Op.NoiseSilhouette q -> RegionOps.noiseSilhouette(x, in.size() > 1 ? in.get(1) : x, q);
            case Op.LogitBlend q -> logitBlend(x, in.get(1), parameters.get("gate"));
        };
    }

    /** Column-matrix floats per task (half of a 1 MB L2): a stretch of pixels is built and multiplied while in cache. */
    private static final int COLUMN_FLOATS = 1 << 17;

    /** Multiply-adds below which a convolution runs on the calling thread alone. */
    static final long SMALL_MACS = 1 << 21;

    /** Pixels per stretch are a multiple of the GEMM's widest panel (2 vectors of 16). */
    private static final int PIXEL_QUANTUM = 32;

    public static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, Op.Conv2d op) {
        return conv2d(x, weight, bias, op, null, false);
    }

    /**
     * Convolution as im2col + blocked GEMM per image, group and stretch of output pixels, each stretch one
     * task of the worker pool; 1x1/stride-1/unpadded skips im2col; other windows but unpadded 1x1 ones run on
     * {@link DirectConv} (the same bits, no column matrix); depthwise runs directly. The epilogue
     * adds the bias, then {@code residual} (an Add's other operand, the output's shape; null for none) and
     * ReLU when {@code relu}, in the order the separate ops would, so fusing changes no bit.
     */
    public static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, Op.Conv2d op, Tensor residual, boolean relu) {
        return conv2d(x, weight, bias, op, residual, relu, true);
    }

    /** As {@link #conv2d(Tensor, Tensor, Tensor, Op.Conv2d, Tensor, boolean)}; {@code allowDirect} false keeps im2col (its tests' oracle). */
    static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, Op.Conv2d op, Tensor residual, boolean relu, boolean allowDirect) {
        Shape in = x.shape();
        Window win = op.window();
        int oh = win.outH(in.h()), ow = win.outW(in.w());
        int groups = op.groups();
        int cg = op.inPerGroup(), og = op.outPerGroup(), k = op.taps();
        int pixels = oh * ow;
        float[] out = new float[in.n() * op.outChannels() * pixels];
        boolean direct = win.kernelH() == 1 && win.kernelW() == 1 && win.strideH() == 1 && win.strideW() == 1
                && win.padH() == 0 && win.padW() == 0;
        float[] w = weight.data(), b = bias == null ? null : bias.data(), r = residual == null ? null : residual.data();
        if (cg == 1 && og == 1 && !direct) {
            depthwise(x, w, b, r, relu, win, oh, ow, out);
            return new Tensor(Shape.of(in.n(), op.outChannels(), oh, ow), out);
        }
        if (allowDirect && DirectConv.applies(op)) {
            DirectConv.run(x.data(), in, w, b, r, relu, op, out);
            return new Tensor(Shape.of(in.n(), op.outChannels(), oh, ow), out);
        }
        int units = in.n() * groups;
        // Stretches small enough that the column matrix stays in L2, but at least 256 pixels, so the weights
        // (re-read once per stretch) stay amortised; split finer only when there are too few images and
        // groups to occupy every worker (batch 1). Stretches are whole GEMM panels.
        int threads = Workers.threads();
        int span = direct ? pixels : Math.max(256, COLUMN_FLOATS / k / PIXEL_QUANTUM * PIXEL_QUANTUM);
        // Too few images and groups for the workers (batch 1): when the whole column matrix is small (the
        // later layers, few pixels, many channels), split the output channels instead, each task building
        // the columns itself (a copy, cheap beside its share of the GEMM), so no task multiplies a short
        // pixel stretch padded to a whole panel or packs all the weights for it. Otherwise split the pixels.
        int rowChunks = 1;
        if (units < 2 * threads) {
            int wanted = (2 * threads + units - 1) / units;
            if ((long) k * pixels <= 4L * COLUMN_FLOATS && og >= 12 * wanted) {
                rowChunks = wanted;
                span = pixels;
            } else {
                span = Math.min(span, Math.max(PIXEL_QUANTUM, ceilTo((pixels + wanted - 1) / wanted, PIXEL_QUANTUM)));
            }
        }
        span = Math.min(span, pixels);
        int stretches = (pixels + span - 1) / span, chunks = rowChunks;
        int rowsPerChunk = ceilTo((og + chunks - 1) / chunks, 6);
        int finalSpan = span;
        Workers.Body task = (t, worker) -> {
            int u = t / (stretches * chunks), rest = t % (stretches * chunks);
            int p0 = (rest % stretches) * finalSpan, p1 = Math.min(pixels, p0 + finalSpan);
            int r0 = Math.min(og, (rest / stretches) * rowsPerChunk), r1 = Math.min(og, r0 + rowsPerChunk);
            if (r0 >= r1) return;
            int n = u / groups, g = u % groups;
            int cOff = (n * op.outChannels() + g * og + r0) * pixels + p0;
            Gemm.Epilogue e = Gemm.Epilogue.overwrite(b, g * og + r0, r, 0, relu);
            int aOff = (g * og + r0) * k;
            if (direct) {
                Gemm.multiply(r1 - r0, p1 - p0, k, w, aOff, k, x.data(), (n * in.c() + g * cg) * in.h() * in.w() + p0, pixels,
                        out, cOff, pixels, e, false);
            } else {
                float[] columns = Workers.scratch(Workers.Scratch.COLUMNS, k * (p1 - p0));
                Im2col.fill(x.data(), in, n, g * cg, cg, win, ow, p0, p1, columns);
                Gemm.multiply(r1 - r0, p1 - p0, k, w, aOff, k, columns, 0, p1 - p0, out, cOff, pixels, e, false);
            }
        };
        runTasks(units * stretches * chunks, (long) out.length * k, task);
        return new Tensor(Shape.of(in.n(), op.outChannels(), oh, ow), out);
    }

    /**
     * A convolution's tasks on the worker pool, or all of them in turn on the calling thread when it has fewer than
     * {@link #SMALL_MACS} multiply-adds (the bundled model at batch 1), where handing tasks over costs more.
     */
    static void runTasks(int tasks, long macs, Workers.Body task) {
        if (macs < SMALL_MACS) {
            Workers.run(1, (t0, worker) -> {
                for (int t = 0; t < tasks; t++) task.run(t, worker);
            });
        } else {
            Workers.run(tasks, task);
        }
    }

    /**
     * A convolution with one input and one output channel per group (depthwise), directly: its GEMM would
     * be one row. Each output takes the taps in order as one FMA chain from 0 (padding taps skipped: the
     * GEMM's FMA with a zero column leaves a sum unchanged), then bias, residual and ReLU: the GEMM's bits.
     */
    private static void depthwise(Tensor x, float[] w, float[] bias, float[] residual, boolean relu, Window win, int oh, int ow, float[] out) {
        Shape in = x.shape();
        int channels = in.c(), kh = win.kernelH(), kw = win.kernelW(), sw = win.strideW(), pixels = oh * ow;
        float[] src = x.data();
        int h = in.h(), iw = in.w();
        Workers.forEach(in.n() * channels, plane -> {
            int c = plane % channels, xOff = plane * h * iw, o = plane * pixels;
            for (int oy = 0; oy < oh; oy++) {
                int row = o + oy * ow;
                for (int ky = 0; ky < kh; ky++) {
                    int iy = win.inputY(oy, ky);
                    if (iy < 0 || iy >= h) continue;
                    for (int kx = 0; kx < kw; kx++) {
                        float weight = w[(c * kh + ky) * kw + kx];
                        int shift = kx * win.dilationW() - win.padW();
                        int lo = Math.max(0, Math.ceilDiv(-shift, sw)), hi = Math.min(ow, Math.floorDiv(iw - 1 - shift, sw) + 1);
                        int base = xOff + iy * iw + shift;
                        if (sw == 1) {
                            fmaRow(weight, src, base, out, row, lo, hi);
                        } else {
                            // Strided: scalar (a copy into column phases to vectorise measured no faster on MobileNetV2's layers).
                            for (int ox = lo; ox < hi; ox++) out[row + ox] = Math.fma(weight, src[base + ox * sw], out[row + ox]);
                        }
                    }
                }
            }
            float add = bias == null ? 0f : bias[c];
            for (int i = o; i < o + pixels; i++) {
                float v = bias == null ? out[i] : out[i] + add;
                if (residual != null) v += residual[i];
                out[i] = relu ? (v > 0f ? v : 0f) : v;
            }
        });
    }

    private static int ceilTo(int v, int quantum) {
        return (v + quantum - 1) / quantum * quantum;
    }

    /** y = x * scale + shift with scale = gamma / sqrt(var + eps) (in double, then rounded), shift = beta - mean * scale. */
    public static Tensor batchNorm(Tensor x, Tensor gamma, Tensor beta, Tensor mean, Tensor var, Op.BatchNorm op) {
        int channels = op.channels();
        float[] scale = new float[channels], shift = new float[channels];
        for (int c = 0; c < channels; c++) {
            scale[c] = (float) (gamma.data()[c] / Math.sqrt((double) var.data()[c] + op.eps()));
            shift[c] = beta.data()[c] - mean.data()[c] * scale[c];
        }
        int plane = x.shape().rank() > 2 ? x.shape().size() / (x.shape().dim(0) * channels) : 1;
        float[] in = x.data(), out = new float[in.length];
        parallelPlanes(in.length / plane, in.length, p -> {
            float s = scale[p % channels], t = shift[p % channels];
            for (int i = p * plane; i < (p + 1) * plane; i++) out[i] = in[i] * s + t;
        });
        return new Tensor(x.shape(), out);
    }

    public static Tensor relu(Tensor x) {
        // Its own loop rather than map(): map's call site is shared by many lambdas, so C2 cannot inline
        // this one, and ReLU follows every convolution (ResNet-18 batch 8: 23 -> 19-20 ms per run).
        float[] in = x.data(), out = new float[in.length];
        parallelChunks(in.length, (from, to) -> relu(in, out, from, to));
        return new Tensor(x.shape(), out);
    }

    private static final jdk.incubator.vector.VectorSpecies<Float> FLOATS = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;

    /**
     * out[i] = in[i] > 0 ? in[i] : 0 over [from, to), vectorised: as a scalar branch it mispredicts on half the
     * activations (NaN and -0 give +0 either way).
     */
    private static void relu(float[] in, float[] out, int from, int to) {
        var zero = jdk.incubator.vector.FloatVector.zero(FLOATS);
        int i = from;
        for (int end = from + FLOATS.loopBound(to - from); i < end; i += FLOATS.length()) {
            var v = jdk.incubator.vector.FloatVector.fromArray(FLOATS, in, i);
            zero.blend(v, v.compare(jdk.incubator.vector.VectorOperators.GT, 0f)).intoArray(out, i);
        }
        for (; i < to; i++) out[i] = in[i] > 0f ? in[i] : 0f;
    }

    /** out[row + i] = fma(weight, x[base + i], out[row + i]) for i in [lo, hi), vectorised (the same FMA per element). */
    private static void fmaRow(float weight, float[] x, int base, float[] out, int row, int lo, int hi) {
        var w = jdk.incubator.vector.FloatVector.broadcast(FLOATS, weight);
        int i = lo;
        for (int end = lo + FLOATS.loopBound(Math.max(0, hi - lo)); i < end; i += FLOATS.length()) {
            var acc = jdk.incubator.vector.FloatVector.fromArray(FLOATS, out, row + i);
            w.fma(jdk.incubator.vector.FloatVector.fromArray(FLOATS, x, base + i), acc).intoArray(out, row + i);
        }
        for (; i < hi; i++) out[row + i] = Math.fma(weight, x[base + i], out[row + i]);
    }

    public static Tensor clip(Tensor x, Op.Clip op) {
        float lo = op.min(), hi = op.max();
        float[] in = x.data(), out = new float[in.length];
        // Its own vectorised loop, as ReLU's (ReLU6 follows every convolution of MobileNetV2): v < lo ? lo : min(v, hi).
        parallelChunks(in.length, (from, to) -> {
            var low = jdk.incubator.vector.FloatVector.broadcast(FLOATS, lo);
            int i = from;
            for (int end = from + FLOATS.loopBound(to - from); i < end; i += FLOATS.length()) {
                var v = jdk.incubator.vector.FloatVector.fromArray(FLOATS, in, i);
                v.blend(low, v.compare(jdk.incubator.vector.VectorOperators.LT, lo)).min(hi).intoArray(out, i);
            }
            for (; i < to; i++) out[i] = in[i] < lo ? lo : Math.min(in[i], hi);
        });
        return new Tensor(x.shape(), out);
    }

    /** 1 / (1 + e^-x), evaluated in double and rounded once. */
    public static Tensor sigmoid(Tensor x) {
        return map(x, v -> (float) (1.0 / (1.0 + Math.exp(-v))));
    }

    /** {@link Op.LogitBlend}: g main + (1 - g) aux with g = sigmoid(gate[0]), g rounded once to float. */
    public static Tensor logitBlend(Tensor main, Tensor aux, Tensor gate) {
        float g = (float) (1.0 / (1.0 + Math.exp(-gate.data()[0])));
        float[] m = main.data(), a = aux.data(), out = new float[m.length];
        for (int i = 0; i < m.length; i++) out[i] = g * m[i] + (1 - g) * a[i];
        return new Tensor(main.shape(), out);
    }

    public static Tensor add(Tensor a, Tensor b) {
        float[] x = a.data(), y = b.data(), out = new float[x.length];
        parallelChunks(x.length, (from, to) -> {
            for (int i = from; i < to; i++) out[i] = x[i] + y[i];
        });
        return new Tensor(a.shape(), out);
    }

    /**
     * a (op) b with NumPy broadcasting into {@code out}: each operand is read with stride 0 along the axes
     * where it has size 1 (or which it lacks), so every output element is one float32 operation.
     */
    public static Tensor elementwise(Tensor a, Tensor b, Op.Arithmetic op, Shape out) {
        float[] x = a.data(), y = b.data(), result = new float[out.size()];
        if (a.shape().equals(out) && b.shape().equals(out)) {
            parallelChunks(result.length, (from, to) -> {
                for (int i = from; i < to; i++) result[i] = op.apply(x[i], y[i]);
            });
            return new Tensor(out, result);
        }
        int rank = out.rank();
        int[] dims = out.dims(), sa = broadcastStrides(a.shape(), rank), sb = broadcastStrides(b.shape(), rank);
        // Rows of the last axis in parallel; the index of the row's first element decomposes axis by axis.
        int inner = rank == 0 ? 1 : dims[rank - 1], rows = result.length / Math.max(1, inner);
        int innerA = rank == 0 ? 0 : sa[rank - 1], innerB = rank == 0 ? 0 : sb[rank - 1];
        parallelPlanes(rows, result.length, r -> {
            int ia = 0, ib = 0, rest = r;
            for (int d = rank - 2; d >= 0; d--) {
                int i = rest % dims[d];
                rest /= dims[d];
                ia += i * sa[d];
                ib += i * sb[d];
            }
            for (int j = 0; j < inner; j++) result[r * inner + j] = op.apply(x[ia + j * innerA], y[ib + j * innerB]);
        });
        return new Tensor(out, result);
    }

    /** Row-major strides of {@code s} right-aligned to {@code rank} axes, 0 where it broadcasts. */
    private static int[] broadcastStrides(Shape s, int rank) {
        int[] strides = new int[rank];
        int stride = 1;
        for (int d = s.rank() - 1; d >= 0; d--) {
            int axis = d + rank - s.rank();
            strides[axis] = s.dim(d) == 1 ? 0 : stride;
            stride *= s.dim(d);
        }
        return strides;
    }

    public static Tensor elementwiseConstant(Tensor x, Tensor constant, Op.ElementwiseConstant op) {
        return op.constantFirst() ? elementwise(constant, x, op.arithmetic(), x.shape()) : elementwise(x, constant, op.arithmetic(), x.shape());
    }

    /** max(0, min(1, alpha x + beta)) in float32, as ONNX Runtime computes it. */
    public static Tensor hardSigmoid(Tensor x, Op.HardSigmoid op) {
        float alpha = op.alpha(), beta = op.beta();
        return map(x, v -> Math.max(0f, Math.min(1f, alpha * v + beta)));
    }

    /** x * max(0, min(1, x / 6 + 1/2)). */
    public static Tensor hardSwish(Tensor x) {
        return map(x, v -> v * Math.max(0f, Math.min(1f, v * (1f / 6f) + 0.5f)));
    }

    public static Tensor reshape(Tensor x, Shape out) {
        return x.reshape(out);
    }

    public static Tensor pad(Tensor x, Op.Pad op) {
        Shape s = x.shape();
        int oh = s.h() + op.top() + op.bottom(), ow = s.w() + op.left() + op.right();
        float[] in = x.data(), out = new float[s.n() * s.c() * oh * ow];
        parallelPlanes(s.n() * s.c(), out.length, p -> {
            java.util.Arrays.fill(out, p * oh * ow, (p + 1) * oh * ow, op.value());
            for (int y = 0; y < s.h(); y++) {
                System.arraycopy(in, (p * s.h() + y) * s.w(), out, (p * oh + y + op.top()) * ow + op.left(), s.w());
            }
        });
        return new Tensor(Shape.of(s.n(), s.c(), oh, ow), out);
    }

    /** Softmax over axis 1 at every position of the trailing axes: max-shifted, summed in double. */
    public static Tensor softmax(Tensor x) {
        Shape s = x.shape();
        int classes = s.dim(1), inner = s.size() / (s.dim(0) * classes);
        float[] in = x.data(), out = new float[in.length];
        parallelPlanes(s.dim(0) * inner, in.length, p -> {
            int n = p / inner, i = p % inner, base = n * classes * inner + i;
            float max = Float.NEGATIVE_INFINITY;
            for (int c = 0; c < classes; c++) max = Math.max(max, in[base + c * inner]);
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.exp((double) in[base + c * inner] - max);
            for (int c = 0; c < classes; c++) out[base + c * inner] = (float) (Math.exp((double) in[base + c * inner] - max) / sum);
        });
        return new Tensor(s, out);
    }

    public static Tensor maxPool(Tensor x, Op.MaxPool op) {
        return pool(x, op.window(), true, false);
    }

    public static Tensor avgPool(Tensor x, Op.AvgPool op) {
        return pool(x, op.window(), false, op.countIncludePad());
    }

    private static Tensor pool(Tensor x, Window win, boolean max, boolean countIncludePad) {
        Shape s = x.shape();
        int oh = win.outH(s.h()), ow = win.outW(s.w());
        float[] in = x.data(), out = new float[s.n() * s.c() * oh * ow];
        parallelPlanes(s.n() * s.c(), out.length, p -> {
            int src = p * s.h() * s.w(), dst = p * oh * ow;
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    float best = Float.NEGATIVE_INFINITY;
                    double sum = 0;
                    int taps = 0;
                    for (int ky = 0; ky < win.kernelH(); ky++) {
                        int iy = win.inputY(oy, ky);
                        if (iy < 0 || iy >= s.h()) continue;
                        for (int kx = 0; kx < win.kernelW(); kx++) {
                            int ix = win.inputX(ox, kx);
                            if (ix < 0 || ix >= s.w()) continue;
                            float v = in[src + iy * s.w() + ix];
                            best = Math.max(best, v);
                            sum += v;
                            taps++;
                        }
                    }
                    int divisor = countIncludePad ? win.taps() : taps;
                    out[dst + oy * ow + ox] = max ? best : (float) (sum / divisor);
                }
        });
        return new Tensor(Shape.of(s.n(), s.c(), oh, ow), out);
    }

    public static Tensor globalAvgPool(Tensor x) {
        Shape s = x.shape();
        int plane = s.h() * s.w();
        float[] in = x.data(), out = new float[s.n() * s.c()];
        parallelPlanes(out.length, in.length, p -> {
            double sum = 0;
            for (int i = p * plane; i < (p + 1) * plane; i++) sum += in[i];
            out[p] = (float) (sum / plane);
        });
        return new Tensor(Shape.of(s.n(), s.c(), 1, 1), out);
    }

    /** y = x W^T + b through the GEMM: W^T is formed once per call (the layers are small). */
    public static Tensor linear(Tensor x, Tensor weight, Tensor bias, Op.Linear op) {
        int batch = x.shape().dim(0), in = op.inFeatures(), outF = op.outFeatures();
        float[] wt = new float[in * outF];
        for (int o = 0; o < outF; o++)
            for (int i = 0; i < in; i++) wt[i * outF + o] = weight.data()[o * in + i];
        float[] out = new float[batch * outF];
        if (bias != null) for (int n = 0; n < batch; n++) System.arraycopy(bias.data(), 0, out, n * outF, outF);
        Gemm.multiply(batch, outF, in, x.data(), 0, in, wt, 0, outF, out, 0, outF);
        return new Tensor(Shape.of(batch, outF), out);
    }

    public static Tensor flatten(Tensor x) {
        return x.reshape(Shape.of(x.shape().dim(0), x.shape().sampleSize()));
    }

    /**
     * Nearest: source index floor(dst * in / out) (PyTorch's "nearest"). Bilinear, align_corners=false:
     * source coordinate (dst + 0.5) * in / out - 0.5, clamped at 0, blending the two neighbours.
     */
    public static Tensor interpolate(Tensor x, Op.Interpolate op) {
        Shape s = x.shape();
        int oh = op.outH(), ow = op.outW();
        float[] in = x.data(), out = new float[s.n() * s.c() * oh * ow];
        double sy = (double) s.h() / oh, sx = (double) s.w() / ow;
        parallelPlanes(s.n() * s.c(), out.length, p -> {
            int src = p * s.h() * s.w(), dst = p * oh * ow;
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    float v;
                    if (op.mode() == Op.Interpolate.Mode.NEAREST) {
                        int iy = Math.min((int) Math.floor(oy * sy), s.h() - 1);
                        int ix = Math.min((int) Math.floor(ox * sx), s.w() - 1);
                        v = in[src + iy * s.w() + ix];
                    } else {
                        double fy = Math.max(0, (oy + 0.5) * sy - 0.5), fx = Math.max(0, (ox + 0.5) * sx - 0.5);
                        int y0 = Math.min((int) fy, s.h() - 1), x0 = Math.min((int) fx, s.w() - 1);
                        int y1 = Math.min(y0 + 1, s.h() - 1), x1 = Math.min(x0 + 1, s.w() - 1);
                        double ly = fy - y0, lx = fx - x0;
                        double top = in[src + y0 * s.w() + x0] * (1 - lx) + in[src + y0 * s.w() + x1] * lx;
                        double bottom = in[src + y1 * s.w() + x0] * (1 - lx) + in[src + y1 * s.w() + x1] * lx;
                        v = (float) (top * (1 - ly) + bottom * ly);
                    }
                    out[dst + oy * ow + ox] = v;
                }
        });
        return new Tensor(Shape.of(s.n(), s.c(), oh, ow), out);
    }

    public static Tensor concat(List<Tensor> xs, Shape outShape, Op.Concat op) {
        int axis = op.axis();
        int outer = 1;
        for (int d = 0; d < axis; d++) outer *= outShape.dim(d);
        int inner = outShape.size() / outer / outShape.dim(axis);
        float[] out = new float[outShape.size()];
        int rowLength = outShape.dim(axis) * inner;
        int offset = 0;
        for (Tensor t : xs) {
            int chunk = t.shape().dim(axis) * inner;
            for (int o = 0; o < outer; o++) System.arraycopy(t.data(), o * chunk, out, o * rowLength + offset, chunk);
            offset += chunk;
        }
        return new Tensor(outShape, out);
    }

    private interface FloatMap {
        float apply(float v);
    }

    private static Tensor map(Tensor x, FloatMap f) {
        float[] in = x.data(), out = new float[in.length];
        parallelChunks(in.length, (from, to) -> {
            for (int i = from; i < to; i++) out[i] = f.apply(in[i]);
        });
        return new Tensor(x.shape(), out);
    }

    private interface Range {
        void run(int from, int to);
    }

    private static final int CHUNK = 1 << 15;

    private static void parallelChunks(int length, Range body) {
        int chunks = (length + CHUNK - 1) / CHUNK;
        if (chunks <= 1) {
            body.run(0, length);
            return;
        }
        Workers.run(chunks, (c, w) -> body.run(c * CHUNK, Math.min(length, (c + 1) * CHUNK)));
    }

    /** Planes in parallel, unless there are fewer than CHUNK elements in all: then waking workers costs more. */
    private static void parallelPlanes(int planes, int elements, java.util.function.IntConsumer body) {
        if (elements < CHUNK) {
            for (int p = 0; p < planes; p++) body.accept(p);
        } else {
            Workers.forEach(planes, body);
        }
    }
}
