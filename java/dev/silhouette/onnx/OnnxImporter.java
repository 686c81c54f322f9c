package dev.silhouette.onnx;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphException;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.io.Limit;
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
import java.util.ArrayList;
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
 * Each op type's conversion is a converter in {@link OnnxOpRegistry}, which also defines what is supported.
 */
public final class OnnxImporter {
    /** Opsets of the default domain this importer maps (op semantics differ by version; see the converters in OnnxOpRegistry). */
    public static final int MIN_OPSET = 7, MAX_OPSET = 21;

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
        if (!Limit.ONNX_FILE_BYTES.allows(size)) {
            throw new OnnxException("ONNX model " + file + " has " + size + " bytes, " + Limit.ONNX_FILE_BYTES.describe()
                    + ": protobuf reads at most that (store the weights as external data)");
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
        GraphProto g = model.getGraph();
        if (!Limit.ONNX_NODES.allows(g.getNodeCount())) throw new OnnxException(Limit.ONNX_NODES.refusal(source + ": the graph declares nodes:", g.getNodeCount()));
        if (!Limit.ONNX_INITIALIZERS.allows(g.getInitializerCount())) {
            throw new OnnxException(Limit.ONNX_INITIALIZERS.refusal(source + ": the graph declares initializers:", g.getInitializerCount()));
        }
        if (!model.hasIrVersion() || model.getIrVersion() < 3) {
            throw new OnnxException(source + ": ONNX IR version " + model.getIrVersion() + " is not supported (3 or newer; opset imports began with 3)");
        }
        return model;
    }

    /** One import: orders and checks the nodes, reads the inputs, runs each node's converter and assembles the graph. */
    private static final class Conversion {
        final ModelProto model;
        final GraphProto g;
        final Path modelDir;
        final String source;
        final Options options;
        final ImportContext ctx;
        final List<Graph.Input> inputs = new ArrayList<>();
        int importBatch = 1;

        Conversion(ModelProto model, Path modelDir, String source, Options options) {
            this.model = model;
            this.g = model.getGraph();
            this.modelDir = modelDir;
            this.source = source;
            this.options = options;
            this.ctx = new ImportContext(source, modelDir, defaultOpset());
        }

