package dev.silhouette.onnx;

import dev.silhouette.graph.Op;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.tensor.Shape;

import java.util.Arrays;
import java.util.Map;

/** Ops applied value by value (Relu, Sigmoid, Clip, ...) and Softmax. */
final class ActivationConverters {
    private ActivationConverters() {}

    static void relu(ImportContext ctx, NodeProto n, Attributes a, String out) {
        ctx.emit(out, new Op.Relu(), Map.of(), ctx.value(n, 0));
    }

    static void sigmoid(ImportContext ctx, NodeProto n, Attributes a, String out) {
        ctx.emit(out, new Op.Sigmoid(), Map.of(), ctx.value(n, 0));
    }

    static void hardSigmoid(ImportContext ctx, NodeProto n, Attributes a, String out) {
        ctx.emit(out, new Op.HardSigmoid(a.getFloat("alpha", 0.2f), a.getFloat("beta", 0.5f)), Map.of(), ctx.value(n, 0));
    }

    static void hardSwish(ImportContext ctx, NodeProto n, Attributes a, String out) {
        ctx.emit(out, new Op.HardSwish(), Map.of(), ctx.value(n, 0));
    }

    /** The bounds are attributes before opset 11, optional scalar inputs from it on. */
    static void clip(ImportContext ctx, NodeProto n, Attributes a, String out) {
        float min, max;
        if (ctx.opset < 11) {
            min = a.getFloat("min", -Float.MAX_VALUE);
            max = a.getFloat("max", Float.MAX_VALUE);
        } else {
            min = ctx.optionalScalar(n, 1, "min", Float.NEGATIVE_INFINITY);
            max = ctx.optionalScalar(n, 2, "max", Float.POSITIVE_INFINITY);
        }
        ctx.emit(out, new Op.Clip(min, max), Map.of(), ctx.value(n, 0));
    }

    static void softmax(ImportContext ctx, NodeProto n, Attributes a, String out) {
        String x = ctx.value(n, 0);
        Shape s = ctx.shape(x);
        long axis = ctx.normalizeAxis(n, a.getInt("axis", ctx.opset >= 13 ? -1 : 1), s.rank());
        if (ctx.opset >= 13) {
            if (axis != 1) throw ctx.fail(n, "takes softmax over axis " + axis + " of a rank-" + s.rank() + " tensor; Silhouette's Softmax is over axis 1");
            ctx.emit(out, new Op.Softmax(), Map.of(), x);
        } else {
            // Before opset 13 Softmax flattens to 2-D at the axis: over everything from axis 1 on.
            if (axis != 1) throw ctx.fail(n, "takes softmax over axes " + axis + ".. (opset " + ctx.opset + "); Silhouette supports axis 1");
            if (s.rank() == 2) {
                ctx.emit(out, new Op.Softmax(), Map.of(), x);
            } else {
                String flat = ctx.emit(ctx.fresh(out + "/flatten"), new Op.Flatten(), Map.of(), x);
                String soft = ctx.emit(ctx.fresh(out + "/softmax"), new Op.Softmax(), Map.of(), flat);
                int[] d = s.dims();
                ctx.emit(out, new Op.Reshape(Shape.of(Arrays.copyOfRange(d, 1, d.length))), Map.of(), soft);
            }
        }
    }
}
