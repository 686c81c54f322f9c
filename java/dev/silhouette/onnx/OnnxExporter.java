package dev.silhouette.onnx;

import dev.silhouette.io.AtomicFiles;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.onnx.proto.Onnx.AttributeProto;
import dev.silhouette.onnx.proto.Onnx.GraphProto;
import dev.silhouette.onnx.proto.Onnx.ModelProto;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.onnx.proto.Onnx.OperatorSetIdProto;
import dev.silhouette.onnx.proto.Onnx.TensorProto;
import dev.silhouette.onnx.proto.Onnx.TensorShapeProto;
import dev.silhouette.onnx.proto.Onnx.TypeProto;
import dev.silhouette.onnx.proto.Onnx.ValueInfoProto;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Writes a graph as an ONNX model: every IR op as the standard ONNX op (or two) computing the same
 * thing, parameters as float32 initializers named as in the IR, value names kept, and the batch axis of
 * every input and output symbolic ("N"). Opsets 13 to 21 (Clip, Pad and Resize take their arguments as
 * inputs there; Softmax is over one axis).
 */
public final class OnnxExporter {
    public static final int MIN_OPSET = 13, MAX_OPSET = 21;
    public static final int IR_VERSION = 8;

    private OnnxExporter() {}

    public static ModelProto toModel(Graph graph, int opset, String graphName) {
        if (opset < MIN_OPSET || opset > MAX_OPSET) throw new IllegalArgumentException("ONNX export supports opsets " + MIN_OPSET + " to " + MAX_OPSET + ", not " + opset);
        GraphProto.Builder g = GraphProto.newBuilder().setName(graphName);
        Map<String, Shape> shapes = graph.inferShapes(1);
        for (Graph.Input in : graph.inputs()) g.addInput(valueInfo(in.name(), shapes.get(in.name())));
        for (Map.Entry<String, Tensor> p : graph.parameters().entrySet()) g.addInitializer(OnnxTensors.encode(p.getKey(), p.getValue()));
        for (Node n : graph.nodes()) export(n, opset, g);
        for (String out : graph.outputs()) g.addOutput(valueInfo(out, shapes.get(out)));
        return ModelProto.newBuilder().setIrVersion(IR_VERSION).setProducerName("silhouette").setProducerVersion("0.1.0")
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(opset)).setGraph(g).build();
    }

    /**
     * Writes the model atomically (a temporary file in the same folder, then a move). With
     * {@code externalData} the initializers go to FILE.data beside it, referenced by offset.
     */
    public static void write(Graph graph, int opset, Path file, boolean externalData) {
        ModelProto model = toModel(graph, opset, file.getFileName().toString().replaceFirst("\\.onnx$", ""));
        Path dir = file.toAbsolutePath().getParent();
        try {
            if (externalData) {
                String location = file.getFileName() + ".data";
                GraphProto.Builder g = model.getGraph().toBuilder();
                AtomicFiles.write(dir.resolve(location), dataTmp -> writeExternalData(g, location, dataTmp));
                model = model.toBuilder().setGraph(g).build();
            }
            ModelProto whole = model;
            AtomicFiles.write(file, tmp -> {
                try (OutputStream out = Files.newOutputStream(tmp)) {
                    whole.writeTo(out);
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** Moves every initializer's bytes into {@code dataFile}, leaving references to {@code location} in {@code g}. */
    private static void writeExternalData(GraphProto.Builder g, String location, Path dataFile) throws IOException {
        try (OutputStream out = Files.newOutputStream(dataFile)) {
            long offset = 0;
            for (int i = 0; i < g.getInitializerCount(); i++) {
                TensorProto t = g.getInitializer(i);
                t.getRawData().writeTo(out);
                g.setInitializer(i, t.toBuilder().clearRawData().setDataLocation(TensorProto.DataLocation.EXTERNAL)
                        .addExternalData(entry("location", location)).addExternalData(entry("offset", Long.toString(offset)))
                        .addExternalData(entry("length", Long.toString(t.getRawData().size()))));
                offset += t.getRawData().size();
            }
        }
    }

    private static void export(Node n, int opset, GraphProto.Builder g) {
        String x = n.inputs().getFirst(), out = n.name();
        switch (n.op()) {
            case Op.Conv2d c -> {
                NodeProto.Builder b = node("Conv", out, x, out + ".weight");
                if (c.bias()) b.addInput(out + ".bias");
                window(b, c.window(), true);
                g.addNode(b.addAttribute(ints("kernel_shape", c.window().kernelH(), c.window().kernelW())).addAttribute(intAttr("group", c.groups())));
            }
            case Op.BatchNorm bn -> g.addNode(node("BatchNormalization", out, x, out + ".weight", out + ".bias", out + ".running_mean", out + ".running_var")
                    .addAttribute(floatAttr("epsilon", bn.eps())));
            case Op.Relu r -> g.addNode(node("Relu", out, x));
            case Op.Sigmoid s -> g.addNode(node("Sigmoid", out, x));
            case Op.HardSwish h -> g.addNode(node("HardSwish", out, x));
            case Op.HardSigmoid h -> g.addNode(node("HardSigmoid", out, x).addAttribute(floatAttr("alpha", h.alpha())).addAttribute(floatAttr("beta", h.beta())));
            case Op.Clip c -> {
                g.addInitializer(OnnxTensors.encodeFloats(out + "/min", new long[0], c.min()));
                g.addInitializer(OnnxTensors.encodeFloats(out + "/max", new long[0], c.max()));
                g.addNode(node("Clip", out, x, out + "/min", out + "/max"));
            }
            case Op.Add a -> g.addNode(node("Add", out, x, n.inputs().get(1)));
            case Op.Elementwise e -> g.addNode(node(onnxName(e.arithmetic()), out, x, n.inputs().get(1)));
            case Op.ElementwiseConstant e -> g.addNode(e.constantFirst() ? node(onnxName(e.arithmetic()), out, out + ".constant", x)
                    : node(onnxName(e.arithmetic()), out, x, out + ".constant"));
            case Op.MaxPool p -> {
                NodeProto.Builder b = node("MaxPool", out, x);
                window(b, p.window(), true);
                g.addNode(b.addAttribute(ints("kernel_shape", p.window().kernelH(), p.window().kernelW())));
            }
            case Op.AvgPool p -> {
                boolean dilated = p.window().dilationH() != 1 || p.window().dilationW() != 1;
                if (dilated && opset < 19) throw new IllegalArgumentException("node '" + out + "': dilated AveragePool needs opset 19 or newer, not " + opset);
                NodeProto.Builder b = node("AveragePool", out, x);
                window(b, p.window(), dilated);
                g.addNode(b.addAttribute(ints("kernel_shape", p.window().kernelH(), p.window().kernelW()))
                        .addAttribute(intAttr("count_include_pad", p.countIncludePad() ? 1 : 0)));
            }
            case Op.GlobalAvgPool p -> g.addNode(node("GlobalAveragePool", out, x));
            case Op.Linear l -> {
                NodeProto.Builder b = node("Gemm", out, x, out + ".weight");
                if (l.bias()) b.addInput(out + ".bias");
                g.addNode(b.addAttribute(intAttr("transB", 1)));
            }
            case Op.Flatten f -> g.addNode(node("Flatten", out, x).addAttribute(intAttr("axis", 1)));
            case Op.Softmax s -> g.addNode(node("Softmax", out, x).addAttribute(intAttr("axis", 1)));
            case Op.Interpolate ip -> {
                // sizes hold N and C too: taken from the input's shape at run time, so the batch stays free.
                g.addNode(node("Shape", out + "/shape", x));
                g.addInitializer(OnnxTensors.encodeInts(out + "/nc", 0, 1));
                g.addNode(node("Gather", out + "/n_c", out + "/shape", out + "/nc").addAttribute(intAttr("axis", 0)));
                g.addInitializer(OnnxTensors.encodeInts(out + "/hw", ip.outH(), ip.outW()));
                g.addNode(node("Concat", out + "/full_sizes", out + "/n_c", out + "/hw").addAttribute(intAttr("axis", 0)));
                NodeProto.Builder b = node("Resize", out, x, "", "", out + "/full_sizes");
                if (ip.mode() == Op.Interpolate.Mode.NEAREST) {
                    b.addAttribute(stringAttr("mode", "nearest")).addAttribute(stringAttr("coordinate_transformation_mode", "asymmetric"))
                            .addAttribute(stringAttr("nearest_mode", "floor"));
                } else {
                    b.addAttribute(stringAttr("mode", "linear")).addAttribute(stringAttr("coordinate_transformation_mode", "half_pixel"));
                }
                g.addNode(b);
            }
            case Op.Concat c -> {
                NodeProto.Builder b = NodeProto.newBuilder().setOpType("Concat").setName(out).addOutput(out).addAllInput(n.inputs());
                g.addNode(b.addAttribute(intAttr("axis", c.axis())));
            }
            case Op.Reshape r -> {
                long[] target = new long[r.sampleShape().rank() + 1];
                for (int i = 1; i < target.length; i++) target[i] = r.sampleShape().dim(i - 1);
                // 0 copies the batch size from the input (allowzero defaults to 0).
                g.addInitializer(OnnxTensors.encodeInts(out + "/shape", target));
                g.addNode(node("Reshape", out, x, out + "/shape"));
            }
            case Op.Pad p -> {
                g.addInitializer(OnnxTensors.encodeInts(out + "/pads", 0, 0, p.top(), p.left(), 0, 0, p.bottom(), p.right()));
                g.addInitializer(OnnxTensors.encodeFloats(out + "/value", new long[0], p.value()));
                g.addNode(node("Pad", out, x, out + "/pads", out + "/value").addAttribute(stringAttr("mode", "constant")));
            }
            // Uniform grids as the standard QDQ form (QuantizeLinear/DequantizeLinear at 8 bits, as TensorRT and ONNX
            // Runtime consume it): a Clip to the grid's range first, so narrower grids keep their own top code.
            case Op.PactQuantize q -> qdq(g, out, x, UniformGrid.pact(q.bits(), q.alpha()));
            case Op.AffineQuantize q when q.bits().size() == 1 -> qdq(g, out, x, UniformGrid.affine(q.bits().getFirst(), q.lo().getFirst(), q.hi().getFirst()));
            case Op.AffineQuantize q -> throw new IllegalArgumentException("node '" + n.name() + "': per-channel activation widths have no QDQ form "
                    + "(QuantizeLinear takes one width per tensor)");
            case Op.LowBitConv2d c when c.codes() instanceof Op.LowBitConv2d.ActivationCodes.Grid grid -> qdqConv(g, n, c, grid);
            case Op.LowBitConv2d c -> throw new IllegalArgumentException("node '" + n.name() + "': region and DRQ layers quantize each pixel at its own "
                    + "width, which ONNX's QuantizeLinear cannot express (one scale per tensor or channel); export a uniform plan");
            case Op.RegionMap q -> throw new IllegalArgumentException("node '" + n.name() + "': region maps exist only for region quantization, which "
                    + "ONNX cannot express; export a uniform plan");
            // Silhouette's own quantization ops have no standard ONNX operator.
            case Op.RegionQuantize q -> throw notExportable(n);
            case Op.DrqQuantize q -> throw notExportable(n);
            case Op.ChannelSqueeze q -> throw notExportable(n);
            case Op.NoiseSilhouette q -> throw notExportable(n);
            case Op.LogitBlend q -> throw notExportable(n);
        }
    }

    /** A uniform activation grid: value = step * (code - zero), codes 0..qmax. */
    record UniformGrid(float step, int zero, int qmax) {
        static UniformGrid pact(int bits, float alpha) {
            return new UniformGrid(dev.silhouette.quant.RegionQuantizer.pactStep(alpha, bits), 0, (1 << bits) - 1);
        }

        /** Quantizers.affine's grid over [lo, hi]. */
        static UniformGrid affine(int bits, float lo, float hi) {
            var grid = dev.silhouette.quant.Quantizers.affineGrid(bits, lo, hi);
            if (!(grid.scale() > 0)) throw new IllegalArgumentException("an affine range [" + lo + ", " + hi + "] that is empty has no QDQ form");
            return new UniformGrid(grid.scale(), grid.zeroPoint(), (1 << bits) - 1);
        }
    }

    /** x -> Clip to the grid -> QuantizeLinear (uint8) -> DequantizeLinear -> out. */
    private static void qdq(GraphProto.Builder g, String out, String x, UniformGrid grid) {
        g.addInitializer(OnnxTensors.encodeFloats(out + "/clip_min", new long[0], -grid.zero() * grid.step()));
        g.addInitializer(OnnxTensors.encodeFloats(out + "/clip_max", new long[0], (grid.qmax() - grid.zero()) * grid.step()));
        g.addInitializer(OnnxTensors.encodeFloats(out + "/scale", new long[0], grid.step()));
        g.addInitializer(TensorProto.newBuilder().setName(out + "/zero").setDataType(TensorProto.DataType.UINT8_VALUE)
                .setRawData(com.google.protobuf.ByteString.copyFrom(new byte[] {(byte) grid.zero()})).build());
        g.addNode(node("Clip", out + "/clipped", x, out + "/clip_min", out + "/clip_max"));
        g.addNode(node("QuantizeLinear", out + "/q", out + "/clipped", out + "/scale", out + "/zero"));
        g.addNode(node("DequantizeLinear", out, out + "/q", out + "/scale", out + "/zero"));
    }

    /** A low-bit convolution on one grid: QDQ on its input, int8 weight codes with per-channel scales through DequantizeLinear, then Conv. */
    private static void qdqConv(GraphProto.Builder g, Node n, Op.LowBitConv2d c, Op.LowBitConv2d.ActivationCodes.Grid grid) {
        String out = n.name(), x = n.inputs().getFirst();
        var w = c.weights();
        if (w.regions() != 1 || w.hasOffsets()) {
            throw new IllegalArgumentException("node '" + out + "': bias-corrected weights (an offset per channel) have no QDQ form; export a plan without bias correction");
        }
        for (int b : w.bits()) if (b > 8) throw new IllegalArgumentException("node '" + out + "': weights of " + b + " bits do not fit int8");
        qdq(g, out + "/input", x, new UniformGrid(grid.step(), grid.zeroPoint(), (1 << grid.bits()) - 1));
        Op.Conv2d conv = c.conv();
        int outC = conv.outChannels(), cg = conv.inPerGroup(), kh = conv.window().kernelH(), kw = conv.window().kernelW(), og = conv.outPerGroup();
        byte[] codes = new byte[outC * cg * kh * kw];
        for (int o = 0; o < outC; o++)
            for (int ch = 0; ch < cg; ch++)
                for (int t = 0; t < kh * kw; t++) codes[(o * cg + ch) * kh * kw + t] = (byte) w.codes().getFirst()[w.row(o / og, t, ch) + o % og];
        g.addInitializer(TensorProto.newBuilder().setName(out + ".weight_codes").setDataType(TensorProto.DataType.INT8_VALUE)
                .addAllDims(List.of((long) outC, (long) cg, (long) kh, (long) kw)).setRawData(com.google.protobuf.ByteString.copyFrom(codes)).build());
        g.addInitializer(OnnxTensors.encodeFloats(out + ".weight_scale", new long[] {outC}, w.scales().getFirst()));
        g.addInitializer(TensorProto.newBuilder().setName(out + ".weight_zero").setDataType(TensorProto.DataType.INT8_VALUE).addDims(outC)
                .setRawData(com.google.protobuf.ByteString.copyFrom(new byte[outC])).build());
        g.addNode(node("DequantizeLinear", out + ".weight", out + ".weight_codes", out + ".weight_scale", out + ".weight_zero").addAttribute(intAttr("axis", 0)));
        NodeProto.Builder b = node("Conv", out, out + "/input", out + ".weight");
        if (conv.bias()) b.addInput(out + ".bias");
        window(b, conv.window(), true);
        g.addNode(b.addAttribute(ints("kernel_shape", kh, kw)).addAttribute(intAttr("group", conv.groups())));
    }

    private static IllegalArgumentException notExportable(Node n) {
        return new IllegalArgumentException("node '" + n.name() + "': " + n.op().getClass().getSimpleName()
                + " is a Silhouette quantization op with no ONNX operator; export the model before region quantization is applied");
    }

    private static String onnxName(Op.Arithmetic a) {
        return switch (a) {
            case ADD -> "Add";
            case SUB -> "Sub";
            case MUL -> "Mul";
            case DIV -> "Div";
        };
    }

    private static void window(NodeProto.Builder b, Window w, boolean dilations) {
        b.addAttribute(ints("strides", w.strideH(), w.strideW())).addAttribute(ints("pads", w.padH(), w.padW(), w.padH(), w.padW()));
        if (dilations) b.addAttribute(ints("dilations", w.dilationH(), w.dilationW()));
    }

    private static NodeProto.Builder node(String opType, String output, String... inputs) {
        return NodeProto.newBuilder().setOpType(opType).setName(output).addOutput(output).addAllInput(List.of(inputs));
    }

    private static AttributeProto ints(String name, long... v) {
        AttributeProto.Builder b = AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INTS);
        for (long x : v) b.addInts(x);
        return b.build();
    }

    private static AttributeProto intAttr(String name, long v) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INT).setI(v).build();
    }

    private static AttributeProto floatAttr(String name, float v) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.FLOAT).setF(v).build();
    }

    private static AttributeProto stringAttr(String name, String v) {
        return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.STRING)
                .setS(com.google.protobuf.ByteString.copyFromUtf8(v)).build();
    }

    private static dev.silhouette.onnx.proto.Onnx.StringStringEntryProto entry(String key, String value) {
        return dev.silhouette.onnx.proto.Onnx.StringStringEntryProto.newBuilder().setKey(key).setValue(value).build();
    }

    /** A float32 tensor value whose first axis is the symbolic batch "N". */
    private static ValueInfoProto valueInfo(String name, Shape shape) {
        TensorShapeProto.Builder s = TensorShapeProto.newBuilder();
        s.addDim(TensorShapeProto.Dimension.newBuilder().setDimParam("N"));
        for (int i = 1; i < shape.rank(); i++) s.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(shape.dim(i)));
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(
                TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE).setShape(s))).build();
    }
}
