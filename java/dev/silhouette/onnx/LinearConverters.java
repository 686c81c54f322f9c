package dev.silhouette.onnx;

import dev.silhouette.graph.Op;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/** Gemm and MatMul of an N x K value by a constant matrix: an IR Linear layer. */
final class LinearConverters {
    private LinearConverters() {}

    static void gemm(ImportContext ctx, NodeProto n, Attributes a, String out) {
        if (a.getInt("transA", 0) != 0) throw ctx.fail(n, "has transA=1 on a computed input, which would move the batch axis");
        String x = ctx.value(n, 0);
        ctx.requireRank(n, x, 2);
        Constant b = ctx.constant(n, 1, "B (Silhouette needs Gemm weights as initializers)");
        if (b.rank() != 2) throw ctx.fail(n, "has B of dims " + Arrays.toString(b.dims()) + ", not a matrix");
        boolean transB = a.getInt("transB", 0) != 0;
        float alpha = a.getFloat("alpha", 1f), beta = a.getFloat("beta", 1f);
        Tensor weight = weightMatrix(n, b, transB, alpha);
        int k = weight.shape().dim(1), m = weight.shape().dim(0);
        if (ctx.shape(x).dim(1) != k) {
            throw ctx.fail(n, "multiplies input " + ctx.shape(x) + " by B of dims " + Arrays.toString(b.dims()) + (transB ? " (transposed)" : ""));
        }
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("weight", weight);
        boolean bias = ctx.hasInput(n, 2);
        if (bias) {
            Constant c = ctx.constant(n, 2, "C").asFloats();
            boolean rowVector = c.size() == m && (c.rank() == 1 || (c.rank() == 2 && c.dims()[0] == 1));
            if (!rowVector && c.size() != 1) {
                throw ctx.fail(n, "has C of dims " + Arrays.toString(c.dims()) + "; Silhouette adds a bias of " + m + " values (or a scalar) to every row");
            }
            float[] v = new float[m];
            for (int i = 0; i < m; i++) v[i] = beta * c.floats()[c.size() == 1 ? 0 : i];
            params.put("bias", new Tensor(Shape.of(m), v));
        }
        ctx.emit(out, new Op.Linear(k, m, bias), params, x);
    }

    static void matMul(ImportContext ctx, NodeProto n, Attributes a, String out) {
        String x = ctx.value(n, 0);
        Shape s = ctx.shape(x);
        if (s.rank() != 2) throw ctx.fail(n, "multiplies a rank-" + s.rank() + " tensor " + s + "; Silhouette's MatMul takes N x K inputs");
        Constant b = ctx.constant(n, 1, "B (Silhouette's MatMul needs a constant right operand)");
        if (b.rank() != 2) throw ctx.fail(n, "has B of dims " + Arrays.toString(b.dims()) + ", not a matrix");
        Tensor weight = weightMatrix(n, b, false, 1f);
        if (s.dim(1) != weight.shape().dim(1)) throw ctx.fail(n, "multiplies input " + s + " by B of dims " + Arrays.toString(b.dims()));
        ctx.emit(out, new Op.Linear(weight.shape().dim(1), weight.shape().dim(0), false), Map.of("weight", weight), x);
    }

    /** The Linear weight [out, in] = alpha * (transposed ? B : B^T). */
    private static Tensor weightMatrix(NodeProto n, Constant b, boolean transposed, float alpha) {
        Tensor t = b.toTensor(ImportContext.describe(n) + " B");
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
}
