package dev.silhouette.onnx;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphException;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.ShapeInference;
import dev.silhouette.graph.Window;
import dev.silhouette.onnx.proto.Onnx.AttributeProto;
import dev.silhouette.onnx.proto.Onnx.GraphProto;
import dev.silhouette.onnx.proto.Onnx.ModelProto;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.onnx.proto.Onnx.OperatorSetIdProto;
import dev.silhouette.onnx.proto.Onnx.TensorProto;
import dev.silhouette.onnx.proto.Onnx.TensorShapeProto;
import dev.silhouette.onnx.proto.Onnx.ValueInfoProto;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads an ONNX model into Silhouette's graph IR. Graph inputs keep their names and their first axis
 * becomes the free batch axis; every other value is named after the ONNX output that defines it, so
 * graph outputs keep their names too. Constant subgraphs (Shape/Gather/Unsqueeze/Concat chains, Constant
 * nodes, arithmetic on initializers) are evaluated at import; what remains maps onto IR ops. An op the
 * importer does not know is reported, all of them at once with node names, before any conversion.
 */
public final class OnnxImporter {
    /** Opsets of the default domain this importer maps (op semantics differ by version; see convert). */
    public static final int MIN_OPSET = 7, MAX_OPSET = 21;
    /** protobuf-java reads one message of at most 2 GiB; larger models keep weights in external data. */
    public static final long MAX_FILE_BYTES = Integer.MAX_VALUE - 8;

    static final Set<String> SUPPORTED = Set.of("Conv", "BatchNormalization", "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish",
            "Add", "Sub", "Mul", "Div", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Gemm", "MatMul", "Reshape",
            "Concat", "Resize", "Upsample", "Softmax", "Identity", "Dropout", "Constant", "Shape", "Gather", "Unsqueeze",
            "Squeeze", "Cast", "Transpose", "Slice", "ConstantOfShape", "ReduceMean", "Pad");

    /** @param silhouetteOutput ONNX value holding the silhouette, or null to recognise the branch by its structure */
    public record Options(String silhouetteOutput) {
        public static Options defaults() {
            return new Options(null);
        }
    }

    /**
     * @param outputNames every ONNX graph output mapped to the IR value holding it (they differ where an
     *                    output is an alias through Identity/Dropout, or is the renamed silhouette)
     * @param silhouette  the ONNX value recognised or named as the silhouette, or null; the IR graph then
     *                    holds it as {@link Models#SILHOUETTE}, exactly as the built models do
     * @param note        how the silhouette was found, or why none was marked
     */
    public record Imported(Graph graph, Map<String, String> outputNames, String silhouette, String note, int opset,
                           String producer, int importBatch) {}

    private OnnxImporter() {}

    public static Imported read(Path file) {
        return read(file, Options.defaults());
    }

    public static Imported read(Path file, Options options) {
        long size;
        try {
            size = Files.size(file);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new OnnxException("ONNX model " + file + " does not exist");
        } catch (IOException e) {
            throw new OnnxException("cannot read ONNX model " + file + ": " + e.getMessage(), e);
        }
        if (size > MAX_FILE_BYTES) {
            throw new OnnxException("ONNX model " + file + " has " + size + " bytes; protobuf reads at most " + MAX_FILE_BYTES
                    + " (store the weights as external data)");
        }
        // The bytes, protobuf's copy of every raw_data and the decoded floats are all in memory at once.
        if (size > Runtime.getRuntime().maxMemory() / 4) {
            throw new OnnxException("ONNX model " + file + " has " + (size >> 20) + " MiB; importing it needs about three times that, more than the "
                    + (Runtime.getRuntime().maxMemory() >> 20) + " MiB heap allows (give the JVM more with -Xmx, or keep weights as external data)");
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new OnnxException("cannot read ONNX model " + file + ": " + e.getMessage(), e);
        }
        Path dir = file.toAbsolutePath().getParent();
        return read(bytes, dir, file.toString(), options);
    }

    /** @param modelDir where external data files are looked up, or null for none */
    public static Imported read(byte[] bytes, Path modelDir, String source, Options options) {
        return new Conversion(parse(bytes, source), modelDir, source, options).run();
    }

    /** The ModelProto, or a clear error for bytes that are not one. */
    public static ModelProto parse(byte[] bytes, String source) {
        ModelProto model;
        try {
            model = ModelProto.parseFrom(bytes);
        } catch (InvalidProtocolBufferException e) {
            throw new OnnxException(source + " is not a valid ONNX model: the protobuf is truncated or corrupt (" + e.getMessage() + ")", e);
        }
        if (!model.hasGraph() || model.getGraph().getNodeCount() == 0 && model.getGraph().getOutputCount() == 0) {
            throw new OnnxException(source + " is not an ONNX model: it holds no graph" + (bytes.length == 0 ? " (the file is empty)" : ""));
        }
        if (!model.hasIrVersion() || model.getIrVersion() < 3) {
            throw new OnnxException(source + ": ONNX IR version " + model.getIrVersion() + " is not supported (3 or newer; opset imports began with 3)");
        }
        return model;
    }

    /** One import: the state of the walk over the nodes. */
    private static final class Conversion {
        final ModelProto model;
        final GraphProto g;
        final Path modelDir;
        final String source;
        final Options options;
        int opset;
        int importBatch = 1;

        /** ONNX value name to its import-time value, for values computable without an input. */
        final Map<String, Constant> constants = new HashMap<>();
        /** ONNX value name to the IR value holding it. */
        final Map<String, String> values = new HashMap<>();
        /** Outputs no IR value provides (Dropout masks, MaxPool indices), with the reason. */
        final Map<String, String> unavailable = new HashMap<>();
        final List<Graph.Input> inputs = new ArrayList<>();
        final List<Node> nodes = new ArrayList<>();
        final Map<String, Tensor> parameters = new LinkedHashMap<>();
        /** IR value name to its shape at the import batch size. */
        final Map<String, Shape> shapes = new HashMap<>();
        final Set<String> taken = new HashSet<>();
        long constantBytes;

        Conversion(ModelProto model, Path modelDir, String source, Options options) {
            this.model = model;
            this.g = model.getGraph();
            this.modelDir = modelDir;
            this.source = source;
            this.options = options;
        }

        Imported run() {
            opset = defaultOpset();
            List<NodeProto> order = topologicalOrder();
            rejectUnsupported(order);
            for (NodeProto n : g.getNodeList()) for (String o : n.getOutputList()) taken.add(o);
            for (TensorProto t : g.getInitializerList()) {
                if (constants.containsKey(t.getName())) {
                    throw new OnnxException(source + ": initializer '" + t.getName() + "' is defined twice");
                }
                try {
                    putConstant(t.getName(), OnnxTensors.decode(t, modelDir));
                } catch (OnnxException e) {
                    if (e.getMessage().startsWith(source + ": ")) throw e;
                    throw new OnnxException(source + ": initializer " + e.getMessage(), e);
                }
            }
            if (g.getSparseInitializerCount() > 0) throw new OnnxException(source + ": sparse initializers are not supported");
            readInputs();
            for (NodeProto n : order) {
                try {
                    convert(n);
                } catch (OnnxException e) {
                    // Errors of the folding helpers know no node; give them one.
                    if (e.getMessage().startsWith(source + ": ")) throw e;
                    throw new OnnxException(source + ": " + describe(n) + ": " + e.getMessage(), e);
                } catch (IllegalArgumentException | ArithmeticException e) {
                    throw new OnnxException(source + ": " + describe(n) + ": " + e.getMessage(), e);
                }
            }
            return finish();
        }

