package dev.silhouette.pipeline;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlan.Activations;
import dev.silhouette.pipeline.QuantPlan.LayerPlan;
import dev.silhouette.pipeline.QuantPlan.SilhouetteSource;
import dev.silhouette.pipeline.QuantPlan.Weights;
import dev.silhouette.quant.RegionPolicy;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Plans of the region-quantization study, chosen on calibration data: the main-path convolutions before
 * the silhouette ({@link RegionQuantization#layers}) at a high uniform width, those after it under the
 * scheme studied (uniform, region, DRQ), the classifier in float. Every activation is PACT-clipped at
 * the calibrated (or fine-tuned) level of its width; weights are symmetric per output channel at max |w|.
 */
public final class Plans {
    /** Pre-branch convolutions (stem and the blocks the silhouette reads) run at this width by default. */
    public static final int PRE_BRANCH_BITS = 8;

    private Plans() {}

    /** The receiving layers' scheme. */
    public sealed interface Receiving {
        /** Activations at {@code bits}, weights at {@code weightBits}. */
        record Uniform(int bits, int weightBits) implements Receiving {
            /** Weights at the activation width, at least the 2 bits a symmetric grid needs. */
            public Uniform(int bits) {
                this(bits, Math.max(2, bits));
            }
        }

        /** Region policy; {@code weightBits} for shared weights (32: float), ignored with per-region weights. */
        record Region(RegionPolicy policy, boolean perRegionWeights, int weightBits, Op.Interpolate.Mode resize, Op.RegionQuantize.MaskOrder order)
                implements Receiving {}

        /** DRQ at two widths with a threshold per receiving input ({@link #drqThresholds}). */
        record Drq(int lowBits, int highBits, int block, Map<String, Float> thresholds) implements Receiving {
            public Drq {
                thresholds = Map.copyOf(thresholds);
            }
        }
    }

    /** The PACT clip level of the activations a layer reads ({@code value}) at a width: {@link Calibration#alpha}, or fixed ones in tests. */
    public interface ClipLevels {
        float alpha(String value, int bits);
    }

    /** Shared weights take the policy's highest width, at least the 2 bits a symmetric grid needs. */
    public static int sharedWeightBits(RegionPolicy p) {
        return Math.max(2, p.bits(p.regions().size() - 1));
    }

    /**
     * The plan for {@code graph} (the model as the plan's fingerprint names it): receiving layers under
     * {@code receiving}, pre-branch ones at {@code preBranchBits} (32: float), silhouette from {@code silhouette}.
     */
    public static QuantPlan of(Graph graph, String model, String label, SilhouetteSource silhouette, Receiving receiving, int preBranchBits,
                               ClipLevels calibration) {
        Graph withSilhouette = PlanRewrite.withSilhouette(graph, silhouette);
        // The graph's own split: a training-free silhouette of a later map leaves fewer receiving layers.
        RegionQuantization.Layers layers = RegionQuantization.layers(withSilhouette);
        List<LayerPlan> plans = new ArrayList<>();
        if (preBranchBits != 32) {
            for (Node n : layers.preBranch()) plans.add(uniform(n, preBranchBits, Math.max(2, preBranchBits), calibration));
        }
        for (Node n : layers.receiving()) {
            String in = n.inputs().getFirst();
            int out = ((Op.Conv2d) n.op()).outChannels();
            plans.add(switch (receiving) {
                case Receiving.Uniform u -> uniform(n, u.bits(), u.weightBits(), calibration);
                case Receiving.Region r -> {
                    List<Float> alphas = new ArrayList<>();
                    for (int j = 0; j < r.policy().regions().size(); j++) alphas.add(calibration.alpha(in, r.policy().bits(j)));
                    Weights w = r.perRegionWeights() ? new Weights.PerRegion()
                            : r.weightBits() == 32 ? new Weights.Float() : Weights.Symmetric.uniform(r.weightBits(), out);
                    yield new LayerPlan(n.name(), in, w, new Activations.Region(r.policy(), alphas, r.resize(), r.order(), r.perRegionWeights()));
                }
                case Receiving.Drq d -> {
                    Float threshold = d.thresholds().get(in);
                    if (threshold == null) throw new IllegalArgumentException("DRQ has no calibrated threshold for '" + in + "', the input of " + n.name());
                    yield new LayerPlan(n.name(), in, new Weights.PerRegion(), new Activations.Drq(d.lowBits(), d.highBits(), d.block(), threshold,
                            calibration.alpha(in, d.lowBits()), calibration.alpha(in, d.highBits())));
                }
            });
        }
        return new QuantPlan(model, graph.fingerprint(), label, silhouette, plans);
    }

    private static LayerPlan uniform(Node n, int bits, int weightBits, ClipLevels calibration) {
        String in = n.inputs().getFirst();
        int out = ((Op.Conv2d) n.op()).outChannels();
        return new LayerPlan(n.name(), in, Weights.Symmetric.uniform(weightBits, out), new Activations.Pact(bits, calibration.alpha(in, bits)));
    }

    /** The inputs of the main-path convolutions, in graph order: the values the study calibrates. */
    public static List<String> convolutionInputs(Graph graph) {
        RegionQuantization.Layers layers = RegionQuantization.layers(graph);
        Set<String> values = new LinkedHashSet<>();
        for (Node n : layers.preBranch()) values.add(n.inputs().getFirst());
        for (Node n : layers.receiving()) values.add(n.inputs().getFirst());
        return List.copyOf(values);
    }

    /** The inputs of the receiving convolutions: the values DRQ quantizes. */
    public static Set<String> receivingInputs(Graph graph) {
        Set<String> values = new LinkedHashSet<>();
        for (Node n : RegionQuantization.layers(graph).receiving()) values.add(n.inputs().getFirst());
        return values;
    }

    /**
     * Per DRQ value, the block-mean threshold that makes the sensitive share of calibration blocks closest
     * to the one giving {@code targetBits} on average: share = (target - low) / (high - low). Post-ReLU maps
     * have many tied (zero) means, so the threshold either takes a tie in or leaves it out, whichever lands
     * nearer the share.
     */
    public static Map<String, Float> drqThresholds(Calibration calibration, int high, int low, double targetBits) {
        double share = (targetBits - low) / (high - low);
        Map<String, Float> out = new LinkedHashMap<>();
        for (String v : calibration.blockMeanValues()) {
            float[] sorted = calibration.blockMeans(v);
            int n = sorted.length;
            int k = (int) Math.round(share * n);
            if (k <= 0) {
                out.put(v, Math.nextUp(sorted[n - 1]));
                continue;
            }
            float t = sorted[n - Math.min(k, n)];
            int atOrAbove = n - lowerBound(sorted, t);
            int above = n - lowerBound(sorted, Math.nextUp(t));
            out.put(v, Math.abs(above - share * n) < Math.abs(atOrAbove - share * n) ? Math.nextUp(t) : t);
        }
        return out;
    }

    private static int lowerBound(float[] sorted, float value) {
        int lo = 0, hi = sorted.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (sorted[mid] < value) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}
