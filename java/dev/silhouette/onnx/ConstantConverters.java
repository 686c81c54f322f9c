package dev.silhouette.onnx;

import dev.silhouette.onnx.proto.Onnx.AttributeProto;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.onnx.proto.Onnx.TensorProto;

import java.util.Arrays;

/**
 * Ops evaluated at import (constants and the shape computations exporters emit around Reshape), and the
 * ones that pass their input through unchanged at inference (Identity, Dropout, a Cast to float32).
 */
final class ConstantConverters {
    private ConstantConverters() {}

    static void constant(ImportContext ctx, NodeProto n, Attributes a, String out) {
        if (n.getAttributeCount() != 1) throw ctx.fail(n, "must have exactly one value attribute, has " + n.getAttributeCount());
        AttributeProto attr = n.getAttribute(0);
        ctx.putConstant(out, switch (attr.getName()) {
            case "value" -> OnnxTensors.decode(attr.getT(), ctx.modelDir);
            case "value_float" -> Constant.floats(new long[0], new float[] {attr.getF()});
            case "value_floats" -> Constant.floats(new long[] {attr.getFloatsCount()}, a.getFloats("value_floats"));
            case "value_int" -> Constant.scalar(attr.getI());
            case "value_ints" -> Constant.ints(new long[] {attr.getIntsCount()}, a.getInts("value_ints"));
            default -> throw ctx.fail(n, "has a '" + attr.getName() + "' value, which Silhouette does not read (value, value_float(s), value_int(s))");
        });
    }

    static void constantOfShape(ImportContext ctx, NodeProto n, Attributes a, String out) {
        long[] dims = ctx.constant(n, 0, "shape").longs("shape");
        int size = (int) Constant.size(dims);
        AttributeProto value = a.get("value");
        Constant fill = value == null ? Constant.floats(new long[0], new float[] {0f}) : OnnxTensors.decode(value.getT(), null);
        if (fill.size() != 1) throw ctx.fail(n, "has a value of " + fill.size() + " elements; it must hold one");
        if (fill.isFloat()) {
            float[] v = new float[size];
            Arrays.fill(v, fill.floats()[0]);
            ctx.putConstant(out, Constant.floats(dims, v));
        } else {
            long[] v = new long[size];
            Arrays.fill(v, fill.ints()[0]);
            ctx.putConstant(out, Constant.ints(dims, v));
        }
    }

    static void identity(ImportContext ctx, NodeProto n, Attributes a, String out) {
        alias(ctx, n, out);
    }

    static void dropout(ImportContext ctx, NodeProto n, Attributes a, String out) {
        if (ctx.hasInput(n, 2) && ctx.constant(n, 2, "training_mode").get(0) != 0) {
            throw ctx.fail(n, "runs in training mode; Silhouette imports inference graphs");
        }
        alias(ctx, n, out);
        if (n.getOutputCount() > 1) {
            ctx.unavailable.put(n.getOutput(1), "it is the mask of Dropout " + ImportContext.describe(n) + ", which inference does not compute");
        }
    }

    static void cast(ImportContext ctx, NodeProto n, Attributes a, String out) {
        long to = a.getInt("to", 0);
        boolean toFloat = to == TensorProto.DataType.FLOAT_VALUE || to == TensorProto.DataType.DOUBLE_VALUE || to == TensorProto.DataType.FLOAT16_VALUE;
        if (ctx.isConstant(n, 0)) {
            Constant c = ctx.constant(n, 0, "input");
            ctx.putConstant(out, toFloat ? c.asFloats() : c.asInts());
        } else if (to == TensorProto.DataType.FLOAT_VALUE) {
            alias(ctx, n, out);
        } else {
            throw ctx.fail(n, "casts a computed float32 tensor to type " + TensorProto.DataType.forNumber((int) to) + "; Silhouette computes in float32 only");
        }
    }

    /** The input's dims (computed values have theirs at the import batch size), from start to end. */
    static void shape(ImportContext ctx, NodeProto n, Attributes a, String out) {
        long[] dims = ctx.isConstant(n, 0) ? ctx.constant(n, 0, "input").dims() : ctx.dims(ctx.value(n, 0));
        int rank = dims.length;
        int start = (int) clampAxis(a.getInt("start", 0), rank), end = (int) clampAxis(a.getInt("end", rank), rank);
        ctx.putConstant(out, Constant.ints(new long[] {Math.max(0, end - start)}, Arrays.copyOfRange(dims, start, Math.max(start, end))));
    }

    static void gather(ImportContext ctx, NodeProto n, Attributes a, String out) {
        Constant data = ctx.constant(n, 0, "data (Gather folds constants only)");
        ctx.putConstant(out, Folding.gather(data, ctx.constant(n, 1, "indices"), a.getInt("axis", 0)));
    }

    static void transpose(ImportContext ctx, NodeProto n, Attributes a, String out) {
        ctx.putConstant(out, Folding.transpose(ctx.constant(n, 0, "data (Transpose folds constants only, e.g. weights)"), a.getInts("perm")));
    }

    static void slice(ImportContext ctx, NodeProto n, Attributes a, String out) {
        Constant data = ctx.constant(n, 0, "data (Slice folds constants only, e.g. shapes)");
        if (ctx.opset < 10) {
            long[] starts = a.getInts("starts"), ends = a.getInts("ends");
            if (starts == null || ends == null) throw ctx.fail(n, "lacks starts or ends");
            ctx.putConstant(out, Folding.slice(data, starts, ends, a.getInts("axes"), null));
        } else {
            long[] axes = ctx.optionalLongs(n, 3, "axes"), steps = ctx.optionalLongs(n, 4, "steps");
            ctx.putConstant(out, Folding.slice(data, ctx.constant(n, 1, "starts").longs("starts"), ctx.constant(n, 2, "ends").longs("ends"), axes, steps));
        }
    }

    /** Passes input 0 on: a constant stays one, a computed value keeps its IR value. */
    private static void alias(ImportContext ctx, NodeProto n, String out) {
        if (ctx.isConstant(n, 0)) ctx.putConstant(out, ctx.constant(n, 0, "input"));
        else ctx.values.put(out, ctx.value(n, 0));
    }

    /** Shape's start and end clamp to [0, rank] instead of failing. */
    private static long clampAxis(long axis, int rank) {
        long a = axis < 0 ? axis + rank : axis;
        return Math.max(0, Math.min(rank, a));
    }
}
