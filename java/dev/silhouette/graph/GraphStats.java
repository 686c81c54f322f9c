package dev.silhouette.graph;

import dev.silhouette.tensor.Shape;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Per-node output shape, learned parameter count and multiply-accumulates, counted as the published
 * ResNet figures are: convolutions and fully connected layers only.
 */
public record GraphStats(List<Row> rows, long parameters, long macs) {

    public record Row(String name, String op, String attributes, List<Integer> output, long parameters, long macs) {}

    public static GraphStats of(Graph graph, int batch) {
        Map<String, Shape> shapes = graph.inferShapes(batch);
        List<Row> rows = new ArrayList<>();
        long totalParams = 0, totalMacs = 0;
        for (Node n : graph.nodes()) {
            long params = 0;
            for (Op.Parameter p : n.op().parameters()) {
                if (!p.isBuffer()) params += Shape.of(p.dims()).size();
            }
            Shape out = shapes.get(n.name());
            long macs = switch (n.op()) {
                case Op.Conv2d c -> (long) out.size() * c.taps();
                case Op.LowBitConv2d c -> (long) out.size() * c.conv().taps();
                case Op.Linear l -> (long) out.size() * l.inFeatures();
                default -> 0L;
            };
            rows.add(new Row(n.name(), Graph.opName(n.op()), attributes(n.op()), java.util.Arrays.stream(out.dims()).boxed().toList(), params, macs));
            totalParams += params;
            totalMacs += macs;
        }
        return new GraphStats(rows, totalParams, totalMacs);
    }

    private static String attributes(Op op) {
        return switch (op) {
            case Op.Conv2d c -> c.inChannels() + "->" + c.outChannels() + " " + c.window() + (c.groups() > 1 ? " g" + c.groups() : "") + (c.bias() ? " +bias" : "");
            case Op.BatchNorm b -> b.channels() + " eps=" + b.eps();
            case Op.Clip c -> "[" + c.min() + ", " + c.max() + "]";
            case Op.MaxPool p -> p.window().toString();
            case Op.AvgPool p -> p.window() + (p.countIncludePad() ? " incl-pad" : "");
            case Op.Linear l -> l.inFeatures() + "->" + l.outFeatures() + (l.bias() ? " +bias" : "");
            case Op.Interpolate i -> i.mode().name().toLowerCase() + " " + i.outH() + "x" + i.outW();
            case Op.Concat c -> "axis " + c.axis();
            case Op.Elementwise e -> e.arithmetic().name().toLowerCase();
            case Op.ElementwiseConstant e -> e.arithmetic().name().toLowerCase() + " " + e.constantShape();
            case Op.HardSigmoid h -> "alpha=" + h.alpha() + " beta=" + h.beta();
            case Op.Reshape r -> "N x " + r.sampleShape();
            case Op.Pad p -> p.top() + "/" + p.bottom() + "/" + p.left() + "/" + p.right() + " value " + p.value();
            case Op.HardSwish h -> "";
            case Op.Relu r -> "";
            case Op.Add a -> "";
            case Op.GlobalAvgPool g -> "";
            case Op.Flatten f -> "";
            case Op.Sigmoid s -> "";
            case Op.Softmax s -> "";
            case Op.PactQuantize q -> q.bits() + " bits, alpha " + q.alpha();
            case Op.LowBitConv2d c -> attributes(c.conv()) + " " + c.codes() + " weights " + java.util.Arrays.toString(c.weights().bits());
            case Op.RegionMap m -> m.policy() + " " + m.height() + "x" + m.width();
            case Op.AffineQuantize q -> q.bits().size() == 1 ? q.bits().getFirst() + " bits over [" + q.lo().getFirst() + ", " + q.hi().getFirst() + "]"
                    : q.bits().size() + " channels, widths " + q.bits();
            case Op.RegionQuantize q -> q.policy() + " " + q.resize().name().toLowerCase() + " " + q.order().name().toLowerCase()
                    + (q.onlyRegion() >= 0 ? " region " + q.onlyRegion() : "");
            case Op.DrqQuantize q -> q.lowBits() + "/" + q.highBits() + " bits, " + q.block() + "x" + q.block() + " blocks >= " + q.threshold()
                    + (q.onlyRegion() >= 0 ? " region " + q.onlyRegion() : "");
            case Op.NoiseSilhouette q -> "seed " + q.seed();
            case Op.LogitBlend q -> "";
            case Op.ChannelSqueeze q -> q.mode().name().toLowerCase() + (q.mode().name().startsWith("TOP_K") ? " k=" + q.k() : "");
        };
    }
}