        int defaultOpset() {
            Integer version = null;
            for (OperatorSetIdProto o : model.getOpsetImportList()) {
                if (o.getDomain().isEmpty() || o.getDomain().equals("ai.onnx")) version = (int) Math.min(Integer.MAX_VALUE, o.getVersion());
            }
            if (version == null) throw new OnnxException(source + " imports no version of the default ONNX operator set (domain \"\")");
            if (version < MIN_OPSET || version > MAX_OPSET) {
                throw new OnnxException(source + " uses ONNX opset " + version + "; Silhouette imports opsets " + MIN_OPSET + " to " + MAX_OPSET);
            }
            return version;
        }

        /**
         * Nodes in an order where every input is defined first (ONNX requires sorted graphs; exporters
         * sometimes are not). A name nothing defines, or a cycle, is an error naming the nodes involved.
         */
        List<NodeProto> topologicalOrder() {
            Set<String> defined = new HashSet<>();
            for (TensorProto t : g.getInitializerList()) defined.add(t.getName());
            for (ValueInfoProto v : g.getInputList()) defined.add(v.getName());
            Map<String, NodeProto> producer = new HashMap<>();
            for (NodeProto n : g.getNodeList()) {
                if (n.getOutputCount() == 0 || n.getOutput(0).isEmpty()) throw new OnnxException(source + ": " + describe(n) + " has no output");
                for (String o : n.getOutputList()) {
                    if (o.isEmpty()) continue;
                    if (defined.contains(o) || producer.put(o, n) != null) {
                        throw new OnnxException(source + ": value '" + o + "' is defined twice (by " + describe(n) + " and earlier)");
                    }
                }
            }
            for (NodeProto n : g.getNodeList()) {
                for (String in : n.getInputList()) {
                    if (!in.isEmpty() && !defined.contains(in) && !producer.containsKey(in)) {
                        throw new OnnxException(source + ": " + describe(n) + " reads '" + in
                                + "', which no node, graph input or initializer defines (a missing initializer?)");
                    }
                }
            }
            // Kahn's algorithm taking the earliest ready node first, so a sorted file keeps its order.
            List<NodeProto> all = g.getNodeList();
            int[] waiting = new int[all.size()];
            Map<String, List<Integer>> readers = new HashMap<>();
            java.util.PriorityQueue<Integer> ready = new java.util.PriorityQueue<>();
            for (int i = 0; i < all.size(); i++) {
                Set<String> pending = new HashSet<>();
                for (String in : all.get(i).getInputList()) if (!in.isEmpty() && !defined.contains(in)) pending.add(in);
                for (String in : pending) readers.computeIfAbsent(in, k -> new ArrayList<>()).add(i);
                waiting[i] = pending.size();
                if (pending.isEmpty()) ready.add(i);
            }
            List<NodeProto> order = new ArrayList<>();
            while (!ready.isEmpty()) {
                NodeProto n = all.get(ready.poll());
                order.add(n);
                for (String o : n.getOutputList()) {
                    for (int r : readers.getOrDefault(o, List.of())) {
                        if (--waiting[r] == 0) ready.add(r);
                    }
                }
            }
            if (order.size() < g.getNodeCount()) {
                List<String> stuck = new ArrayList<>();
                for (int i = 0; i < all.size(); i++) if (waiting[i] > 0) stuck.add(describe(all.get(i)));
                throw new OnnxException(source + ": the graph has a cycle; these nodes wait on each other: "
                        + (stuck.size() <= 10 ? stuck : stuck.subList(0, 10) + " and " + (stuck.size() - 10) + " more"));
            }
            return order;
        }

        void rejectUnsupported(List<NodeProto> order) {
            Set<String> domains = new HashSet<>();
            for (OperatorSetIdProto o : model.getOpsetImportList()) domains.add(o.getDomain());
            List<String> bad = new ArrayList<>();
            for (NodeProto n : order) {
                boolean defaultDomain = n.getDomain().isEmpty() || n.getDomain().equals("ai.onnx");
                if (!defaultDomain && !domains.contains(n.getDomain())) {
                    bad.add(n.getDomain() + ":" + n.getOpType() + " (node '" + n.getName() + "', domain '" + n.getDomain() + "' is not among the model's opset imports)");
                } else if (!defaultDomain) {
                    bad.add(n.getDomain() + ":" + n.getOpType() + " (node '" + n.getName() + "', operator domain '" + n.getDomain() + "' is unknown to Silhouette)");
                } else if (!SUPPORTED.contains(n.getOpType())) {
                    bad.add(n.getOpType() + " (node '" + n.getName() + "')");
                }
            }
            if (!bad.isEmpty()) {
                throw new OnnxException(source + " uses " + bad.size() + " node(s) Silhouette cannot import: " + String.join(", ", bad)
                        + ". Supported ops: " + String.join(", ", new java.util.TreeSet<>(SUPPORTED)));
            }
        }

        void readInputs() {
            Integer batch = null;
            for (ValueInfoProto v : g.getInputList()) {
                if (constants.containsKey(v.getName())) continue;  // older IR versions list initializers as inputs
                String what = source + ": graph input '" + v.getName() + "'";
                if (!v.getType().hasTensorType()) throw new OnnxException(what + " is not a tensor");
                var tt = v.getType().getTensorType();
                if (tt.getElemType() != TensorProto.DataType.FLOAT_VALUE) {
                    throw new OnnxException(what + " has element type " + TensorProto.DataType.forNumber(tt.getElemType()) + "; Silhouette runs float32 inputs");
                }
                if (!tt.hasShape() || tt.getShape().getDimCount() < 1) throw new OnnxException(what + " declares no shape; Silhouette needs N x sample shape");
                List<TensorShapeProto.Dimension> dims = tt.getShape().getDimList();
                int[] sample = new int[dims.size() - 1];
                for (int i = 1; i < dims.size(); i++) {
                    TensorShapeProto.Dimension d = dims.get(i);
                    if (!d.hasDimValue()) {
                        throw new OnnxException(what + " has symbolic dimension '" + d.getDimParam() + "' at axis " + i
                                + "; only the batch axis (0) may vary, sample dimensions must be fixed");
                    }
                    if (d.getDimValue() < 1 || d.getDimValue() > Integer.MAX_VALUE - 8) {
                        throw new OnnxException(what + " declares dimension " + d.getDimValue() + " at axis " + i + " (must be 1 to " + (Integer.MAX_VALUE - 8) + ")");
                    }
                    sample[i - 1] = (int) d.getDimValue();
                }
                if (dims.getFirst().hasDimValue()) {
                    long b = dims.getFirst().getDimValue();
                    if (b < 1 || b > 65_536) throw new OnnxException(what + " declares batch size " + b + " (must be 1 to 65536, or symbolic)");
                    if (batch != null && batch != b) throw new OnnxException(what + " declares batch size " + b + ", another input " + batch);
                    batch = (int) b;
                }
                Shape sampleShape;
                try {
                    sampleShape = Shape.of(sample);
                    int[] full = new int[sample.length + 1];
                    full[0] = batch == null ? 1 : batch;
                    System.arraycopy(sample, 0, full, 1, sample.length);
                    Shape.of(full);
                } catch (IllegalArgumentException e) {
                    throw new OnnxException(what + ": " + e.getMessage());
                }
                inputs.add(new Graph.Input(v.getName(), sampleShape));
            }
            if (inputs.isEmpty()) throw new OnnxException(source + " has no graph input that is not an initializer");
            importBatch = batch == null ? 1 : batch;
            for (Graph.Input in : inputs) {
                int[] full = new int[in.sampleShape().rank() + 1];
                full[0] = importBatch;
                System.arraycopy(in.sampleShape().dims(), 0, full, 1, full.length - 1);
                shapes.put(in.name(), Shape.of(full));
                values.put(in.name(), in.name());
                taken.add(in.name());
            }
        }

