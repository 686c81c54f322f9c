package dev.silhouette.onnx;

import dev.silhouette.graph.Op;
import dev.silhouette.onnx.proto.Onnx.NodeProto;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/** Ops that rearrange dims: folded on constants (shape tensors), IR Reshape/Flatten/Concat on computed values. */
final class ReshapeConverters {
    private ReshapeConverters() {}

    static void reshape(ImportContext ctx, NodeProto n, Attributes a, String out) {
        long[] target = ctx.constant(n, 1, "shape").longs("shape");
        boolean allowZero = a.getInt("allowzero", 0) != 0;
        reshapeInput(ctx, n, out, "data", dims -> Folding.reshapeTarget(dims, target, allowZero));
    }

    static void unsqueeze(ImportContext ctx, NodeProto n, Attributes a, String out) {
        long[] axes = ctx.axes(n, a, 13);
        if (axes == null) throw ctx.fail(n, "gives no axes");
        reshapeInput(ctx, n, out, "input", dims -> Folding.unsqueeze(dims, axes));
    }

    static void squeeze(ImportContext ctx, NodeProto n, Attributes a, String out) {
        long[] axes = ctx.axes(n, a, 13);
        reshapeInput(ctx, n, out, "input", dims -> Folding.squeeze(dims, axes));
    }

    /** Input 0 given the dims newDims makes of its own: a folded constant, or an IR Reshape of a computed value. */
    private static void reshapeInput(ImportContext ctx, NodeProto n, String out, String role, UnaryOperator<long[]> newDims) {
        if (ctx.isConstant(n, 0)) {
            Constant c = ctx.constant(n, 0, role);
            ctx.putConstant(out, c.withDims(newDims.apply(c.dims())));
        } else {
            String x = ctx.value(n, 0);
            ctx.emitReshape(n, out, x, newDims.apply(ctx.dims(x)));
        }
    }

    static void flatten(ImportContext ctx, NodeProto n, Attributes a, String out) {
        long axis = a.getInt("axis", 1);
        if (ctx.isConstant(n, 0)) {
            Constant c = ctx.constant(n, 0, "input");
            int ax = flattenAxis(ctx, n, axis, c.rank());
            ctx.putConstant(out, c.withDims(new long[] {Folding.product(c.dims(), 0, ax), Folding.product(c.dims(), ax, c.rank())}));
        } else {
            String x = ctx.value(n, 0);
            long[] dims = ctx.dims(x);
            int ax = flattenAxis(ctx, n, axis, dims.length);
            // Flatten is always 2-D: any axis but 1 merges the batch axis with others or makes it a feature.
            if (ax != 1) throw ctx.fail(n, "flattens at axis " + axis + " giving [" + Folding.product(dims, 0, ax) + ", " + Folding.product(dims, ax, dims.length)
                    + "], which does not keep the batch axis; Silhouette supports axis 1");
            ctx.emit(out, new Op.Flatten(), Map.of(), x);
        }
    }

    /** Flatten's axis is in [-rank, rank]: the split point between the two output dims. */
    private static int flattenAxis(ImportContext ctx, NodeProto n, long axis, int rank) {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a > rank) throw ctx.fail(n, "has axis " + axis + " outside [-" + rank + ", " + rank + "]");
        return (int) a;
    }

    static void concat(ImportContext ctx, NodeProto n, Attributes a, String out) {
        long axis = a.getInt("axis", Long.MIN_VALUE);
        if (axis == Long.MIN_VALUE) throw ctx.fail(n, "has no axis attribute");
        if (n.getInputCount() == 0) throw ctx.fail(n, "has no inputs to concatenate");
        boolean allConstant = true, anyConstant = false;
        for (int i = 0; i < n.getInputCount(); i++) {
            allConstant &= ctx.isConstant(n, i);
            anyConstant |= ctx.isConstant(n, i);
        }
        if (allConstant) {
            List<Constant> parts = new ArrayList<>();
            for (int i = 0; i < n.getInputCount(); i++) parts.add(ctx.constant(n, i, "input " + i));
            if (parts.getFirst().rank() == 0) throw ctx.fail(n, "concatenates scalars; Concat's inputs have rank 1 or more");
            ctx.putConstant(out, Folding.concat(parts, (int) ctx.normalizeAxis(n, axis, parts.getFirst().rank())));
        } else {
            if (anyConstant) throw ctx.fail(n, "concatenates computed tensors with constants; only all-constant or all-computed inputs are supported");
            String[] xs = new String[n.getInputCount()];
            for (int i = 0; i < xs.length; i++) xs[i] = ctx.value(n, i);
            int ax = (int) ctx.normalizeAxis(n, axis, ctx.shape(xs[0]).rank());
            if (ax == 0) throw ctx.fail(n, "concatenates along the batch axis 0");
            ctx.emit(out, new Op.Concat(ax), Map.of(), xs);
        }
    }
}
