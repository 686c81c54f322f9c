package dev.silhouette.graph;

import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;

import java.util.List;

/** Output shape of every op, with errors that name the node and the mismatch. */
public final class ShapeInference {
    private ShapeInference() {}

    public static Shape infer(Node node, List<Shape> in) {
        Shape x = in.get(0);
        return switch (node.op()) {
            case Op.Conv2d conv -> {
                requireRank(node, x, 4);
                if (x.c() != conv.inChannels()) {
                    throw fail(node, "expects " + conv.inChannels() + " input channels, input " + node.inputs().get(0) + " has shape " + x);
                }
                yield Shape.of(x.n(), conv.outChannels(), positive(node, conv.window().outH(x.h()), x),
                        positive(node, conv.window().outW(x.w()), x));
            }
            case Op.BatchNorm bn -> {
                if (x.rank() < 2 || x.dim(1) != bn.channels()) {
                    throw fail(node, "normalizes " + bn.channels() + " channels, input " + node.inputs().get(0) + " has shape " + x);
                }
                yield x;
            }
            case Op.Relu r -> x;
            case Op.Clip c -> x;
            case Op.Sigmoid s -> x;
            case Op.Softmax s -> {
                if (x.rank() < 2) throw fail(node, "needs a class axis 1, input has shape " + x);
                yield x;
            }
            case Op.Add a -> {
                if (!x.equals(in.get(1))) {
                    throw fail(node, "adds tensors of different shapes: " + node.inputs().get(0) + " " + x
                            + " and " + node.inputs().get(1) + " " + in.get(1));
                }
                yield x;
            }
            case Op.MaxPool p -> pooled(node, x, p.window());
            case Op.AvgPool p -> pooled(node, x, p.window());
            case Op.GlobalAvgPool g -> {
                requireRank(node, x, 4);
                yield Shape.of(x.n(), x.c(), 1, 1);
            }
            case Op.Flatten f -> {
                if (x.rank() < 1) throw fail(node, "cannot flatten a scalar");
                yield Shape.of(x.dim(0), x.sampleSize());
            }
            case Op.Linear l -> {
                requireRank(node, x, 2);
                if (x.dim(1) != l.inFeatures()) {
                    throw fail(node, "expects " + l.inFeatures() + " input features, input " + node.inputs().get(0) + " has shape " + x);
                }
                yield Shape.of(x.dim(0), l.outFeatures());
            }
            case Op.Interpolate i -> {
                requireRank(node, x, 4);
                yield Shape.of(x.n(), x.c(), i.outH(), i.outW());
            }
            case Op.Elementwise e -> {
                if (in.get(1).rank() != x.rank()) {
                    throw fail(node, "combines values of different ranks: " + node.inputs().get(0) + " " + x + " and " + node.inputs().get(1) + " " + in.get(1));
                }
                yield broadcast(node, x, in.get(1));
            }
            case Op.ElementwiseConstant e -> {
                if (e.constantShape().rank() > x.rank()) {
                    throw fail(node, "constant of shape " + e.constantShape() + " has a higher rank than input " + node.inputs().get(0) + " " + x);
                }
                Shape out = broadcast(node, x, e.constantShape());
                if (!out.equals(x)) throw fail(node, "constant of shape " + e.constantShape() + " would enlarge input " + node.inputs().get(0) + " " + x + " to " + out);
                yield x;
            }
            case Op.HardSigmoid h -> x;
            case Op.HardSwish h -> x;
            case Op.Reshape r -> {
                if (x.rank() < 1 || x.sampleSize() != r.sampleShape().size()) {
                    throw fail(node, "cannot reshape input " + node.inputs().get(0) + " " + x + " to N x " + r.sampleShape());
                }
                int[] dims = new int[r.sampleShape().rank() + 1];
                dims[0] = x.dim(0);
                System.arraycopy(r.sampleShape().dims(), 0, dims, 1, dims.length - 1);
                yield Shape.of(dims);
            }
            case Op.Pad p -> {
                requireRank(node, x, 4);
                yield Shape.of(x.n(), x.c(), Math.addExact(x.h(), p.top() + p.bottom()), Math.addExact(x.w(), p.left() + p.right()));
            }
            case Op.Concat c -> {
                int axis = c.axis();
                if (axis < 0 || axis >= x.rank()) throw fail(node, "concatenates along axis " + axis + " of a rank-" + x.rank() + " tensor");
                long total = 0;
                for (int i = 0; i < in.size(); i++) {
                    Shape s = in.get(i);
                    if (s.rank() != x.rank()) throw fail(node, "input " + node.inputs().get(i) + " " + s + " differs in rank from " + x);
                    for (int d = 0; d < s.rank(); d++) {
                        if (d != axis && s.dim(d) != x.dim(d)) {
                            throw fail(node, "input " + node.inputs().get(i) + " " + s + " differs from " + node.inputs().get(0) + " " + x + " in axis " + d);
                        }
                    }
                    total += s.dim(axis);
                }
                yield x.withDim(axis, Math.toIntExact(total));
            }
            case Op.LowBitConv2d low -> {
                Op.Conv2d conv = low.conv();
                requireRank(node, x, 4);
                if (x.c() != conv.inChannels()) {
                    throw fail(node, "expects " + conv.inChannels() + " input channels, input " + node.inputs().get(0) + " has shape " + x);
                }
                if (low.codes() instanceof Op.LowBitConv2d.ActivationCodes.Regions) {
                    Shape map = in.get(1);
                    if (map.rank() != 4 || map.c() != 1 || map.n() != x.n() || map.h() != x.h() || map.w() != x.w()) {
                        throw fail(node, "needs an N x 1 x " + x.h() + " x " + x.w() + " region map, " + node.inputs().get(1) + " has shape " + map);
                    }
                }
                yield Shape.of(x.n(), conv.outChannels(), positive(node, conv.window().outH(x.h()), x), positive(node, conv.window().outW(x.w()), x));
            }
            case Op.RegionMap m -> {
                if (x.rank() != 4 || x.c() != 1) throw fail(node, "needs an N x 1 x h x w silhouette, " + node.inputs().get(0) + " has shape " + x);
                yield Shape.of(x.n(), 1, m.height(), m.width());
            }
            case Op.PactQuantize q -> x;
            case Op.AffineQuantize q -> x;
            case Op.DrqQuantize q -> {
                requireRank(node, x, 4);
                yield x;
            }
            case Op.RegionQuantize q -> {
                requireRank(node, x, 4);
                Shape sil = in.get(1);
                if (sil.rank() != 4 || sil.c() != 1 || sil.n() != x.n()) {
                    throw fail(node, "needs an N x 1 x h x w silhouette for " + x + ", " + node.inputs().get(1) + " has shape " + sil);
                }
                yield x;
            }
            case Op.ChannelSqueeze q -> {
                requireRank(node, x, 4);
                if (q.mode() != Op.ChannelSqueeze.Squeeze.MAX && q.mode() != Op.ChannelSqueeze.Squeeze.MEAN && q.k() > x.c()) {
                    throw fail(node, "takes the top " + q.k() + " channels of " + node.inputs().get(0) + ", which has " + x.c());
                }
                yield Shape.of(x.n(), 1, x.h(), x.w());
            }
            case Op.NoiseSilhouette q -> {
                requireRank(node, x, 4);
                if (in.size() > 2) throw fail(node, "reads a feature map and at most one image to seed its noise, not " + in.size() + " inputs");
                if (in.size() == 2 && in.get(1).dim(0) != x.n()) throw fail(node, "seeds " + x.n() + " images' noise from " + in.get(1));
                yield Shape.of(x.n(), 1, x.h(), x.w());
            }
            case Op.LogitBlend q -> {
                requireRank(node, x, 2);
                if (!in.get(1).equals(x)) {
                    throw fail(node, "blends logits of different shapes: " + node.inputs().get(0) + " " + x + " and " + node.inputs().get(1) + " " + in.get(1));
                }
                yield x;
            }
        };
    }