        // ---------------------------------------------------------------------------------------------
        // Node conversion

        void convert(NodeProto n) {
            Attributes a = new Attributes(n, describe(n));
            String out = n.getOutput(0);
            String op = n.getOpType();
            // Any node whose inputs are all import-time constants is folded where a folding rule exists.
            switch (op) {
                case "Constant" -> putConstant(out, constantAttribute(n, a));
                case "Identity" -> alias(n, 0, out);
                case "Dropout" -> {
                    if (n.getInputCount() > 2 && !n.getInput(2).isEmpty() && constant(n, 2, "training_mode").get(0) != 0) {
                        throw fail(n, "runs in training mode; Silhouette imports inference graphs");
                    }
                    alias(n, 0, out);
                    if (n.getOutputCount() > 1) unavailable.put(n.getOutput(1), "it is the mask of Dropout " + describe(n) + ", which inference does not compute");
                }
                case "Cast" -> {
                    long to = a.getInt("to", 0);
                    boolean toFloat = to == TensorProto.DataType.FLOAT_VALUE || to == TensorProto.DataType.DOUBLE_VALUE || to == TensorProto.DataType.FLOAT16_VALUE;
                    if (isConstant(n, 0)) putConstant(out, toFloat ? constant(n, 0, "input").asFloats() : constant(n, 0, "input").asInts());
                    else if (to == TensorProto.DataType.FLOAT_VALUE) alias(n, 0, out);
                    else throw fail(n, "casts a computed float32 tensor to type " + TensorProto.DataType.forNumber((int) to) + "; Silhouette computes in float32 only");
                }
                case "Shape" -> {
                    long[] dims = isConstant(n, 0) ? constant(n, 0, "input").dims() : longs(shape(value(n, 0)).dims());
                    int rank = dims.length;
                    int start = (int) clampAxis(a.getInt("start", 0), rank), end = (int) clampAxis(a.getInt("end", rank), rank);
                    putConstant(out, Constant.ints(new long[] {Math.max(0, end - start)}, Arrays.copyOfRange(dims, start, Math.max(start, end))));
                }
                case "Gather" -> putConstant(out, Folding.gather(constant(n, 0, "data (Gather folds constants only)"), constant(n, 1, "indices"), a.getInt("axis", 0)));
                case "Unsqueeze", "Squeeze" -> {
                    long[] axes = opset >= 13 ? (n.getInputCount() > 1 && !n.getInput(1).isEmpty() ? constant(n, 1, "axes").longs("axes") : null) : a.getInts("axes");
                    boolean unsqueeze = op.equals("Unsqueeze");
                    if (unsqueeze && axes == null) throw fail(n, "gives no axes");
                    if (isConstant(n, 0)) {
                        Constant c = constant(n, 0, "input");
                        putConstant(out, c.withDims(unsqueeze ? Folding.unsqueeze(c.dims(), axes) : Folding.squeeze(c.dims(), axes)));
                    } else {
                        String x = value(n, 0);
                        long[] dims = unsqueeze ? Folding.unsqueeze(longs(shape(x).dims()), axes) : Folding.squeeze(longs(shape(x).dims()), axes);
                        emitReshape(n, out, x, dims);
                    }
                }
                case "Reshape" -> {
                    long[] target = constant(n, 1, "shape").longs("shape");
                    boolean allowZero = a.getInt("allowzero", 0) != 0;
                    if (isConstant(n, 0)) {
                        Constant c = constant(n, 0, "data");
                        putConstant(out, c.withDims(Folding.reshapeTarget(c.dims(), target, allowZero)));
                    } else {
                        String x = value(n, 0);
                        emitReshape(n, out, x, Folding.reshapeTarget(longs(shape(x).dims()), target, allowZero));
                    }
                }
                case "Flatten" -> {
                    long axis = a.getInt("axis", 1);
                    if (isConstant(n, 0)) {
                        Constant c = constant(n, 0, "input");
                        int ax = flattenAxis(n, axis, c.rank());
                        putConstant(out, c.withDims(new long[] {Folding.product(c.dims(), 0, ax), Folding.product(c.dims(), ax, c.rank())}));
                    } else {
                        String x = value(n, 0);
                        long[] dims = longs(shape(x).dims());
                        int ax = flattenAxis(n, axis, dims.length);
                        // Flatten is always 2-D: any axis but 1 merges the batch axis with others or makes it a feature.
                        if (ax != 1) throw fail(n, "flattens at axis " + axis + " giving [" + Folding.product(dims, 0, ax) + ", " + Folding.product(dims, ax, dims.length)
                                + "], which does not keep the batch axis; Silhouette supports axis 1");
                        emit(out, new Op.Flatten(), Map.of(), x);
                    }
                }
                case "Concat" -> {
                    long axis = a.getInt("axis", Long.MIN_VALUE);
                    if (axis == Long.MIN_VALUE) throw fail(n, "has no axis attribute");
                    boolean allConstant = true, anyConstant = false;
                    for (int i = 0; i < n.getInputCount(); i++) {
                        allConstant &= isConstant(n, i);
                        anyConstant |= isConstant(n, i);
                    }
                    if (allConstant) {
                        List<Constant> parts = new ArrayList<>();
                        for (int i = 0; i < n.getInputCount(); i++) parts.add(constant(n, i, "input " + i));
                        putConstant(out, Folding.concat(parts, (int) normalizeAxis(n, axis, parts.getFirst().rank())));
                    } else {
                        if (anyConstant) throw fail(n, "concatenates computed tensors with constants; only all-constant or all-computed inputs are supported");
                        String[] xs = new String[n.getInputCount()];
                        for (int i = 0; i < xs.length; i++) xs[i] = value(n, i);
                        int ax = (int) normalizeAxis(n, axis, shape(xs[0]).rank());
                        if (ax == 0) throw fail(n, "concatenates along the batch axis 0");
                        emit(out, new Op.Concat(ax), Map.of(), xs);
                    }
                }
                case "Transpose" -> putConstant(out, Folding.transpose(constant(n, 0, "data (Transpose folds constants only, e.g. weights)"), a.getInts("perm")));
                case "Slice" -> {
                    Constant data = constant(n, 0, "data (Slice folds constants only, e.g. shapes)");
                    if (opset < 10) {
                        long[] starts = a.getInts("starts"), ends = a.getInts("ends");
                        if (starts == null || ends == null) throw fail(n, "lacks starts or ends");
                        putConstant(out, Folding.slice(data, starts, ends, a.getInts("axes"), null));
                    } else {
                        long[] axes = n.getInputCount() > 3 && !n.getInput(3).isEmpty() ? constant(n, 3, "axes").longs("axes") : null;
                        long[] steps = n.getInputCount() > 4 && !n.getInput(4).isEmpty() ? constant(n, 4, "steps").longs("steps") : null;
                        putConstant(out, Folding.slice(data, constant(n, 1, "starts").longs("starts"), constant(n, 2, "ends").longs("ends"), axes, steps));
                    }
                }
                case "ConstantOfShape" -> {
                    long[] dims = constant(n, 0, "shape").longs("shape");
                    int size = (int) Constant.size(dims);
                    AttributeProto value = a.get("value");
                    Constant fill = value == null ? Constant.floats(new long[0], new float[] {0f}) : OnnxTensors.decode(value.getT(), null);
                    if (fill.size() != 1) throw fail(n, "has a value of " + fill.size() + " elements; it must hold one");
                    if (fill.isFloat()) {
                        float[] v = new float[size];
                        Arrays.fill(v, fill.floats()[0]);
                        putConstant(out, Constant.floats(dims, v));
                    } else {
                        long[] v = new long[size];
                        Arrays.fill(v, fill.ints()[0]);
                        putConstant(out, Constant.ints(dims, v));
                    }
                }
                case "ReduceMean" -> {
                    String x = value(n, 0);
                    long[] axes = opset >= 18 ? (n.getInputCount() > 1 && !n.getInput(1).isEmpty() ? constant(n, 1, "axes").longs("axes") : null) : a.getInts("axes");
                    int rank = shape(x).rank();
                    long[] sorted = axes == null ? null : Arrays.stream(axes).map(v -> v < 0 ? v + rank : v).sorted().toArray();
                    if (rank != 4 || sorted == null || !Arrays.equals(sorted, new long[] {2, 3})) {
                        throw fail(n, "averages over axes " + Arrays.toString(axes) + " of " + shape(x) + "; Silhouette maps the mean over H and W of an NCHW tensor");
                    }
                    if (a.getInt("keepdims", 1) != 0) {
                        emit(out, new Op.GlobalAvgPool(), Map.of(), x);
                    } else {
                        emit(out, new Op.Flatten(), Map.of(), emit(fresh(out + "/mean"), new Op.GlobalAvgPool(), Map.of(), x));
                    }
                }
                case "Pad" -> pad(n, a, out);
                case "Add", "Sub", "Mul", "Div" -> arithmetic(n, out, Op.Arithmetic.valueOf(op.toUpperCase()));
                case "Relu" -> emit(out, new Op.Relu(), Map.of(), value(n, 0));
                case "Sigmoid" -> emit(out, new Op.Sigmoid(), Map.of(), value(n, 0));
                case "HardSigmoid" -> emit(out, new Op.HardSigmoid(a.getFloat("alpha", 0.2f), a.getFloat("beta", 0.5f)), Map.of(), value(n, 0));
                case "HardSwish" -> emit(out, new Op.HardSwish(), Map.of(), value(n, 0));
                case "Clip" -> {
                    float min, max;
                    if (opset < 11) {
                        min = a.getFloat("min", -Float.MAX_VALUE);
                        max = a.getFloat("max", Float.MAX_VALUE);
                    } else {
                        min = optionalScalar(n, 1, "min", Float.NEGATIVE_INFINITY);
                        max = optionalScalar(n, 2, "max", Float.POSITIVE_INFINITY);
                    }
                    emit(out, new Op.Clip(min, max), Map.of(), value(n, 0));
                }
                case "Softmax" -> softmax(n, a, out);
                case "Conv" -> conv(n, a, out);
                case "BatchNormalization" -> batchNorm(n, a, out);
                case "MaxPool", "AveragePool" -> pool(n, a, out, op.equals("MaxPool"));
                case "GlobalAveragePool" -> {
                    String x = value(n, 0);
                    requireRank(n, x, 4);
                    emit(out, new Op.GlobalAvgPool(), Map.of(), x);
                }
                case "Gemm" -> gemm(n, a, out);
                case "MatMul" -> matMul(n, out);
                case "Resize", "Upsample" -> resize(n, a, out);
                default -> throw fail(n, "is not supported");  // unreachable: rejectUnsupported ran first
            }
        }

