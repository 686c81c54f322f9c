package dev.silhouette.onnx;

import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/** 2-D convolution, BatchNorm and pooling on NCHW values, with ONNX's padding rules mapped to Silhouette's windows. */
final class ConvPoolConverters {
    private ConvPoolConverters() {}

    static void conv(ImportContext ctx, NodeProto n, Attributes a, String out) {
        String x = ctx.value(n, 0);
        Constant w = ctx.constant(n, 1, "weight W (Silhouette needs convolution weights as initializers)");
        Shape s = ctx.shape(x);
        if (w.rank() != 4 || s.rank() != 4) {
            throw ctx.fail(n, "is a " + (w.rank() - 2) + "-D convolution of input " + s + "; Silhouette runs 2-D convolutions (NCHW, weight rank 4)");
        }
        Tensor weight = w.toTensor(ImportContext.describe(n) + " weight");
        int groups = Math.toIntExact(a.getInt("group", 1));
        int outChannels = weight.shape().dim(0), inPerGroup = weight.shape().dim(1);
        long[] kernel = a.getInts("kernel_shape");
        if (kernel != null && (kernel.length != 2 || kernel[0] != weight.shape().dim(2) || kernel[1] != weight.shape().dim(3))) {
            throw ctx.fail(n, "declares kernel_shape " + Arrays.toString(kernel) + " but its weight is " + weight.shape());
        }
        if ((long) inPerGroup * groups != s.c()) {
            throw ctx.fail(n, "has weight " + weight.shape() + " with group " + groups + ", which needs " + (long) inPerGroup * groups
                    + " input channels; input " + n.getInput(0) + " has shape " + s);
        }
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("weight", weight);
        boolean bias = ctx.hasInput(n, 2);
        if (bias) params.put("bias", ctx.constant(n, 2, "bias B").toTensor(ImportContext.describe(n) + " bias"));
        Spatial sp = spatial(ctx, n, a, s, weight.shape().dim(2), weight.shape().dim(3), false);
        x = !sp.asymmetric() ? x : ctx.emit(ctx.fresh(out + "/pad"), sp.padNode(0f), Map.of(), x);
        ctx.emit(out, new Op.Conv2d(s.c(), outChannels, sp.window(), groups, bias), params, x);
    }

    static void batchNorm(ImportContext ctx, NodeProto n, Attributes a, String out) {
        if (a.getInt("training_mode", 0) != 0) throw ctx.fail(n, "runs in training mode; Silhouette imports inference graphs");
        for (int i = 1; i < n.getOutputCount(); i++) {
            ctx.unavailable.put(n.getOutput(i), "it is a training statistic of " + ImportContext.describe(n) + ", which inference does not compute");
        }
        String x = ctx.value(n, 0);
        Shape s = ctx.shape(x);
        if (s.rank() < 2) throw ctx.fail(n, "normalizes axis 1 of input " + s + ", which has none");
        int c = s.dim(1);
        Map<String, Tensor> params = new LinkedHashMap<>();
        String[] onnxRoles = {"scale", "B", "input_mean", "input_var"}, suffixes = {"weight", "bias", "running_mean", "running_var"};
        for (int i = 0; i < 4; i++) {
            Constant k = ctx.constant(n, i + 1, onnxRoles[i]);
            if (k.size() != c) throw ctx.fail(n, onnxRoles[i] + " has " + k.size() + " values for " + c + " channels of input " + s);
            params.put(suffixes[i], k.withDims(new long[] {c}).toTensor(ImportContext.describe(n) + " " + onnxRoles[i]));
        }
        ctx.emit(out, new Op.BatchNorm(c, a.getFloat("epsilon", 1e-5f)), params, x);
    }

    static void maxPool(ImportContext ctx, NodeProto n, Attributes a, String out) {
        if (n.getOutputCount() > 1) {
            ctx.unavailable.put(n.getOutput(1), "it holds the Indices of MaxPool " + ImportContext.describe(n) + ", which Silhouette does not compute");
        }
        String x = ctx.value(n, 0);
        Spatial sp = poolWindow(ctx, n, a, x);
        // Padding never wins a max, so padding with -inf first is the same pooling.
        x = !sp.asymmetric() ? x : ctx.emit(ctx.fresh(out + "/pad"), sp.padNode(Float.NEGATIVE_INFINITY), Map.of(), x);
        ctx.emit(out, new Op.MaxPool(sp.window()), Map.of(), x);
    }

    static void averagePool(ImportContext ctx, NodeProto n, Attributes a, String out) {
        String x = ctx.value(n, 0);
        Spatial sp = poolWindow(ctx, n, a, x);
        boolean includePad = a.getInt("count_include_pad", 0) != 0;
        if (sp.ceilExtra()) throw ctx.fail(n, "uses ceil_mode where it adds a partial window; Silhouette's AvgPool has no partial windows");
        if (sp.asymmetric() && !includePad) {
            throw ctx.fail(n, "pads asymmetrically " + Arrays.toString(sp.pads()) + " with count_include_pad=0, which Silhouette's AvgPool cannot express");
        }
        x = !sp.asymmetric() ? x : ctx.emit(ctx.fresh(out + "/pad"), sp.padNode(0f), Map.of(), x);
        ctx.emit(out, new Op.AvgPool(sp.window(), includePad), Map.of(), x);
    }

