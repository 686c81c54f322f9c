package dev.silhouette.backend.cuda;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.Inputs;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import jcuda.Sizeof;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

import static jcuda.driver.JCudaDriver.cuMemGetInfo;

/**
 * Runs whole graphs on one GPU: one upload per input and one download per requested output per call,
 * every intermediate in pooled device memory, no host round trip between layers. Convolutions (with a
 * following ReLU fused into the bias epilogue), pooling and softmax run on cuDNN and linear layers on
 * cuBLAS when those libraries are installed (otherwise, said once, on the built-in kernels); every other
 * op runs on the built-in kernels in cuda/, the region-quantization ops on {@link RegionOpKernels}
 * (cuda/region_ops.cu, never yet run on a GPU: docs/KERNELS.md). Parameters are uploaded once
 * per graph and kept for the most recently used graphs. One backend serialises its calls.
 */
public final class CudaBackend implements Backend {
    private static final Logger LOG = Logger.getLogger(CudaBackend.class.getName());
    private static final Set<String> REPORTED = ConcurrentHashMap.newKeySet();
    private static final int CACHED_GRAPHS = 4;

    private final CudaContext context;
    private final CudaStream stream;
    private final DeviceAllocator allocator;
    private final KernelModule module;
    private final BuiltinKernels kernels;
    private final RegionOpKernels regionOps;
    private final RegionMaskKernel regionMasks;
    private final LowBitIgemmKernel lowBit;
    private final Cudnn cudnn;
    private final Cublas cublas;
    private final Map<Graph, DeviceWeights> weights = new LinkedHashMap<>(8, 0.75f, true);
    private PinnedBuffer staging;
    private boolean closed;