        Constant constantAttribute(NodeProto n, Attributes a) {
            if (n.getAttributeCount() != 1) throw fail(n, "must have exactly one value attribute, has " + n.getAttributeCount());
            AttributeProto attr = n.getAttribute(0);
            return switch (attr.getName()) {
                case "value" -> OnnxTensors.decode(attr.getT(), modelDir);
                case "value_float" -> Constant.floats(new long[0], new float[] {attr.getF()});
                case "value_floats" -> Constant.floats(new long[] {attr.getFloatsCount()}, a.getFloats("value_floats"));
                case "value_int" -> Constant.scalar(attr.getI());
                case "value_ints" -> Constant.ints(new long[] {attr.getIntsCount()}, a.getInts("value_ints"));
                default -> throw fail(n, "has a '" + attr.getName() + "' value, which Silhouette does not read (value, value_float(s), value_int(s))");
            };
        }

        void alias(NodeProto n, int input, String out) {
            if (isConstant(n, input)) putConstant(out, constant(n, input, "input"));
            else values.put(out, value(n, input));
        }

        void arithmetic(NodeProto n, String out, Op.Arithmetic kind) {
            boolean c0 = isConstant(n, 0), c1 = isConstant(n, 1);
            if (c0 && c1) {
                putConstant(out, Folding.arithmetic(constant(n, 0, "A"), constant(n, 1, "B"), kind));
            } else if (c0 || c1) {
                String x = value(n, c0 ? 1 : 0);
                Constant c = constant(n, c0 ? 0 : 1, c0 ? "A" : "B").asFloats();
                int rank = shape(x).rank();
                long[] dims = c.dims();
                // A constant of higher rank is accepted when its extra leading axes are 1 (it cannot add axes).
                int extra = dims.length - rank;
                for (int i = 0; i < extra; i++) {
                    if (dims[i] != 1) throw fail(n, "combines " + n.getInput(c0 ? 1 : 0) + " " + shape(x) + " with a constant of dims " + Arrays.toString(dims) + " of higher rank");
                }
                if (extra > 0) c = c.withDims(Arrays.copyOfRange(dims, extra, dims.length));
                Tensor t = c.toTensor(describe(n) + " constant");
                emit(out, new Op.ElementwiseConstant(kind, t.shape(), c0), Map.of("constant", t), x);
            } else {
                String x = value(n, 0), y = value(n, 1);
                if (kind == Op.Arithmetic.ADD && shape(x).equals(shape(y))) emit(out, new Op.Add(), Map.of(), x, y);
                else emit(out, new Op.Elementwise(kind), Map.of(), x, y);
            }
        }

        /** Constant-mode padding of H and W of an NCHW value (F.pad on images). */
        void pad(NodeProto n, Attributes a, String out) {
            String x = value(n, 0);
            requireRank(n, x, 4);
            String mode = a.getString("mode", "constant");
            if (!mode.equals("constant")) throw fail(n, "pads in mode '" + mode + "'; Silhouette pads with a constant");
            long[] pads;
            float fill;
            if (opset < 11) {
                pads = a.getInts("pads");
                fill = a.getFloat("value", 0f);
            } else {
                pads = constant(n, 1, "pads").longs("pads");
                fill = optionalScalar(n, 2, "constant_value", 0f);
                if (n.getInputCount() > 3 && !n.getInput(3).isEmpty()) {
                    long[] axes = constant(n, 3, "axes").longs("axes");
                    long[] full = new long[8];
                    for (int k = 0; k < axes.length; k++) {
                        int ax = (int) normalizeAxis(n, axes[k], 4);
                        full[ax] = pads[k];
                        full[ax + 4] = pads[k + axes.length];
                    }
                    pads = full;
                }
            }
            if (pads == null || pads.length != 8) throw fail(n, "needs 8 pads for a rank-4 input, has " + Arrays.toString(pads));
            if (pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0) throw fail(n, "pads the batch or channel axis " + Arrays.toString(pads) + "; Silhouette pads H and W");
            for (long p : pads) if (p < 0 || p > 65_536) throw fail(n, "has pad " + p + " (Silhouette pads by 0 to 65536; negative pads crop)");
            emit(out, new Op.Pad((int) pads[2], (int) pads[6], (int) pads[3], (int) pads[7], fill), Map.of(), x);
        }