    /** NumPy broadcasting: shapes align at the last axis; an axis of size 1 takes the other's size. */
    private static Shape broadcast(Node node, Shape a, Shape b) {
        int rank = Math.max(a.rank(), b.rank());
        int[] dims = new int[rank];
        for (int i = 0; i < rank; i++) {
            int da = i < rank - a.rank() ? 1 : a.dim(i - (rank - a.rank()));
            int db = i < rank - b.rank() ? 1 : b.dim(i - (rank - b.rank()));
            if (da != db && da != 1 && db != 1) throw fail(node, "cannot broadcast shapes " + a + " and " + b + " (axis " + i + ")");
            dims[i] = da == 1 ? db : da;
        }
        return Shape.of(dims);
    }

    private static Shape pooled(Node node, Shape x, Window w) {
        requireRank(node, x, 4);
        if (w.padH() > w.kernelH() / 2 || w.padW() > w.kernelW() / 2) {
            throw fail(node, "pads " + w.padH() + "x" + w.padW() + ", more than half the " + w.kernelH() + "x" + w.kernelW() + " window");
        }
        return Shape.of(x.n(), x.c(), positive(node, w.outH(x.h()), x), positive(node, w.outW(x.w()), x));
    }

    private static int positive(Node node, int size, Shape input) {
        if (size < 1) throw fail(node, "window does not fit input " + input + " (output size " + size + ")");
        return size;
    }

    private static void requireRank(Node node, Shape x, int rank) {
        if (x.rank() != rank) {
            throw fail(node, "needs a rank-" + rank + " input, " + node.inputs().get(0) + " has shape " + x);
        }
    }

    private static GraphException fail(Node node, String what) {
        return new GraphException("node '" + node.name() + "' (" + Graph.opName(node.op()) + ") " + what);
    }
}
