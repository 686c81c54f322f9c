package dev.silhouette.pipeline;

import dev.silhouette.backend.Backend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.quant.Entropy;
import dev.silhouette.quant.QuantizedTensor;
import dev.silhouette.quant.Quantizers;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;

/** Running a (rewritten) graph over labelled images: accuracy, and the entropy of the codes its quantizers produce. */
public final class Evaluation {
    private Evaluation() {}

    /**
     * The backend a graph runs on: Silhouette's own quantization ops stay on the CPU specification until their
     * CUDA kernels, checked only under emulation so far, have passed RegionOpsGpuTest on a device (docs/KERNELS.md).
     */
    public static Backend backendFor(Graph graph, Backend preferred, Backend cpu) {
        boolean cpuOnly = graph.nodes().stream().anyMatch(n -> n.op() instanceof Op.PactQuantize || n.op() instanceof Op.AffineQuantize
                || n.op() instanceof Op.RegionQuantize || n.op() instanceof Op.DrqQuantize || n.op() instanceof Op.ChannelSqueeze
                || n.op() instanceof Op.LogitBlend);
        return cpuOnly ? cpu : preferred;
    }

    /** Correct predictions of {@code logits} among labels[from ...]; a label outside the classes is refused by image. */
    public static int countCorrect(Tensor logits, int[] labels, int from) {
        int n = logits.shape().dim(0), classes = logits.shape().dim(1), correct = 0;
        float[] v = logits.data();
        for (int i = 0; i < n; i++) {
            int best = 0;
            for (int c = 1; c < classes; c++) if (v[i * classes + c] > v[i * classes + best]) best = c;
            int label = labels[from + i];
            if (label < 0 || label >= classes) throw new IllegalArgumentException("label " + label + " of image " + (from + i) + " is outside the model's " + classes + " classes");
            if (best == label) correct++;
        }
        return correct;
    }

    /** Accuracy and code entropy of one run. */
    public record Result(int images, int correct, Map<String, Entropy.Report> activationEntropy) {
        public double accuracy() {
            return (double) correct / images;
        }
    }

    /**
     * Runs {@code graph} on {@code backend} over the first {@code count} images in batches; {@code progress}
     * hears the images done after each batch. With {@code entropy}, the codes of every affine and PACT
     * quantizer are counted (recomputed from the value it reads, with its own grid).
     */
    public static Result run(Backend backend, Graph graph, String logits, Tensor images, int[] labels, int count, int batch, boolean entropy,
                             IntConsumer progress) {
        if (batch < 1) throw new IllegalArgumentException("batch " + batch + " must be at least 1");
        String input = graph.inputs().getFirst().name();
        Map<String, Node> quantizers = new LinkedHashMap<>();
        if (entropy) {
            java.util.Set<String> packedGrids = new java.util.HashSet<>();
            for (Node n : graph.nodes()) {
                if (n.op() instanceof Op.AffineQuantize || n.op() instanceof Op.PactQuantize) quantizers.put(n.name(), n);
                // On the packed path the grid sits in the convolution; a value read on one grid by several layers counts once.
                if (n.op() instanceof Op.LowBitConv2d c && c.codes() instanceof Op.LowBitConv2d.ActivationCodes.Grid g
                        && packedGrids.add(n.inputs().getFirst() + " " + g)) quantizers.put(n.name(), n);
            }
        }
        List<String> requested = new ArrayList<>(List.of(logits));
        quantizers.values().forEach(n -> { if (!requested.contains(n.inputs().getFirst())) requested.add(n.inputs().getFirst()); });
        Map<String, long[]> counts = new LinkedHashMap<>();
        int correct = 0;
        for (int from = 0; from < count; from += batch) {
            int to = Math.min(count, from + batch);
            Map<String, Tensor> out = backend.run(graph, Map.of(input, images.slice(from, to)), requested);
            correct += countCorrect(out.get(logits), labels, from);
            for (Node q : quantizers.values()) countCodes(q, out.get(q.inputs().getFirst()), counts);
            progress.accept(to);
        }
        Map<String, Entropy.Report> reports = new LinkedHashMap<>();
        counts.forEach((name, c) -> reports.put(quantizers.get(name).inputs().getFirst(), Entropy.ofCounts(c)));
        return new Result(count, correct, reports);
    }

    private static void countCodes(Node q, Tensor x, Map<String, long[]> counts) {
        switch (q.op()) {
            case Op.PactQuantize p -> add(counts.computeIfAbsent(q.name(), k -> new long[1 << p.bits()]),
                    Quantizers.pact(x, p.bits(), p.alpha()).codes());
            case Op.AffineQuantize a -> {
                int groups = a.bits().size();
                long[] c = counts.computeIfAbsent(q.name(), k -> new long[1 << a.bits().stream().mapToInt(Integer::intValue).max().orElseThrow()]);
                if (groups == 1) {
                    add(c, Quantizers.affine(x, a.bits().getFirst(), new float[] {a.lo().getFirst()}, new float[] {a.hi().getFirst()}).codes());
                    return;
                }
                Shape s = x.shape();
                int plane = s.size() / s.dim(0) / groups;
                for (int p = 0; p < s.size() / plane; p++) {
                    int g = p % groups;
                    Tensor slice = new Tensor(Shape.of(plane), java.util.Arrays.copyOfRange(x.data(), p * plane, (p + 1) * plane));
                    QuantizedTensor qt = Quantizers.affine(slice, a.bits().get(g), new float[] {a.lo().get(g)}, new float[] {a.hi().get(g)});
                    add(c, qt.codes());
                }
            }
            case Op.LowBitConv2d c when c.codes() instanceof Op.LowBitConv2d.ActivationCodes.Grid g -> {
                long[] counts1 = counts.computeIfAbsent(q.name(), k -> new long[1 << g.bits()]);
                int qmax = (1 << g.bits()) - 1;
                for (float v : x.data()) counts1[Quantizers.code(v, g.step(), g.zeroPoint(), 0, qmax)]++;
            }
            default -> throw new IllegalStateException("no codes to count for " + q.op());
        }
    }

    private static void add(long[] counts, int[] codes) {
        for (int c : codes) counts[c]++;
    }
}