        void softmax(NodeProto n, Attributes a, String out) {
            String x = value(n, 0);
            Shape s = shape(x);
            long axis = normalizeAxis(n, a.getInt("axis", opset >= 13 ? -1 : 1), s.rank());
            if (opset >= 13) {
                if (axis != 1) throw fail(n, "takes softmax over axis " + axis + " of a rank-" + s.rank() + " tensor; Silhouette's Softmax is over axis 1");
                emit(out, new Op.Softmax(), Map.of(), x);
            } else {
                // Before opset 13 Softmax flattens to 2-D at the axis: over everything from axis 1 on.
                if (axis != 1) throw fail(n, "takes softmax over axes " + axis + ".. (opset " + opset + "); Silhouette supports axis 1");
                if (s.rank() == 2) {
                    emit(out, new Op.Softmax(), Map.of(), x);
                } else {
                    String flat = emit(fresh(out + "/flatten"), new Op.Flatten(), Map.of(), x);
                    String soft = emit(fresh(out + "/softmax"), new Op.Softmax(), Map.of(), flat);
                    emit(out, new Op.Reshape(sampleOf(s)), Map.of(), soft);
                }
            }
        }

        void conv(NodeProto n, Attributes a, String out) {
            String x = value(n, 0);
            Constant w = constant(n, 1, "weight W (Silhouette needs convolution weights as initializers)");
            Shape s = shape(x);
            if (w.rank() != 4 || s.rank() != 4) {
                throw fail(n, "is a " + (w.rank() - 2) + "-D convolution of input " + s + "; Silhouette runs 2-D convolutions (NCHW, weight rank 4)");
            }
            Tensor weight = w.toTensor(describe(n) + " weight");
            int groups = Math.toIntExact(a.getInt("group", 1));
            int outChannels = weight.shape().dim(0), inPerGroup = weight.shape().dim(1);
            long[] kernel = a.getInts("kernel_shape");
            if (kernel != null && (kernel.length != 2 || kernel[0] != weight.shape().dim(2) || kernel[1] != weight.shape().dim(3))) {
                throw fail(n, "declares kernel_shape " + Arrays.toString(kernel) + " but its weight is " + weight.shape());
            }
            if ((long) inPerGroup * groups != s.c()) {
                throw fail(n, "has weight " + weight.shape() + " with group " + groups + ", which needs " + (long) inPerGroup * groups
                        + " input channels; input " + n.getInput(0) + " has shape " + s);
            }
            Map<String, Tensor> params = new LinkedHashMap<>();
            params.put("weight", weight);
            boolean bias = n.getInputCount() > 2 && !n.getInput(2).isEmpty();
            if (bias) params.put("bias", constant(n, 2, "bias B").toTensor(describe(n) + " bias"));
            Spatial sp = spatial(n, a, s, weight.shape().dim(2), weight.shape().dim(3), false);
            x = !sp.asymmetric() ? x : emit(fresh(out + "/pad"), sp.padNode(0f), Map.of(), x);
            emit(out, new Op.Conv2d(s.c(), outChannels, sp.window(), groups, bias), params, x);
        }

        void batchNorm(NodeProto n, Attributes a, String out) {
            if (a.getInt("training_mode", 0) != 0) throw fail(n, "runs in training mode; Silhouette imports inference graphs");
            for (int i = 1; i < n.getOutputCount(); i++) {
                unavailable.put(n.getOutput(i), "it is a training statistic of " + describe(n) + ", which inference does not compute");
            }
            String x = value(n, 0);
            Shape s = shape(x);
            if (s.rank() < 2) throw fail(n, "normalizes axis 1 of input " + s + ", which has none");
            int c = s.dim(1);
            Map<String, Tensor> params = new LinkedHashMap<>();
            String[] onnxRoles = {"scale", "B", "input_mean", "input_var"}, suffixes = {"weight", "bias", "running_mean", "running_var"};
            for (int i = 0; i < 4; i++) {
                Constant k = constant(n, i + 1, onnxRoles[i]);
                if (k.size() != c) throw fail(n, onnxRoles[i] + " has " + k.size() + " values for " + c + " channels of input " + s);
                params.put(suffixes[i], k.withDims(new long[] {c}).toTensor(describe(n) + " " + onnxRoles[i]));
            }
            emit(out, new Op.BatchNorm(c, a.getFloat("epsilon", 1e-5f)), params, x);
        }

        void pool(NodeProto n, Attributes a, String out, boolean max) {
            if (max && n.getOutputCount() > 1) unavailable.put(n.getOutput(1), "it holds the Indices of MaxPool " + describe(n) + ", which Silhouette does not compute");
            String x = value(n, 0);
            requireRank(n, x, 4);
            long[] kernel = a.getInts("kernel_shape");
            if (kernel == null || kernel.length != 2) throw fail(n, "needs a 2-D kernel_shape, has " + Arrays.toString(kernel));
            Shape s = shape(x);
            Spatial sp = spatial(n, a, s, Math.toIntExact(kernel[0]), Math.toIntExact(kernel[1]), true);
            if (max) {
                // Padding never wins a max, so padding with -inf first is the same pooling.
                x = !sp.asymmetric() ? x : emit(fresh(out + "/pad"), sp.padNode(Float.NEGATIVE_INFINITY), Map.of(), x);
                emit(out, new Op.MaxPool(sp.window()), Map.of(), x);
            } else {
                boolean includePad = a.getInt("count_include_pad", 0) != 0;
                if (sp.ceilExtra()) throw fail(n, "uses ceil_mode where it adds a partial window; Silhouette's AvgPool has no partial windows");
                if (sp.asymmetric() && !includePad) {
                    throw fail(n, "pads asymmetrically " + Arrays.toString(sp.pads()) + " with count_include_pad=0, which Silhouette's AvgPool cannot express");
                }
                x = !sp.asymmetric() ? x : emit(fresh(out + "/pad"), sp.padNode(0f), Map.of(), x);
                emit(out, new Op.AvgPool(sp.window(), includePad), Map.of(), x);
            }
        }

        /** A window with symmetric padding, plus an explicit Pad node when ONNX's padding is asymmetric. */
        record Spatial(Window window, int[] pads, boolean asymmetric, boolean ceilExtra) {
            Op.Pad padNode(float value) {
                return new Op.Pad(pads[0], pads[2], pads[1], pads[3], value);
            }
        }