    public CudaBackend(int device) {
        List<AutoCloseable> opened = new ArrayList<>();
        try {
            context = new CudaContext(device);
            opened.add(context);
            stream = new CudaStream();
            opened.add(stream);
            allocator = new DeviceAllocator(context);
            opened.add(allocator);
            module = new KernelModule(context);
            opened.add(module);
            kernels = new BuiltinKernels(module);
            regionOps = new RegionOpKernels(module);
            regionMasks = new RegionMaskKernel(module);
            lowBit = new LowBitIgemmKernel(module);
            cudnn = Cudnn.unavailableReason().isEmpty() ? new Cudnn(stream.handle()) : null;
            if (cudnn != null) opened.add(cudnn);
            cublas = Cublas.unavailableReason().isEmpty() ? new Cublas(stream.handle()) : null;
            if (cublas != null) opened.add(cublas);
        } catch (RuntimeException e) {
            for (int i = opened.size() - 1; i >= 0; i--) {
                try {
                    opened.get(i).close();
                } catch (Exception suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
        Cudnn.unavailableReason().ifPresent(r -> reportOnce("cuDNN unavailable (" + r + "): convolutions run on the built-in direct kernel"));
        Cublas.unavailableReason().ifPresent(r -> reportOnce("cuBLAS unavailable (" + r + "): linear layers run on the built-in GEMM kernel"));
    }

    private static void reportOnce(String message) {
        if (REPORTED.add(message)) LOG.warning(message);
    }

    @Override
    public String name() {
        return "cuda:" + context.ordinal();
    }

    public DeviceAllocator allocator() {
        return allocator;
    }

    /** Device bytes held between calls: cached graph parameters and the cuDNN workspace. */
    public long retainedBytes() {
        long total = workspace == null ? 0 : workspace.capacity();
        for (DeviceWeights w : weights.values()) total += w.bytes();
        return total;
    }

    public long freeDeviceMemory() {
        context.makeCurrent();
        long[] free = new long[1], total = new long[1];
        Driver.check(cuMemGetInfo(free, total), "cuMemGetInfo");
        return free[0];
    }

    /** A value on the device. Buffers may be shared (Flatten and Reshape alias their input), so they are counted. */
    private record Value(DeviceBuffer buffer, Shape shape) {
        long address() {
            return buffer.address();
        }
    }

    @Override
    public Map<String, Tensor> run(Graph graph, Map<String, Tensor> inputs, List<String> requested) {
        if (closed) throw new IllegalStateException("backend " + name() + " is closed");
        context.makeCurrent();
        int batch = Inputs.bind(graph, inputs);
        Inputs.checkRequested(graph, requested);
        Map<String, Shape> shapes = graph.inferShapes(batch);
        DeviceWeights params = weightsFor(graph);
        Map<String, Value> values = new HashMap<>();
        Map<DeviceBuffer, Integer> holders = new IdentityHashMap<>();
        Set<String> wanted = new HashSet<>(requested);
        try {
            for (Graph.Input in : graph.inputs()) {
                Tensor t = inputs.get(in.name());
                DeviceBuffer b = allocator.allocate((long) t.size() * Sizeof.FLOAT);
                holders.put(b, 1);
                b.upload(t.data(), staging(t.size()), stream);
                values.put(in.name(), new Value(b, t.shape()));
            }
            Map<String, Integer> lastUse = new HashMap<>();
            List<Node> nodes = graph.nodes();
            for (int i = 0; i < nodes.size(); i++) for (String in : nodes.get(i).inputs()) lastUse.put(in, i);
            Set<String> reluFused = convolutionsFollowedByRelu(nodes, wanted);
            for (int i = 0; i < nodes.size(); i++) {
                Node node = nodes.get(i);
                List<Value> args = new ArrayList<>(node.inputs().size());
                for (String in : node.inputs()) args.add(values.get(in));
                Shape outShape = shapes.get(node.name());
                Value out;
                if (node.op() instanceof Op.Flatten || node.op() instanceof Op.Reshape
                        || node.op() instanceof Op.Relu && reluFused.contains(node.inputs().getFirst())) {
                    // Flatten and Reshape are views; a ReLU fused into its convolution's epilogue already ran there.
                    out = new Value(args.getFirst().buffer(), outShape);
                } else {
                    out = new Value(allocator.allocate((long) outShape.size() * Sizeof.FLOAT), outShape);
                    execute(graph, node, args, out, params, reluFused.contains(node.name()));
                }
                holders.merge(out.buffer(), 1, Integer::sum);
                values.put(node.name(), out);
                for (String in : node.inputs()) {
                    if (lastUse.get(in) == i && !wanted.contains(in)) drop(values.remove(in), holders);
                }
            }
            Map<String, Tensor> result = new LinkedHashMap<>();
            for (String r : requested) {
                Value v = values.get(r);
                float[] host = new float[v.shape().size()];
                v.buffer().download(host, staging(host.length), stream);
                result.put(r, new Tensor(v.shape(), host));
            }
            return result;
        } finally {
            for (DeviceBuffer b : holders.keySet()) b.close();
        }
    }

    /**
     * Convolutions whose only consumer is a ReLU and whose own output nobody asked for: their bias and
     * ReLU run as one epilogue pass instead of two passes over the output.
     */
    private static Set<String> convolutionsFollowedByRelu(List<Node> nodes, Set<String> wanted) {
        Map<String, Integer> consumers = new HashMap<>();
        for (Node n : nodes) for (String in : n.inputs()) consumers.merge(in, 1, Integer::sum);
        Set<String> convolutions = new HashSet<>();
        for (Node n : nodes) if (n.op() instanceof Op.Conv2d) convolutions.add(n.name());
        Set<String> fused = new HashSet<>();
        for (Node n : nodes) {
            String in = n.inputs().getFirst();
            if (n.op() instanceof Op.Relu && convolutions.contains(in) && consumers.get(in) == 1 && !wanted.contains(in)) fused.add(in);
        }
        return fused;
    }

    private static void drop(Value v, Map<DeviceBuffer, Integer> holders) {
        if (v == null) return;
        int left = holders.merge(v.buffer(), -1, Integer::sum);
        if (left == 0) {
            holders.remove(v.buffer());
            v.buffer().close();
        }
    }

    private PinnedBuffer staging(int floats) {
        long bytes = Math.max(4, (long) floats * Sizeof.FLOAT);
        if (staging == null || staging.bytes() < bytes) {
            if (staging != null) staging.close();
            staging = new PinnedBuffer(Math.max(bytes, 1 << 20));
        }
        return staging;
    }

    private DeviceWeights weightsFor(Graph graph) {
        DeviceWeights w = weights.get(graph);
        if (w == null) {
            w = new DeviceWeights(graph, allocator, this::staging, stream);
            weights.put(graph, w);
            if (weights.size() > CACHED_GRAPHS) {
                var eldest = weights.entrySet().iterator().next();
                eldest.getValue().close();
                weights.remove(eldest.getKey());
            }
        }
        return w;
    }

    private void execute(Graph graph, Node node, List<Value> in, Value out, DeviceWeights params, boolean fuseRelu) {
        Value x = in.getFirst();
        Shape s = x.shape();
        long count = out.shape().size();
        String op = node.name();
        switch (node.op()) {
            case Op.Conv2d conv -> {
                long w = params.address(node, "weight");
                long bias = conv.bias() ? params.address(node, "bias") : 0;
                var win = conv.window();
                int plane = out.shape().h() * out.shape().w();
                if (cudnn != null) {
                    // Unfused, cuDNN adds the bias itself (cudnnAddTensor); fused, one pass adds it and applies ReLU.
                    cudnn.conv2d(op, s.n(), s.c(), s.h(), s.w(), conv.outChannels(), win.kernelH(), win.kernelW(), win.padH(), win.padW(),
                            win.strideH(), win.strideW(), win.dilationH(), win.dilationW(), conv.groups(), x.address(), w,
                            fuseRelu ? 0 : bias, out.address(), this::workspace);
                    if (fuseRelu && bias != 0) {
                        kernels.biasAdd(out.address(), bias, out.address(), s.n(), conv.outChannels(), plane, true, stream);
                    } else if (fuseRelu) {
                        kernels.relu(out.address(), out.address(), count, stream);
                    }
                } else {
                    kernels.conv2dDirect(x.address(), w, bias, out.address(), s, conv, out.shape().h(), out.shape().w(), stream);
                    if (fuseRelu) kernels.relu(out.address(), out.address(), count, stream);
                }
            }
            case Op.BatchNorm bn -> kernels.batchNorm(x.address(), out.address(), params.address(node, DeviceWeights.BN_SCALE),
                    params.address(node, DeviceWeights.BN_SHIFT), s.dim(0), bn.channels(), s.size() / (s.dim(0) * bn.channels()), stream);
            case Op.Relu r -> kernels.relu(x.address(), out.address(), count, stream);
            case Op.Clip c -> kernels.clip(x.address(), out.address(), count, c.min(), c.max(), stream);
            case Op.Sigmoid sg -> kernels.sigmoid(x.address(), out.address(), count, stream);
            case Op.Add a -> kernels.add(x.address(), in.get(1).address(), out.address(), count, stream);
            case Op.MaxPool p when cudnn != null && undilated(p.window()) -> cudnnPool(op, true, false, s, p.window(), x, out);
            case Op.AvgPool p when cudnn != null && undilated(p.window()) -> cudnnPool(op, false, p.countIncludePad(), s, p.window(), x, out);
            case Op.MaxPool p -> kernels.maxPool(x.address(), out.address(), s.n(), s.c(), s.h(), s.w(), p.window(), out.shape().h(), out.shape().w(), stream);
            case Op.AvgPool p -> kernels.avgPool(x.address(), out.address(), s.n(), s.c(), s.h(), s.w(), p.window(), p.countIncludePad(),
                    out.shape().h(), out.shape().w(), stream);
            case Op.GlobalAvgPool g -> kernels.globalAvgPool(x.address(), out.address(), s.n() * s.c(), s.h() * s.w(), stream);
            case Op.Linear l -> {
                long bias = l.bias() ? params.address(node, "bias") : 0;
                if (cublas != null) {
                    cublas.sgemmRowMajor(op, s.dim(0), l.outFeatures(), l.inFeatures(), 1f, x.address(), l.inFeatures(),
                            params.address(node, "weight"), l.inFeatures(), 0f, out.address(), l.outFeatures(), true);
                    if (bias != 0) kernels.biasAdd(out.address(), bias, out.address(), s.dim(0), l.outFeatures(), 1, false, stream);
                } else {
                    kernels.linear(x.address(), params.address(node, "weight"), bias, out.address(), s.dim(0), l.inFeatures(), l.outFeatures(), stream);
                }
            }
            case Op.Softmax sm when cudnn != null -> cudnn.softmaxChannels(op, s.dim(0), s.dim(1), 1, s.size() / (s.dim(0) * s.dim(1)),
                    x.address(), out.address());
            case Op.Softmax sm -> kernels.softmax(x.address(), out.address(), s.dim(0), s.dim(1), s.size() / (s.dim(0) * s.dim(1)), stream);
            case Op.Interpolate ip -> kernels.interpolate(x.address(), out.address(), s.n() * s.c(), s.h(), s.w(), ip.outH(), ip.outW(),
                    ip.mode() == Op.Interpolate.Mode.BILINEAR, stream);
            case Op.Concat c -> {
                int outer = 1;
                for (int d = 0; d < c.axis(); d++) outer *= s.dim(d);
                int rowLength = out.shape().size() / outer;
                int offset = 0;
                for (Value v : in) {
                    int chunk = v.shape().size() / outer;
                    kernels.copyStrided(v.address(), out.address(), outer, chunk, chunk, rowLength, offset, stream);
                    offset += chunk;
                }
            }
            case Op.Flatten f -> throw new IllegalStateException("Flatten aliases its input and is never executed");
            case Op.Elementwise e -> kernels.broadcastArithmetic(x.address(), s, in.get(1).address(), in.get(1).shape(), out.address(), out.shape(),
                    e.arithmetic(), stream);
            case Op.ElementwiseConstant e -> {
                long constant = params.address(node, "constant");
                if (e.constantFirst()) {
                    kernels.broadcastArithmetic(constant, e.constantShape(), x.address(), s, out.address(), out.shape(), e.arithmetic(), stream);
                } else {
                    kernels.broadcastArithmetic(x.address(), s, constant, e.constantShape(), out.address(), out.shape(), e.arithmetic(), stream);
                }
            }
            case Op.HardSigmoid h -> kernels.hardSigmoid(x.address(), out.address(), count, h.alpha(), h.beta(), stream);
            case Op.HardSwish h -> kernels.hardSwish(x.address(), out.address(), count, stream);
            case Op.Pad p -> kernels.pad(x.address(), out.address(), s.n(), s.c(), s.h(), s.w(), p, stream);
            case Op.Reshape r -> throw new IllegalStateException("Reshape aliases its input and is never executed");
            case Op.AffineQuantize q -> throw new IllegalStateException("AffineQuantize has no CUDA kernel; supports() refuses it before execution");
            // The packed path (never run on a GPU: checked only under the host emulation, EmulatedLowBitIgemmTest).
            case Op.LowBitConv2d c -> {
                LowBitIgemmKernel.Prepared p = params.lowBit(node);
                try (Temporaries work = new Temporaries()) {
                    long region = 0;
                    if (in.size() > 1) {
                        long pixels = (long) s.n() * s.h() * s.w();
                        region = work.allocate(pixels, "region bytes");
                        lowBit.launchRegionConversion(in.get(1).address(), region, pixels, false, stream);
                    }
                    long codes = work.allocate(LowBitIgemmKernel.codeBytes(s), "activation codes");
                    lowBit.launchCodes(s, x.address(), region, params.address(node, DeviceWeights.LOWBIT_CODE_STEPS),
                            params.address(node, DeviceWeights.LOWBIT_LEVELS), p.zeroPoint(), codes, stream);
                    var constants = new LowBitIgemmKernel.Constants(params.address(node, DeviceWeights.LOWBIT_WEIGHTS),
                            params.address(node, DeviceWeights.LOWBIT_SUMS), params.address(node, DeviceWeights.LOWBIT_SCALES),
                            params.address(node, DeviceWeights.LOWBIT_STEPS), c.conv().bias() ? params.address(node, "bias") : 0);
                    lowBit.launchConv(c, s, p, constants, codes, region, 0, out.address(), stream);
                }
            }
            case Op.RegionMap m -> {
                int[] shares = m.policy().percents();
                try (Temporaries work = new Temporaries()) {
                    long pixels = (long) s.n() * m.height() * m.width();
                    long bytes = work.allocate(pixels, "region bytes");
                    long keys = work.allocate((long) s.n() * Math.max(1, shares.length - 1) * Long.BYTES, "cut keys");
                    long resized = RegionMaskKernel.workFloats(s, m.height(), m.width(), m.order());
                    long resizeWork = resized > 0 ? work.allocate(resized * Sizeof.FLOAT, "resized silhouette") : 0;
                    regionMasks.launch(s, x.address(), shares, params.address(node, DeviceWeights.MAP_SHARES), m.height(), m.width(), m.resize(), m.order(),
                            resizeWork, keys, bytes, stream);
                    lowBit.launchRegionConversion(bytes, out.address(), pixels, true, stream);
                }
            }
            case Op.PactQuantize q -> regionOps.pactQuantize(x.address(), out.address(), count, q, stream);
            case Op.RegionQuantize q -> {
                var table = new RegionOpKernels.RegionTable(params.address(node, DeviceWeights.REGION_SHARES),
                        params.address(node, DeviceWeights.REGION_BITS), params.address(node, DeviceWeights.REGION_ALPHAS));
                try (Temporaries work = new Temporaries()) {
                    regionOps.regionQuantize(x.address(), s, in.get(1).address(), in.get(1).shape(), q, table, work, out.address(), stream);
                }
            }
            case Op.DrqQuantize q -> {
                try (Temporaries work = new Temporaries()) {
                    regionOps.drqQuantize(x.address(), s, q, work, out.address(), stream);
                }
            }
            case Op.ChannelSqueeze q -> {
                try (Temporaries work = new Temporaries()) {
                    regionOps.channelSqueeze(x.address(), s, q, work, out.address(), stream);
                }
            }
            case Op.NoiseSilhouette q -> {
                try (Temporaries work = new Temporaries()) {
                    var source = in.size() > 1 ? in.get(1) : x;
                    regionOps.noiseSilhouette(x.address(), s, source.address(), source.shape(), q, work, out.address(), stream);
                }
            }
            case Op.LogitBlend q -> regionOps.logitBlend(x.address(), in.get(1).address(), out.address(), count,
                    graph.parameter(node, "gate").data()[0], stream);
        }
    }

    /**
     * An op's device temporaries from the pool, returned when the op's launches are queued: the pool hands
     * them out again only to later work on the same stream, which runs after these launches.
     */
    private final class Temporaries implements RegionOpKernels.Work, AutoCloseable {
        private final List<DeviceBuffer> buffers = new ArrayList<>();

        @Override
        public long allocate(long bytes, String what) {
            DeviceBuffer b = allocator.allocate(bytes);
            buffers.add(b);
            return b.address();
        }

        @Override
        public void close() {
            for (DeviceBuffer b : buffers) b.close();
        }
    }

    /** cuDNN pooling has no dilation; dilated windows stay on the built-in kernels. */
    private static boolean undilated(Window w) {
        return w.dilationH() == 1 && w.dilationW() == 1;
    }

    private void cudnnPool(String op, boolean max, boolean countIncludePad, Shape s, Window w, Value x, Value out) {
        cudnn.pool(op, max, countIncludePad, s.n(), s.c(), s.h(), s.w(), w.kernelH(), w.kernelW(), w.padH(), w.padW(), w.strideH(), w.strideW(),
                x.address(), out.address());
    }

    /** cuDNN's workspace: taken from the pool for the duration of the call's stream work. */
    private long workspace(long bytes) {
        if (workspace == null || workspace.bytes() < bytes) {
            if (workspace != null) {
                stream.synchronize("workspace resize");
                workspace.close();
            }
            workspace = allocator.allocate(bytes);
        }
        return workspace.address();
    }

    private DeviceBuffer workspace;

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        context.makeCurrent();
        stream.synchronize("close");
        for (DeviceWeights w : weights.values()) w.close();
        weights.clear();
        if (workspace != null) workspace.close();
        if (staging != null) staging.close();
        if (cublas != null) cublas.close();
        if (cudnn != null) cudnn.close();
        module.close();
        allocator.close();
        stream.close();
        context.close();
    }
}
