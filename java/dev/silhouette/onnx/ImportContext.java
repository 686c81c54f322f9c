package dev.silhouette.onnx;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphException;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.ShapeInference;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What one import shares with every op converter: the ONNX values defined so far (computed or folded to
 * constants), the IR nodes and parameters emitted, their shapes, and the names already taken.
 */
final class ImportContext {
    final String source;
    /** Where external data files are looked up, or null for none. */
    final Path modelDir;
    /** The model's version of the default operator set; op semantics differ by version. */
    final int opset;

    /** ONNX value name to its import-time value, for values computable without an input. */
    final Map<String, Constant> constants = new HashMap<>();
    /** ONNX value name to the IR value holding it. */
    final Map<String, String> values = new HashMap<>();
    /** Outputs no IR value provides (Dropout masks, MaxPool indices), with the reason. */
    final Map<String, String> unavailable = new HashMap<>();
    final List<Node> nodes = new ArrayList<>();
    final Map<String, Tensor> parameters = new LinkedHashMap<>();
    /** IR value name to its shape at the import batch size. */
    final Map<String, Shape> shapes = new HashMap<>();
    final Set<String> taken = new HashSet<>();
    private long constantBytes;

    ImportContext(String source, Path modelDir, int opset) {
        this.source = source;
        this.modelDir = modelDir;
        this.opset = opset;
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

    /** A name no ONNX output or IR value uses, for the extra IR nodes one ONNX node may need. */
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
        if (!hasInput(n, i)) throw fail(n, "lacks its input " + i + " (" + role + ")");
        Constant c = constants.get(n.getInput(i));
        if (c == null) throw fail(n, "needs input " + i + " (" + role + ") '" + n.getInput(i) + "' to be a constant (initializer or foldable), but it is computed from the graph inputs");
        return c;
    }

    /** Whether the node gives its input i; ONNX leaves out an optional input, or names it "". */
    boolean hasInput(NodeProto n, int i) {
        return n.getInputCount() > i && !n.getInput(i).isEmpty();
    }

    /** The optional constant input i (axes, steps) as integers, or null where the node leaves it out. */
    long[] optionalLongs(NodeProto n, int i, String role) {
        return hasInput(n, i) ? constant(n, i, role).longs(role) : null;
    }

    /** An op's axes: its attribute before the opset that made them input 1, then that input (null where absent). */
    long[] axes(NodeProto n, Attributes a, int inputSinceOpset) {
        return opset >= inputSinceOpset ? optionalLongs(n, 1, "axes") : a.getInts("axes");
    }

    float optionalScalar(NodeProto n, int i, String role, float fallback) {
        if (!hasInput(n, i)) return fallback;
        Constant c = constant(n, i, role);
        if (c.size() != 1) throw fail(n, role + " must be a scalar, has dims " + Arrays.toString(c.dims()));
        return (float) c.get(0);
    }

    String value(NodeProto n, int i) {
        if (!hasInput(n, i)) throw fail(n, "lacks its input " + i);
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

    /** The IR value's dims at the import batch size, as ONNX's int64 dims. */
    long[] dims(String irValue) {
        int[] d = shape(irValue).dims();
        long[] l = new long[d.length];
        for (int i = 0; i < l.length; i++) l[i] = d[i];
        return l;
    }

    void requireRank(NodeProto n, String x, int rank) {
        if (shape(x).rank() != rank) throw fail(n, "needs a rank-" + rank + " input, " + x + " has shape " + shape(x));
    }

    long normalizeAxis(NodeProto n, long axis, int rank) {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= Math.max(rank, 1)) throw fail(n, "has axis " + axis + " outside a rank-" + rank + " tensor");
        return a;
    }

    OnnxException fail(NodeProto n, String what) {
        return new OnnxException(source + ": " + describe(n) + " " + what);
    }

    static String describe(NodeProto n) {
        return n.getOpType() + " node '" + (n.getName().isEmpty() ? (n.getOutputCount() > 0 ? n.getOutput(0) : "?") : n.getName()) + "'";
    }
}