        Spatial spatial(NodeProto n, Attributes a, Shape s, int kh, int kw, boolean pooling) {
            long[] strides = orDefault(a.getInts("strides"), 1), dilations = orDefault(a.getInts("dilations"), 1);
            if (strides.length != 2 || dilations.length != 2) throw fail(n, "needs 2 strides and dilations, has " + Arrays.toString(strides) + " and " + Arrays.toString(dilations));
            int sh = Math.toIntExact(strides[0]), sw = Math.toIntExact(strides[1]), dh = Math.toIntExact(dilations[0]), dw = Math.toIntExact(dilations[1]);
            String autoPad = a.getString("auto_pad", "NOTSET");
            int[] pads = new int[4];  // top, left, bottom, right (ONNX's begin..., end...)
            int[] in = {s.h(), s.w()}, k = {kh, kw}, st = {sh, sw}, dl = {dh, dw};
            switch (autoPad) {
                case "NOTSET" -> {
                    long[] p = a.getInts("pads");
                    if (p != null) {
                        if (p.length != 4) throw fail(n, "needs 4 pads for 2-D, has " + Arrays.toString(p));
                        for (int i = 0; i < 4; i++) {
                            if (p[i] < 0 || p[i] > 65_536) throw fail(n, "has pad " + p[i] + " (must be 0 to 65536)");
                            pads[i] = (int) p[i];
                        }
                    }
                }
                case "VALID" -> { }
                case "SAME_UPPER", "SAME_LOWER" -> {
                    for (int i = 0; i < 2; i++) {
                        int outSize = (in[i] + st[i] - 1) / st[i];
                        int total = Math.max(0, (outSize - 1) * st[i] + (k[i] - 1) * dl[i] + 1 - in[i]);
                        int small = total / 2;
                        pads[i] = autoPad.equals("SAME_UPPER") ? small : total - small;
                        pads[i + 2] = total - pads[i];
                    }
                }
                default -> throw fail(n, "has unknown auto_pad '" + autoPad + "'");
            }
            boolean ceilExtra = false;
            if (pooling && a.getInt("ceil_mode", 0) != 0) {
                for (int i = 0; i < 2; i++) {
                    int span = in[i] + pads[i] + pads[i + 2] - ((k[i] - 1) * dl[i] + 1);
                    if (span < 0) break;
                    int floorOut = span / st[i] + 1, ceilOut = (span + st[i] - 1) / st[i] + 1;
                    // As ONNX Runtime and PyTorch: the last window must start inside the input or its leading padding.
                    if ((ceilOut - 1) * st[i] >= in[i] + pads[i]) ceilOut--;
                    if (ceilOut > floorOut) {
                        pads[i + 2] += (ceilOut - 1) * st[i] + (k[i] - 1) * dl[i] + 1 - (in[i] + pads[i] + pads[i + 2]);
                        ceilExtra = true;
                    }
                }
            }
            boolean symmetric = pads[0] == pads[2] && pads[1] == pads[3] && (!pooling || (pads[0] <= kh / 2 && pads[1] <= kw / 2));
            Window w = symmetric ? new Window(kh, kw, sh, sw, pads[0], pads[1], dh, dw) : new Window(kh, kw, sh, sw, 0, 0, dh, dw);
            return new Spatial(w, pads, !symmetric, ceilExtra);
        }

        void gemm(NodeProto n, Attributes a, String out) {
            if (a.getInt("transA", 0) != 0) throw fail(n, "has transA=1 on a computed input, which would move the batch axis");
            String x = value(n, 0);
            requireRank(n, x, 2);
            Constant b = constant(n, 1, "B (Silhouette needs Gemm weights as initializers)");
            if (b.rank() != 2) throw fail(n, "has B of dims " + Arrays.toString(b.dims()) + ", not a matrix");
            boolean transB = a.getInt("transB", 0) != 0;
            float alpha = a.getFloat("alpha", 1f), beta = a.getFloat("beta", 1f);
            Tensor weight = weightMatrix(n, b, transB, alpha);
            int k = weight.shape().dim(1), m = weight.shape().dim(0);
            if (shape(x).dim(1) != k) throw fail(n, "multiplies input " + shape(x) + " by B of dims " + Arrays.toString(b.dims()) + (transB ? " (transposed)" : ""));
            Map<String, Tensor> params = new LinkedHashMap<>();
            params.put("weight", weight);
            boolean bias = n.getInputCount() > 2 && !n.getInput(2).isEmpty();
            if (bias) {
                Constant c = constant(n, 2, "C").asFloats();
                boolean rowVector = c.size() == m && (c.rank() == 1 || (c.rank() == 2 && c.dims()[0] == 1));
                if (!rowVector && c.size() != 1) throw fail(n, "has C of dims " + Arrays.toString(c.dims()) + "; Silhouette adds a bias of " + m + " values (or a scalar) to every row");
                float[] v = new float[m];
                for (int i = 0; i < m; i++) v[i] = beta * c.floats()[c.size() == 1 ? 0 : i];
                params.put("bias", new Tensor(Shape.of(m), v));
            }
            emit(out, new Op.Linear(k, m, bias), params, x);
        }

        void matMul(NodeProto n, String out) {
            String x = value(n, 0);
            Shape s = shape(x);
            if (s.rank() != 2) throw fail(n, "multiplies a rank-" + s.rank() + " tensor " + s + "; Silhouette's MatMul takes N x K inputs");
            Constant b = constant(n, 1, "B (Silhouette's MatMul needs a constant right operand)");
            if (b.rank() != 2) throw fail(n, "has B of dims " + Arrays.toString(b.dims()) + ", not a matrix");
            Tensor weight = weightMatrix(n, b, false, 1f);
            if (s.dim(1) != weight.shape().dim(1)) throw fail(n, "multiplies input " + s + " by B of dims " + Arrays.toString(b.dims()));
            emit(out, new Op.Linear(weight.shape().dim(1), weight.shape().dim(0), false), Map.of("weight", weight), x);
        }

        /** The Linear weight [out, in] = alpha * (transposed ? B : B^T). */
        Tensor weightMatrix(NodeProto n, Constant b, boolean transposed, float alpha) {
            Tensor t = b.toTensor(describe(n) + " B");
            int r = t.shape().dim(0), c = t.shape().dim(1);
            float[] src = t.data();
            if (transposed) {
                float[] w = new float[src.length];
                for (int i = 0; i < w.length; i++) w[i] = alpha * src[i];
                return new Tensor(Shape.of(r, c), w);
            }
            float[] w = new float[src.length];
            for (int i = 0; i < r; i++) for (int j = 0; j < c; j++) w[j * r + i] = alpha * src[i * c + j];
            return new Tensor(Shape.of(c, r), w);
        }