        Imported run() {
            List<NodeProto> order = topologicalOrder();
            rejectUnsupported(order);
            for (NodeProto n : g.getNodeList()) for (String o : n.getOutputList()) ctx.taken.add(o);
            for (TensorProto t : g.getInitializerList()) {
                if (ctx.constants.containsKey(t.getName())) {
                    throw new OnnxException(source + ": initializer '" + t.getName() + "' is defined twice");
                }
                try {
                    ctx.putConstant(t.getName(), OnnxTensors.decode(t, modelDir));
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
                    throw new OnnxException(source + ": " + ImportContext.describe(n) + ": " + e.getMessage(), e);
                } catch (IllegalArgumentException | ArithmeticException e) {
                    throw new OnnxException(source + ": " + ImportContext.describe(n) + ": " + e.getMessage(), e);
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
                if (n.getOutputCount() == 0 || n.getOutput(0).isEmpty()) throw new OnnxException(source + ": " + ImportContext.describe(n) + " has no output");
                for (String o : n.getOutputList()) {
                    if (o.isEmpty()) continue;
                    if (defined.contains(o) || producer.put(o, n) != null) {
                        throw new OnnxException(source + ": value '" + o + "' is defined twice (by " + ImportContext.describe(n) + " and earlier)");
                    }
                }
            }
            for (NodeProto n : g.getNodeList()) {
                for (String in : n.getInputList()) {
                    if (!in.isEmpty() && !defined.contains(in) && !producer.containsKey(in)) {
                        throw new OnnxException(source + ": " + ImportContext.describe(n) + " reads '" + in
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
                for (int i = 0; i < all.size(); i++) if (waiting[i] > 0) stuck.add(ImportContext.describe(all.get(i)));
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
                } else if (OnnxOpRegistry.converter(n.getOpType()) == null) {
                    bad.add(n.getOpType() + " (node '" + n.getName() + "')");
                }
            }
            if (!bad.isEmpty()) {
                throw new OnnxException(source + " uses " + bad.size() + " node(s) Silhouette cannot import: " + String.join(", ", bad)
                        + ". Supported ops: " + String.join(", ", OnnxOpRegistry.supportedOps()));
            }
        }

        void readInputs() {
            Integer batch = null;
            for (ValueInfoProto v : g.getInputList()) {
                if (ctx.constants.containsKey(v.getName())) continue;  // older IR versions list initializers as inputs
                String what = source + ": graph input '" + v.getName() + "'";
                if (!v.getType().hasTensorType()) throw new OnnxException(what + " is not a tensor");
                var tt = v.getType().getTensorType();
                if (tt.getElemType() != TensorProto.DataType.FLOAT_VALUE) {
                    throw new OnnxException(what + " has element type " + TensorProto.DataType.forNumber(tt.getElemType()) + "; Silhouette runs float32 inputs");
                }
                if (!tt.hasShape() || tt.getShape().getDimCount() < 1) throw new OnnxException(what + " declares no shape; Silhouette needs N x sample shape");
                if (!Limit.RANK.allows(tt.getShape().getDimCount())) throw new OnnxException(Limit.RANK.refusal(what + " declares dimensions:", tt.getShape().getDimCount()));
                List<TensorShapeProto.Dimension> dims = tt.getShape().getDimList();
                int[] sample = new int[dims.size() - 1];
                for (int i = 1; i < dims.size(); i++) {
                    TensorShapeProto.Dimension d = dims.get(i);
                    if (!d.hasDimValue()) {
                        throw new OnnxException(what + " has symbolic dimension '" + d.getDimParam() + "' at axis " + i
                                + "; only the batch axis (0) may vary, sample dimensions must be fixed");
                    }
                    if (d.getDimValue() < 1 || d.getDimValue() > Limit.TENSOR_ELEMENTS.value()) {
                        throw new OnnxException(what + " declares dimension " + d.getDimValue() + " at axis " + i + " (must be 1 to " + Limit.TENSOR_ELEMENTS.value() + ")");
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
                ctx.shapes.put(in.name(), Shape.of(full));
                ctx.values.put(in.name(), in.name());
                ctx.taken.add(in.name());
            }
        }

        void convert(NodeProto n) {
            OnnxOpConverter converter = OnnxOpRegistry.converter(n.getOpType());
            if (converter == null) throw ctx.fail(n, "is not supported");  // unreachable: rejectUnsupported ran first
            converter.convert(ctx, n, new Attributes(n, ImportContext.describe(n)), n.getOutput(0));
        }

        // ---------------------------------------------------------------------------------------------
        // Outputs and the silhouette branch

        Imported finish() {
            Map<String, String> outputNames = new LinkedHashMap<>();
            for (ValueInfoProto o : g.getOutputList()) {
                String v = ctx.values.get(o.getName());
                if (v == null) {
                    if (ctx.constants.containsKey(o.getName())) throw new OnnxException(source + ": graph output '" + o.getName() + "' is a constant; Silhouette's outputs are computed from the inputs");
                    throw new OnnxException(source + ": graph output '" + o.getName() + "' is not defined by any node"
                            + (ctx.unavailable.containsKey(o.getName()) ? " Silhouette computes (" + ctx.unavailable.get(o.getName()) + ")" : ""));
                }
                outputNames.put(o.getName(), v);
            }
            if (outputNames.isEmpty()) throw new OnnxException(source + " declares no graph outputs");
            String note;
            String silhouetteOnnx = null;
            String silhouetteIr;
            if (options.silhouetteOutput() != null) {
                silhouetteOnnx = options.silhouetteOutput();
                silhouetteIr = ctx.values.get(silhouetteOnnx);
                if (silhouetteIr == null || inputs.stream().anyMatch(i -> i.name().equals(ctx.values.get(options.silhouetteOutput())))) {
                    throw new OnnxException(source + ": the named silhouette output '" + silhouetteOnnx + "' is not a value computed by the graph");
                }
                Shape s = ctx.shapes.get(silhouetteIr);
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
            List<Node> finalNodes = ctx.nodes;
            Map<String, Tensor> finalParams = ctx.parameters;
            if (silhouetteIr != null && !silhouetteIr.equals(Models.SILHOUETTE)) {
                if (ctx.shapes.containsKey(Models.SILHOUETTE)) {
                    throw new OnnxException(source + ": a value is already named '" + Models.SILHOUETTE + "' but the silhouette is '" + silhouetteOnnx + "'");
                }
                String from = silhouetteIr;
                finalNodes = new ArrayList<>();
                finalParams = new LinkedHashMap<>();
                for (Node node : ctx.nodes) {
                    String name = node.name().equals(from) ? Models.SILHOUETTE : node.name();
                    finalNodes.add(new Node(name, node.op(), node.inputs().stream().map(i -> i.equals(from) ? Models.SILHOUETTE : i).toList()));
                    for (Op.Parameter p : node.op().parameters()) finalParams.put(name + "." + p.suffix(), ctx.parameters.get(node.parameterName(p)));
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
            return new Imported(graph, outputNames, silhouetteOnnx, note, ctx.opset, producer, importBatch);
        }

        /** Sigmoid of [BatchNorm of] a 1x1 convolution to one channel: the auxiliary branch of the method. */
        List<String> silhouetteCandidates() {
            Map<String, Node> byName = new HashMap<>();
            for (Node node : ctx.nodes) byName.put(node.name(), node);
            List<String> found = new ArrayList<>();
            for (Node node : ctx.nodes) {
                if (!(node.op() instanceof Op.Sigmoid)) continue;
                Node before = byName.get(node.inputs().getFirst());
                if (before != null && before.op() instanceof Op.BatchNorm) before = byName.get(before.inputs().getFirst());
                if (before != null && before.op() instanceof Op.Conv2d c && c.outChannels() == 1 && c.window().kernelH() == 1 && c.window().kernelW() == 1) {
                    found.add(node.name());
                }
            }
            return found;
        }
    }
}
