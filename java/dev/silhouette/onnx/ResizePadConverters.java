package dev.silhouette.onnx;

import dev.silhouette.graph.Op;
import dev.silhouette.io.Limit;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.tensor.Shape;

import java.util.Arrays;
import java.util.Map;

/** Resizing (Resize, the older Upsample) and constant padding of H and W of an NCHW value. */
final class ResizePadConverters {
    private ResizePadConverters() {}

    /** Input and output H and W, and the scale ONNX uses for each of them in its coordinate rules. */
    private record Resizing(int[] in, int[] out, double[] scale) {}

    static void resize(ImportContext ctx, NodeProto n, Attributes a, String out) {
        String x = ctx.value(n, 0);
        ctx.requireRank(n, x, 4);
        Shape s = ctx.shape(x);
        boolean upsample = n.getOpType().equals("Upsample");
        String mode = a.getString("mode", "nearest");
        // Upsample, and Resize before opset 11, have no coordinate modes: they map coordinates asymmetrically and floor.
        String coordinates = upsample || ctx.opset < 11 ? "asymmetric" : a.getString("coordinate_transformation_mode", "half_pixel");
        String nearestMode = upsample || ctx.opset < 11 ? "floor" : a.getString("nearest_mode", "round_prefer_floor");
        if (a.has("axes")) {
            long[] axes = a.getInts("axes");
            if (!Arrays.equals(axes, new long[] {2, 3}) && !Arrays.equals(axes, new long[] {-2, -1})) throw ctx.fail(n, "resizes axes " + Arrays.toString(axes) + "; Silhouette resizes H and W");
        }
        if (!a.getString("keep_aspect_ratio_policy", "stretch").equals("stretch")) {
            throw ctx.fail(n, "uses keep_aspect_ratio_policy '" + a.getString("keep_aspect_ratio_policy", "") + "'; only 'stretch' is supported");
        }
        float[] scales = null;
        long[] sizes = null;
        if (upsample && ctx.opset < 9) {
            scales = a.getFloats("scales");
            if (scales == null) throw ctx.fail(n, "has no 'scales' attribute (Upsample before opset 9 takes its scales as one)");
        } else if (upsample || ctx.opset < 11) {
            scales = ctx.constant(n, 1, "scales").asFloats().floats();
        } else {
            if (ctx.hasInput(n, 2) && ctx.constant(n, 2, "scales").size() > 0) scales = ctx.constant(n, 2, "scales").asFloats().floats();
            else if (ctx.hasInput(n, 3)) sizes = ctx.constant(n, 3, "sizes").longs("sizes");
            else throw ctx.fail(n, "gives neither scales nor sizes");
        }
        Resizing r = scales != null ? byScales(ctx, n, s, scales) : bySizes(ctx, n, s, sizes);
        if (r.out()[0] < 1 || r.out()[1] < 1) throw ctx.fail(n, "resizes " + s + " to nothing");
        Op.Interpolate.Mode m = switch (mode) {
            case "nearest" -> {
                for (int i = 0; i < 2; i++) checkNearest(ctx, n, coordinates, nearestMode, r.in()[i], r.out()[i], r.scale()[i]);
                yield Op.Interpolate.Mode.NEAREST;
            }
            case "linear", "bilinear" -> {
                checkBilinear(ctx, n, a, coordinates, r);
                yield Op.Interpolate.Mode.BILINEAR;
            }
            default -> throw ctx.fail(n, "uses resize mode '" + mode + "'; Silhouette supports nearest and linear");
        };
        ctx.emit(out, new Op.Interpolate(m, r.out()[0], r.out()[1]), Map.of(), x);
    }

    private static Resizing byScales(ImportContext ctx, NodeProto n, Shape s, float[] scales) {
        int[] in = {s.h(), s.w()}, outSize = new int[2];
        double[] scale = new double[2];
        if (scales.length == 2) scales = new float[] {1, 1, scales[0], scales[1]};
        if (scales.length != 4 || scales[0] != 1 || scales[1] != 1) throw ctx.fail(n, "scales " + Arrays.toString(scales) + " must be [1, 1, sh, sw]: Silhouette resizes H and W only");
        for (int i = 0; i < 2; i++) {
            if (!(scales[i + 2] > 0) || scales[i + 2] > 65_536) throw ctx.fail(n, "has scale " + scales[i + 2] + " (must be positive and at most 65536)");
            double side = Math.floor(in[i] * (double) scales[i + 2]);
            if (side > Limit.IMAGE_SIDE.value()) throw ctx.fail(n, Limit.IMAGE_SIDE.refusal("scales " + Arrays.toString(scales) + " resize " + s + " to a side of", (long) side));
            outSize[i] = (int) side;
            scale[i] = scales[i + 2];
        }
        return new Resizing(in, outSize, scale);
    }

    private static Resizing bySizes(ImportContext ctx, NodeProto n, Shape s, long[] full) {
        int[] in = {s.h(), s.w()}, outSize = new int[2];
        double[] scale = new double[2];
        if (full.length == 2) full = new long[] {s.n(), s.c(), full[0], full[1]};
        if (full.length != 4 || full[0] != s.n() || full[1] != s.c()) throw ctx.fail(n, "sizes " + Arrays.toString(full) + " must keep N and C of input " + s);
        for (int i = 0; i < 2; i++) {
            if (full[i + 2] < 1 || full[i + 2] > Limit.IMAGE_SIDE.value()) {
                throw ctx.fail(n, "has output size " + full[i + 2] + " (must be 1 to " + Limit.IMAGE_SIDE.value() + ", Limit." + Limit.IMAGE_SIDE.name() + ")");
            }
            outSize[i] = (int) full[i + 2];
            scale[i] = (double) outSize[i] / in[i];
        }
        return new Resizing(in, outSize, scale);
    }