        void resize(NodeProto n, Attributes a, String out) {
            String x = value(n, 0);
            requireRank(n, x, 4);
            Shape s = shape(x);
            boolean upsample = n.getOpType().equals("Upsample");
            String mode = a.getString("mode", "nearest");
            String coordinates = upsample || opset < 11 ? "asymmetric" : a.getString("coordinate_transformation_mode", "half_pixel");
            String nearestMode = upsample || opset < 11 ? "floor" : a.getString("nearest_mode", "round_prefer_floor");
            if (a.has("axes")) {
                long[] axes = a.getInts("axes");
                if (!Arrays.equals(axes, new long[] {2, 3}) && !Arrays.equals(axes, new long[] {-2, -1})) throw fail(n, "resizes axes " + Arrays.toString(axes) + "; Silhouette resizes H and W");
            }
            if (!a.getString("keep_aspect_ratio_policy", "stretch").equals("stretch")) throw fail(n, "uses keep_aspect_ratio_policy '" + a.getString("keep_aspect_ratio_policy", "") + "'; only 'stretch' is supported");
            float[] scales = null;
            long[] sizes = null;
            if (upsample && opset < 9) {
                scales = a.getFloats("scales");
            } else if (upsample || opset < 11) {
                scales = constant(n, 1, "scales").asFloats().floats();
            } else {
                if (n.getInputCount() > 2 && !n.getInput(2).isEmpty() && constant(n, 2, "scales").size() > 0) scales = constant(n, 2, "scales").asFloats().floats();
                else if (n.getInputCount() > 3 && !n.getInput(3).isEmpty()) sizes = constant(n, 3, "sizes").longs("sizes");
                else throw fail(n, "gives neither scales nor sizes");
            }
            int[] in = {s.h(), s.w()}, outSize = new int[2];
            double[] scale = new double[2];
            long[] full = scales != null ? null : sizes;
            if (scales != null) {
                if (scales.length == 2) scales = new float[] {1, 1, scales[0], scales[1]};
                if (scales.length != 4 || scales[0] != 1 || scales[1] != 1) throw fail(n, "scales " + Arrays.toString(scales) + " must be [1, 1, sh, sw]: Silhouette resizes H and W only");
                for (int i = 0; i < 2; i++) {
                    if (!(scales[i + 2] > 0) || scales[i + 2] > 65_536) throw fail(n, "has scale " + scales[i + 2] + " (must be positive and at most 65536)");
                    outSize[i] = (int) Math.floor(in[i] * (double) scales[i + 2]);
                    scale[i] = scales[i + 2];
                }
            } else {
                if (full.length == 2) full = new long[] {s.n(), s.c(), full[0], full[1]};
                if (full.length != 4 || full[0] != s.n() || full[1] != s.c()) throw fail(n, "sizes " + Arrays.toString(full) + " must keep N and C of input " + s);
                for (int i = 0; i < 2; i++) {
                    if (full[i + 2] < 1 || full[i + 2] > 1 << 20) throw fail(n, "has output size " + full[i + 2] + " (must be 1 to " + (1 << 20) + ")");
                    outSize[i] = (int) full[i + 2];
                    scale[i] = (double) outSize[i] / in[i];
                }
            }
            if (outSize[0] < 1 || outSize[1] < 1) throw fail(n, "resizes " + s + " to nothing");
            Op.Interpolate.Mode m = switch (mode) {
                case "nearest" -> {
                    for (int i = 0; i < 2; i++) checkNearest(n, coordinates, nearestMode, in[i], outSize[i], scale[i]);
                    yield Op.Interpolate.Mode.NEAREST;
                }
                case "linear", "bilinear" -> {
                    boolean halfPixel = coordinates.equals("half_pixel") || coordinates.equals("pytorch_half_pixel") && outSize[0] > 1 && outSize[1] > 1;
                    if (!halfPixel) throw fail(n, "uses linear resizing with coordinate_transformation_mode '" + coordinates + "'; Silhouette's bilinear is half_pixel (PyTorch align_corners=False)");
                    for (int i = 0; i < 2; i++) {
                        if (Math.abs(scale[i] * in[i] - outSize[i]) > 1e-6 * outSize[i]) {
                            throw fail(n, "scales by " + scale[i] + ", which is not output/input size (" + outSize[i] + "/" + in[i] + "); give sizes, or scales with a whole output size");
                        }
                        if (outSize[i] < in[i] && a.getInt("antialias", 0) != 0) throw fail(n, "downscales with antialias=1, which Silhouette does not implement");
                    }
                    yield Op.Interpolate.Mode.BILINEAR;
                }
                default -> throw fail(n, "uses resize mode '" + mode + "'; Silhouette supports nearest and linear");
            };
            emit(out, new Op.Interpolate(m, outSize[0], outSize[1]), Map.of(), x);
        }

        /**
         * Silhouette's nearest takes source floor(dst * in / out). ONNX's rule depends on the coordinate
         * mode, the rounding and the scale; rather than enumerate equivalences, every index is compared.
         */
        void checkNearest(NodeProto n, String coordinates, String rounding, int in, int out, double scale) {
            for (int dst = 0; dst < out; dst++) {
                double original = switch (coordinates) {
                    case "half_pixel" -> (dst + 0.5) / scale - 0.5;
                    case "pytorch_half_pixel" -> out > 1 ? (dst + 0.5) / scale - 0.5 : 0;
                    case "asymmetric" -> dst / scale;
                    case "align_corners" -> out == 1 ? 0 : dst * (in - 1.0) / (out - 1.0);
                    case "tf_half_pixel_for_nn" -> (dst + 0.5) / scale;
                    default -> throw fail(n, "uses coordinate_transformation_mode '" + coordinates + "', which Silhouette does not implement");
                };
                long onnx = switch (rounding) {
                    case "round_prefer_floor" -> original == Math.floor(original) + 0.5 ? (long) Math.floor(original) : Math.round(original);
                    case "round_prefer_ceil" -> original == Math.floor(original) + 0.5 ? (long) Math.ceil(original) : Math.round(original);
                    case "floor" -> (long) Math.floor(original);
                    case "ceil" -> (long) Math.ceil(original);
                    default -> throw fail(n, "uses nearest_mode '" + rounding + "', which Silhouette does not implement");
                };
                onnx = Math.max(0, Math.min(in - 1, onnx));
                long ours = Math.min((long) Math.floor(dst * ((double) in / out)), in - 1);
                if (onnx != ours) {
                    throw fail(n, "picks source pixel " + onnx + " for output " + dst + " (" + coordinates + ", " + rounding + ", " + in + " -> " + out
                            + "), where Silhouette's nearest (floor of dst * in / out) picks " + ours);
                }
            }
        }

        /** Every import-time tensor goes through here, so their total stays within half the heap. */
        void putConstant(String name, Constant c) {
            constantBytes += (long) c.size() * (c.isFloat() ? 4 : 8);
            long budget = Runtime.getRuntime().maxMemory() / 2;
            if (constantBytes > budget) {
                throw new OnnxException(source + ": the model's weights and constants need more than " + (budget >> 20) + " MiB, half of the "
                        + (Runtime.getRuntime().maxMemory() >> 20) + " MiB heap (give the JVM more with -Xmx)");
            }
            constants.put(name, c);
        }

        // ---------------------------------------------------------------------------------------------
        // Emitting IR nodes

        String emit(String name, Op op, Map<String, Tensor> params, String... in) {
            Node node = new Node(name, op, List.of(in));
            List<Shape> inShapes = new ArrayList<>();
            for (String i : in) inShapes.add(shapes.get(i));
            Shape s;
            try {
                s = ShapeInference.infer(node, inShapes);
            } catch (GraphException e) {
                throw new OnnxException(source + ": " + e.getMessage() + " (input shapes " + inShapes + ")", e);
            }
            // One sample's value must fit a quarter of the heap, or running the graph would exhaust memory.
            long sampleBytes = 4L * s.sampleSize(), budget = Runtime.getRuntime().maxMemory() / 4;
            if (sampleBytes > budget) {
                throw new OnnxException(source + ": " + name + " (" + Graph.opName(op) + ") has shape " + s + ", " + (sampleBytes >> 20)
                        + " MiB per sample, more than a quarter of the " + (Runtime.getRuntime().maxMemory() >> 20) + " MiB heap");
            }
            for (Map.Entry<String, Tensor> p : params.entrySet()) parameters.put(name + "." + p.getKey(), p.getValue());
            nodes.add(node);
            shapes.put(name, s);
            values.put(name, name);
            taken.add(name);
            return name;
        }

        void emitReshape(NodeProto n, String out, String x, long[] dims) {
            Shape s = shape(x);
            if (dims.length < 1 || dims[0] != s.dim(0)) {
                throw fail(n, "reshapes " + s + " to " + Arrays.toString(dims) + ", which moves or resizes the batch axis (0); Silhouette keeps it first");
            }
            int[] sample = new int[dims.length - 1];
            for (int i = 0; i < sample.length; i++) sample[i] = Math.toIntExact(dims[i + 1]);
            emit(out, new Op.Reshape(Shape.of(sample)), Map.of(), x);
        }

        String fresh(String base) {
            String name = base;
            for (int i = 2; taken.contains(name); i++) name = base + "#" + i;
            taken.add(name);
            return name;
        }

        // ---------------------------------------------------------------------------------------------
        // Looking up inputs

        boolean isConstant(NodeProto n, int i) {
            return i < n.getInputCount() && constants.containsKey(n.getInput(i));
        }

        Constant constant(NodeProto n, int i, String role) {
            if (i >= n.getInputCount() || n.getInput(i).isEmpty()) throw fail(n, "lacks its input " + i + " (" + role + ")");
            Constant c = constants.get(n.getInput(i));
            if (c == null) throw fail(n, "needs input " + i + " (" + role + ") '" + n.getInput(i) + "' to be a constant (initializer or foldable), but it is computed from the graph inputs");
            return c;
        }