    private static Spatial poolWindow(ImportContext ctx, NodeProto n, Attributes a, String x) {
        ctx.requireRank(n, x, 4);
        long[] kernel = a.getInts("kernel_shape");
        if (kernel == null || kernel.length != 2) throw ctx.fail(n, "needs a 2-D kernel_shape, has " + Arrays.toString(kernel));
        return spatial(ctx, n, a, ctx.shape(x), Math.toIntExact(kernel[0]), Math.toIntExact(kernel[1]), true);
    }

    static void globalAveragePool(ImportContext ctx, NodeProto n, Attributes a, String out) {
        String x = ctx.value(n, 0);
        ctx.requireRank(n, x, 4);
        ctx.emit(out, new Op.GlobalAvgPool(), Map.of(), x);
    }

    /** The mean over H and W of an NCHW value is a global average pool (flattened without keepdims). */
    static void reduceMean(ImportContext ctx, NodeProto n, Attributes a, String out) {
        String x = ctx.value(n, 0);
        long[] axes = ctx.axes(n, a, 18);
        int rank = ctx.shape(x).rank();
        long[] sorted = axes == null ? null : Arrays.stream(axes).map(v -> v < 0 ? v + rank : v).sorted().toArray();
        if (rank != 4 || sorted == null || !Arrays.equals(sorted, new long[] {2, 3})) {
            throw ctx.fail(n, "averages over axes " + Arrays.toString(axes) + " of " + ctx.shape(x) + "; Silhouette maps the mean over H and W of an NCHW tensor");
        }
        if (a.getInt("keepdims", 1) != 0) {
            ctx.emit(out, new Op.GlobalAvgPool(), Map.of(), x);
        } else {
            ctx.emit(out, new Op.Flatten(), Map.of(), ctx.emit(ctx.fresh(out + "/mean"), new Op.GlobalAvgPool(), Map.of(), x));
        }
    }

    /** A window with symmetric padding, plus an explicit Pad node when ONNX's padding is asymmetric. */
    record Spatial(Window window, int[] pads, boolean asymmetric, boolean ceilExtra) {
        Op.Pad padNode(float value) {
            return new Op.Pad(pads[0], pads[2], pads[1], pads[3], value);
        }
    }

    static Spatial spatial(ImportContext ctx, NodeProto n, Attributes a, Shape s, int kh, int kw, boolean pooling) {
        long[] strides = orDefault(a.getInts("strides"), 1), dilations = orDefault(a.getInts("dilations"), 1);
        if (strides.length != 2 || dilations.length != 2) {
            throw ctx.fail(n, "needs 2 strides and dilations, has " + Arrays.toString(strides) + " and " + Arrays.toString(dilations));
        }
        int sh = Math.toIntExact(strides[0]), sw = Math.toIntExact(strides[1]), dh = Math.toIntExact(dilations[0]), dw = Math.toIntExact(dilations[1]);
        String autoPad = a.getString("auto_pad", "NOTSET");
        int[] pads = new int[4];  // top, left, bottom, right (ONNX's begin..., end...)
        int[] in = {s.h(), s.w()}, k = {kh, kw}, st = {sh, sw}, dl = {dh, dw};
        switch (autoPad) {
            case "NOTSET" -> {
                long[] p = a.getInts("pads");
                if (p != null) {
                    if (p.length != 4) throw ctx.fail(n, "needs 4 pads for 2-D, has " + Arrays.toString(p));
                    for (int i = 0; i < 4; i++) {
                        if (p[i] < 0 || p[i] > 65_536) throw ctx.fail(n, "has pad " + p[i] + " (must be 0 to 65536)");
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
            default -> throw ctx.fail(n, "has unknown auto_pad '" + autoPad + "'");
        }
        boolean ceilExtra = pooling && a.getInt("ceil_mode", 0) != 0 && growForCeilMode(pads, in, k, st, dl);
        boolean symmetric = pads[0] == pads[2] && pads[1] == pads[3] && (!pooling || (pads[0] <= kh / 2 && pads[1] <= kw / 2));
        Window w = symmetric ? new Window(kh, kw, sh, sw, pads[0], pads[1], dh, dw) : new Window(kh, kw, sh, sw, 0, 0, dh, dw);
        return new Spatial(w, pads, !symmetric, ceilExtra);
    }

    /** ceil_mode's extra output adds end padding; returns whether it added a partial window. */
    private static boolean growForCeilMode(int[] pads, int[] in, int[] k, int[] st, int[] dl) {
        boolean ceilExtra = false;
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
        return ceilExtra;
    }

    private static long[] orDefault(long[] v, long fallback) {
        return v != null ? v : new long[] {fallback, fallback};
    }
}
