package dev.silhouette.onnx;

import dev.silhouette.graph.Op;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.tensor.Tensor;

import java.util.Arrays;
import java.util.Map;

/** Add, Sub, Mul and Div with broadcasting: folded on two constants, else an IR elementwise op. */
final class ArithmeticConverters {
    private ArithmeticConverters() {}

    static OnnxOpConverter of(Op.Arithmetic kind) {
        return (ctx, n, a, out) -> arithmetic(ctx, n, out, kind);
    }

    private static void arithmetic(ImportContext ctx, NodeProto n, String out, Op.Arithmetic kind) {
        boolean c0 = ctx.isConstant(n, 0), c1 = ctx.isConstant(n, 1);
        if (c0 && c1) {
            ctx.putConstant(out, Folding.arithmetic(ctx.constant(n, 0, "A"), ctx.constant(n, 1, "B"), kind));
        } else if (c0 || c1) {
            withConstant(ctx, n, out, kind, c0);
        } else {
            String x = ctx.value(n, 0), y = ctx.value(n, 1);
            if (kind == Op.Arithmetic.ADD && ctx.shape(x).equals(ctx.shape(y))) ctx.emit(out, new Op.Add(), Map.of(), x, y);
            else ctx.emit(out, new Op.Elementwise(kind), Map.of(), x, y);
        }
    }

    /** A computed value combined with a constant, which becomes the IR op's parameter. */
    private static void withConstant(ImportContext ctx, NodeProto n, String out, Op.Arithmetic kind, boolean constantFirst) {
        String x = ctx.value(n, constantFirst ? 1 : 0);
        Constant c = ctx.constant(n, constantFirst ? 0 : 1, constantFirst ? "A" : "B").asFloats();
        int rank = ctx.shape(x).rank();
        long[] dims = c.dims();
        // A constant of higher rank is accepted when its extra leading axes are 1 (it cannot add axes).
        int extra = dims.length - rank;
        for (int i = 0; i < extra; i++) {
            if (dims[i] != 1) {
                throw ctx.fail(n, "combines " + n.getInput(constantFirst ? 1 : 0) + " " + ctx.shape(x) + " with a constant of dims " + Arrays.toString(dims) + " of higher rank");
            }
        }
        if (extra > 0) c = c.withDims(Arrays.copyOfRange(dims, extra, dims.length));
        Tensor t = c.toTensor(ImportContext.describe(n) + " constant");
        ctx.emit(out, new Op.ElementwiseConstant(kind, t.shape(), constantFirst), Map.of("constant", t), x);
    }
}