        float optionalScalar(NodeProto n, int i, String role, float fallback) {
            if (i >= n.getInputCount() || n.getInput(i).isEmpty()) return fallback;
            Constant c = constant(n, i, role);
            if (c.size() != 1) throw fail(n, role + " must be a scalar, has dims " + Arrays.toString(c.dims()));
            return (float) c.get(0);
        }

        String value(NodeProto n, int i) {
            if (i >= n.getInputCount() || n.getInput(i).isEmpty()) throw fail(n, "lacks its input " + i);
            String name = n.getInput(i);
            String v = values.get(name);
            if (v != null) return v;
            if (unavailable.containsKey(name)) throw fail(n, "reads '" + name + "', but " + unavailable.get(name));
            if (constants.containsKey(name)) {
                throw fail(n, "applies " + n.getOpType() + " to the constant '" + name + "'; Silhouette folds only shape computations and arithmetic on constants");
            }
            throw fail(n, "reads '" + name + "', which is not defined");
        }

        Shape shape(String irValue) {
            return shapes.get(irValue);
        }

        void requireRank(NodeProto n, String x, int rank) {
            if (shape(x).rank() != rank) throw fail(n, "needs a rank-" + rank + " input, " + x + " has shape " + shape(x));
        }

        long normalizeAxis(NodeProto n, long axis, int rank) {
            long a = axis < 0 ? axis + rank : axis;
            if (a < 0 || a >= Math.max(rank, 1)) throw fail(n, "has axis " + axis + " outside a rank-" + rank + " tensor");
            return a;
        }

        /** Flatten's axis is in [-rank, rank]: the split point between the two output dims. */
        int flattenAxis(NodeProto n, long axis, int rank) {
            long a = axis < 0 ? axis + rank : axis;
            if (a < 0 || a > rank) throw fail(n, "has axis " + axis + " outside [-" + rank + ", " + rank + "]");
            return (int) a;
        }

        OnnxException fail(NodeProto n, String what) {
            return new OnnxException(source + ": " + describe(n) + " " + what);
        }

        // ---------------------------------------------------------------------------------------------
        // Outputs and the silhouette branch

        Imported finish() {
            Map<String, String> outputNames = new LinkedHashMap<>();
            for (ValueInfoProto o : g.getOutputList()) {
                String v = values.get(o.getName());
                if (v == null) {
                    if (constants.containsKey(o.getName())) throw new OnnxException(source + ": graph output '" + o.getName() + "' is a constant; Silhouette's outputs are computed from the inputs");
                    throw new OnnxException(source + ": graph output '" + o.getName() + "' is not defined by any node"
                            + (unavailable.containsKey(o.getName()) ? " Silhouette computes (" + unavailable.get(o.getName()) + ")" : ""));
                }
                outputNames.put(o.getName(), v);
            }
            if (outputNames.isEmpty()) throw new OnnxException(source + " declares no graph outputs");
            String note;
            String silhouetteOnnx = null;
            String silhouetteIr;
            if (options.silhouetteOutput() != null) {
                silhouetteOnnx = options.silhouetteOutput();
                silhouetteIr = values.get(silhouetteOnnx);
                if (silhouetteIr == null || inputs.stream().anyMatch(i -> i.name().equals(values.get(options.silhouetteOutput())))) {
                    throw new OnnxException(source + ": the named silhouette output '" + silhouetteOnnx + "' is not a value computed by the graph");
                }
                Shape s = shapes.get(silhouetteIr);
                if (s.rank() != 4 || s.c() != 1) throw new OnnxException(source + ": the named silhouette '" + silhouetteOnnx + "' has shape " + s + ", a silhouette is N x 1 x H x W");
                note = "silhouette named by the user: " + silhouetteOnnx;
            } else {
                List<String> candidates = silhouetteCandidates();
                if (candidates.size() == 1) {
                    silhouetteIr = candidates.getFirst();
                    silhouetteOnnx = silhouetteIr;
                    note = "silhouette branch recognised: " + silhouetteIr + " (1x1 conv to one channel, sigmoid)";
                } else {
                    silhouetteIr = null;
                    note = candidates.isEmpty() ? "no silhouette branch (1x1 conv to one channel, optional BatchNorm, sigmoid) found"
                            : "several silhouette-like branches " + candidates + "; name one with --silhouette-output";
                }
            }
            List<Node> finalNodes = nodes;
            Map<String, Tensor> finalParams = parameters;
            if (silhouetteIr != null && !silhouetteIr.equals(Models.SILHOUETTE)) {
                if (shapes.containsKey(Models.SILHOUETTE)) {
                    throw new OnnxException(source + ": a value is already named '" + Models.SILHOUETTE + "' but the silhouette is '" + silhouetteOnnx + "'");
                }
                String from = silhouetteIr;
                finalNodes = new ArrayList<>();
                finalParams = new LinkedHashMap<>();
                for (Node node : nodes) {
                    String name = node.name().equals(from) ? Models.SILHOUETTE : node.name();
                    finalNodes.add(new Node(name, node.op(), node.inputs().stream().map(i -> i.equals(from) ? Models.SILHOUETTE : i).toList()));
                    for (Op.Parameter p : node.op().parameters()) finalParams.put(name + "." + p.suffix(), parameters.get(node.parameterName(p)));
                }
                outputNames.replaceAll((k, v) -> v.equals(from) ? Models.SILHOUETTE : v);
            }
            LinkedHashSet<String> outputs = new LinkedHashSet<>(outputNames.values());
            if (silhouetteIr != null) outputs.add(Models.SILHOUETTE);
            Graph graph;
            try {
                graph = new Graph(inputs, finalNodes, new ArrayList<>(outputs), finalParams);
            } catch (GraphException e) {
                throw new OnnxException(source + ": " + e.getMessage(), e);
            }
            String producer = (model.getProducerName() + " " + model.getProducerVersion()).trim();
            return new Imported(graph, outputNames, silhouetteOnnx, note, opset, producer, importBatch);
        }

        /** Sigmoid of [BatchNorm of] a 1x1 convolution to one channel: the auxiliary branch of the method. */
        List<String> silhouetteCandidates() {
            Map<String, Node> byName = new HashMap<>();
            for (Node node : nodes) byName.put(node.name(), node);
            List<String> found = new ArrayList<>();
            for (Node node : nodes) {
                if (!(node.op() instanceof Op.Sigmoid)) continue;
                Node before = byName.get(node.inputs().getFirst());
                if (before != null && before.op() instanceof Op.BatchNorm) before = byName.get(before.inputs().getFirst());
                if (before != null && before.op() instanceof Op.Conv2d c && c.outChannels() == 1 && c.window().kernelH() == 1 && c.window().kernelW() == 1) {
                    found.add(node.name());
                }
            }
            return found;
        }

        String describe(NodeProto n) {
            return n.getOpType() + " node '" + (n.getName().isEmpty() ? (n.getOutputCount() > 0 ? n.getOutput(0) : "?") : n.getName()) + "'";
        }
    }

    private static long[] orDefault(long[] v, long fallback) {
        return v != null ? v : new long[] {fallback, fallback};
    }

    static long[] longs(int[] dims) {
        long[] l = new long[dims.length];
        for (int i = 0; i < l.length; i++) l[i] = dims[i];
        return l;
    }

    private static long clampAxis(long axis, int rank) {
        long a = axis < 0 ? axis + rank : axis;
        return Math.max(0, Math.min(rank, a));
    }

    private static Shape sampleOf(Shape s) {
        int[] d = s.dims();
        return Shape.of(Arrays.copyOfRange(d, 1, d.length));
    }
}