    /**
     * Silhouette's nearest takes source floor(dst * in / out). ONNX's rule depends on the coordinate
     * mode, the rounding and the scale; rather than enumerate equivalences, every index is compared.
     */
    private static void checkNearest(ImportContext ctx, NodeProto n, String coordinates, String rounding, int in, int out, double scale) {
        for (int dst = 0; dst < out; dst++) {
            double original = switch (coordinates) {
                case "half_pixel" -> (dst + 0.5) / scale - 0.5;
                case "pytorch_half_pixel" -> out > 1 ? (dst + 0.5) / scale - 0.5 : 0;
                case "asymmetric" -> dst / scale;
                case "align_corners" -> out == 1 ? 0 : dst * (in - 1.0) / (out - 1.0);
                case "tf_half_pixel_for_nn" -> (dst + 0.5) / scale;
                default -> throw ctx.fail(n, "uses coordinate_transformation_mode '" + coordinates + "', which Silhouette does not implement");
            };
            long onnx = switch (rounding) {
                case "round_prefer_floor" -> original == Math.floor(original) + 0.5 ? (long) Math.floor(original) : Math.round(original);
                case "round_prefer_ceil" -> original == Math.floor(original) + 0.5 ? (long) Math.ceil(original) : Math.round(original);
                case "floor" -> (long) Math.floor(original);
                case "ceil" -> (long) Math.ceil(original);
                default -> throw ctx.fail(n, "uses nearest_mode '" + rounding + "', which Silhouette does not implement");
            };
            onnx = Math.max(0, Math.min(in - 1, onnx));
            long ours = Math.min((long) Math.floor(dst * ((double) in / out)), in - 1);
            if (onnx != ours) {
                throw ctx.fail(n, "picks source pixel " + onnx + " for output " + dst + " (" + coordinates + ", " + rounding + ", " + in + " -> " + out
                        + "), where Silhouette's nearest (floor of dst * in / out) picks " + ours);
            }
        }
    }

    /** Silhouette's bilinear is half_pixel at exactly output/input scale, without antialiasing. */
    private static void checkBilinear(ImportContext ctx, NodeProto n, Attributes a, String coordinates, Resizing r) {
        int[] in = r.in(), outSize = r.out();
        boolean halfPixel = coordinates.equals("half_pixel") || coordinates.equals("pytorch_half_pixel") && outSize[0] > 1 && outSize[1] > 1;
        if (!halfPixel) throw ctx.fail(n, "uses linear resizing with coordinate_transformation_mode '" + coordinates + "'; Silhouette's bilinear is half_pixel (PyTorch align_corners=False)");
        for (int i = 0; i < 2; i++) {
            if (Math.abs(r.scale()[i] * in[i] - outSize[i]) > 1e-6 * outSize[i]) {
                throw ctx.fail(n, "scales by " + r.scale()[i] + ", which is not output/input size (" + outSize[i] + "/" + in[i] + "); give sizes, or scales with a whole output size");
            }
            if (outSize[i] < in[i] && a.getInt("antialias", 0) != 0) throw ctx.fail(n, "downscales with antialias=1, which Silhouette does not implement");
        }
    }

    /** Constant-mode padding of H and W of an NCHW value (F.pad on images). */
    static void pad(ImportContext ctx, NodeProto n, Attributes a, String out) {
        String x = ctx.value(n, 0);
        ctx.requireRank(n, x, 4);
        String mode = a.getString("mode", "constant");
        if (!mode.equals("constant")) throw ctx.fail(n, "pads in mode '" + mode + "'; Silhouette pads with a constant");
        long[] pads;
        float fill;
        if (ctx.opset < 11) {
            pads = a.getInts("pads");
            fill = a.getFloat("value", 0f);
        } else {
            pads = ctx.constant(n, 1, "pads").longs("pads");
            fill = ctx.optionalScalar(n, 2, "constant_value", 0f);
            long[] axes = ctx.optionalLongs(n, 3, "axes");
            if (axes != null) pads = padsOfAllAxes(ctx, n, pads, axes);
        }
        if (pads == null || pads.length != 8) throw ctx.fail(n, "needs 8 pads for a rank-4 input, has " + Arrays.toString(pads));
        if (pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0) throw ctx.fail(n, "pads the batch or channel axis " + Arrays.toString(pads) + "; Silhouette pads H and W");
        for (long p : pads) if (p < 0 || p > 65_536) throw ctx.fail(n, "has pad " + p + " (Silhouette pads by 0 to 65536; negative pads crop)");
        ctx.emit(out, new Op.Pad((int) pads[2], (int) pads[6], (int) pads[3], (int) pads[7], fill), Map.of(), x);
    }

    /** Pads given for some axes (opset 18) spread over all four: begins then ends, the others 0. */
    private static long[] padsOfAllAxes(ImportContext ctx, NodeProto n, long[] pads, long[] axes) {
        if (pads.length != 2 * axes.length) {
            throw ctx.fail(n, "gives " + pads.length + " pads for axes " + Arrays.toString(axes) + "; it needs two per axis (" + 2 * axes.length + ")");
        }
        long[] full = new long[8];
        boolean[] seen = new boolean[4];
        for (int k = 0; k < axes.length; k++) {
            int ax = (int) ctx.normalizeAxis(n, axes[k], 4);
            if (seen[ax]) throw ctx.fail(n, "names axis " + ax + " twice in axes " + Arrays.toString(axes));
            seen[ax] = true;
            full[ax] = pads[k];
            full[ax + 4] = pads[k + axes.length];
        }
        return full;
    }
}
