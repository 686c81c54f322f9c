package dev.silhouette.backend.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Tensor;
import jcuda.Sizeof;

import java.util.HashMap;
import java.util.Map;
import java.util.function.IntFunction;

/**
 * A graph's parameters on the device, uploaded once. BatchNorm is stored as the per-channel scale and
 * shift the CPU backend computes (scale = gamma / sqrt(var + eps) in double, shift = beta - mean * scale),
 * so the GPU applies bit-identical factors.
 */
final class DeviceWeights implements AutoCloseable {
    static final String BN_SCALE = "silhouette.bn_scale";
    static final String BN_SHIFT = "silhouette.bn_shift";
    /** A RegionQuantize node's constants (RegionOpKernels.RegionTable): region shares, widths, clip levels. */
    static final String REGION_SHARES = "silhouette.region_shares";
    static final String REGION_BITS = "silhouette.region_bits";
    static final String REGION_ALPHAS = "silhouette.region_alphas";
    /** A LowBitConv2d node's LowBitIgemmKernel.Prepared constants; a RegionMap node's region shares. */
    static final String LOWBIT_WEIGHTS = "silhouette.lowbit_weights", LOWBIT_SUMS = "silhouette.lowbit_sums", LOWBIT_SCALES = "silhouette.lowbit_scales",
            LOWBIT_STEPS = "silhouette.lowbit_steps", LOWBIT_CODE_STEPS = "silhouette.lowbit_code_steps", LOWBIT_LEVELS = "silhouette.lowbit_levels",
            MAP_SHARES = "silhouette.map_shares";

    private final Map<String, DeviceBuffer> buffers = new HashMap<>();
    private final Map<String, LowBitIgemmKernel.Prepared> lowBit = new HashMap<>();
    private long bytes;

    DeviceWeights(Graph graph, DeviceAllocator allocator, IntFunction<PinnedBuffer> staging, CudaStream stream) {
        try {
            for (Node node : graph.nodes()) {
                if (node.op() instanceof Op.BatchNorm bn) {
                    float[] scale = new float[bn.channels()], shift = new float[bn.channels()];
                    float[] gamma = graph.parameter(node, "weight").data(), beta = graph.parameter(node, "bias").data();
                    float[] mean = graph.parameter(node, "running_mean").data(), var = graph.parameter(node, "running_var").data();
                    for (int c = 0; c < bn.channels(); c++) {
                        scale[c] = (float) (gamma[c] / Math.sqrt((double) var[c] + bn.eps()));
                        shift[c] = beta[c] - mean[c] * scale[c];
                    }
                    put(node.name() + "." + BN_SCALE, scale, allocator, staging, stream);
                    put(node.name() + "." + BN_SHIFT, shift, allocator, staging, stream);
                } else if (node.op() instanceof Op.RegionQuantize q) {
                    byte[][] table = RegionOpKernels.tableBytes(q);
                    put(node.name() + "." + REGION_SHARES, table[0], allocator, staging, stream);
                    put(node.name() + "." + REGION_BITS, table[1], allocator, staging, stream);
                    put(node.name() + "." + REGION_ALPHAS, table[2], allocator, staging, stream);
                } else if (node.op() instanceof Op.RegionMap m) {
                    put(node.name() + "." + MAP_SHARES, ints(m.policy().percents()), allocator, staging, stream);
                } else {
                    if (node.op() instanceof Op.LowBitConv2d c && LowBitIgemmKernel.supportsLayer(c) instanceof KernelSupport.Supported) {
                        // The weight layout the tensor-core kernel reads, chosen once per model.
                        LowBitIgemmKernel.Prepared p = LowBitIgemmKernel.prepare(c);
                        lowBit.put(node.name(), p);
                        put(node.name() + "." + LOWBIT_WEIGHTS, p.weights(), allocator, staging, stream);
                        put(node.name() + "." + LOWBIT_SUMS, ints(p.weightSums()), allocator, staging, stream);
                        put(node.name() + "." + LOWBIT_SCALES, p.scales(), allocator, staging, stream);
                        ByteBuffer steps = ByteBuffer.allocate(p.steps().length * Double.BYTES).order(ByteOrder.nativeOrder());
                        for (double d : p.steps()) steps.putDouble(d);
                        put(node.name() + "." + LOWBIT_STEPS, steps.array(), allocator, staging, stream);
                        put(node.name() + "." + LOWBIT_CODE_STEPS, p.codeSteps(), allocator, staging, stream);
                        put(node.name() + "." + LOWBIT_LEVELS, ints(p.levels()), allocator, staging, stream);
                    }
                    for (Op.Parameter p : node.op().parameters()) {
                        Tensor t = graph.parameters().get(node.parameterName(p));
                        put(node.parameterName(p), t.data(), allocator, staging, stream);
                    }
                }
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private void put(String name, float[] data, DeviceAllocator allocator, IntFunction<PinnedBuffer> staging, CudaStream stream) {
        DeviceBuffer b = allocator.allocate((long) data.length * Sizeof.FLOAT);
        buffers.put(name, b);
        b.upload(data, staging.apply(data.length), stream);
        bytes += b.capacity();
    }

    private void put(String name, byte[] data, DeviceAllocator allocator, IntFunction<PinnedBuffer> staging, CudaStream stream) {
        DeviceBuffer b = allocator.allocate(data.length);
        buffers.put(name, b);
        if (data.length > 0) b.upload(data, staging.apply((data.length + Sizeof.FLOAT - 1) / Sizeof.FLOAT), stream);
        bytes += b.capacity();
    }

    private static byte[] ints(int[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * Integer.BYTES).order(ByteOrder.nativeOrder());
        for (int v : values) b.putInt(v);
        return b.array();
    }

    /** The prepared tensor-core constants of a LowBitConv2d node. */
    LowBitIgemmKernel.Prepared lowBit(Node node) {
        LowBitIgemmKernel.Prepared p = lowBit.get(node.name());
        if (p == null) throw new IllegalStateException("no prepared low-bit layer " + node.name());
        return p;
    }

    long address(Node node, String suffix) {
        DeviceBuffer b = buffers.get(node.name() + "." + suffix);
        if (b == null) throw new IllegalStateException("no device parameter " + node.name() + "." + suffix);
        return b.address();
    }

    long bytes() {
        return bytes;
    }

    @Override
    public void close() {
        for (DeviceBuffer b : buffers.values()) b.close();
        buffers.clear();
    }
}
