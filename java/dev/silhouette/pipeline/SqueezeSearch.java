package dev.silhouette.pipeline;

import dev.silhouette.backend.Backend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Op;
import dev.silhouette.pipeline.QuantPlan.SilhouetteSource;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * The training-free silhouette chosen on calibration images: channel squeezes of one feature map, each
 * tried under the same plan, the most accurate kept (the first of equals).
 */
public final class SqueezeSearch {
    private SqueezeSearch() {}

    /** One squeeze tried, and its accuracy on the calibration images. */
    public record Trial(String featureMap, String squeeze, double calibrationAccuracy, SilhouetteSource.Squeeze source) {}

    /** Channel max, channel mean, and the mean of the top 2, 4 and 8 channels by mean and by std (those below the channel count). */
    public static List<SilhouetteSource.Squeeze> candidates(String featureMap, int channels) {
        List<SilhouetteSource.Squeeze> out = new ArrayList<>();
        out.add(new SilhouetteSource.Squeeze(featureMap, Op.ChannelSqueeze.Squeeze.MAX, 1));
        out.add(new SilhouetteSource.Squeeze(featureMap, Op.ChannelSqueeze.Squeeze.MEAN, 1));
        for (int k : new int[] {2, 4, 8}) {
            if (k >= channels) continue;
            out.add(new SilhouetteSource.Squeeze(featureMap, Op.ChannelSqueeze.Squeeze.TOP_K_BY_MEAN, k));
            out.add(new SilhouetteSource.Squeeze(featureMap, Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD, k));
        }
        return out;
    }

    /** Each candidate's accuracy on the images, its graph made by {@code quantized} (the plan under study with that silhouette). */
    public static List<Trial> run(Backend backend, Graph model, Tensor images, int[] labels, int batch, List<SilhouetteSource.Squeeze> candidates,
                                  Function<SilhouetteSource.Squeeze, Graph> quantized) {
        List<Trial> trials = new ArrayList<>();
        for (SilhouetteSource.Squeeze c : candidates) {
            Graph q = quantized.apply(c);
            Evaluation.Result r = Evaluation.run(backend, q, Models.logits(q), images, labels, labels.length, batch, false, done -> {});
            trials.add(new Trial(c.featureMap(), describe(c), r.accuracy(), c));
        }
        return trials;
    }

    public static Trial best(List<Trial> trials) {
        Trial best = null;
        for (Trial t : trials) if (best == null || t.calibrationAccuracy() > best.calibrationAccuracy()) best = t;
        if (best == null) throw new IllegalArgumentException("no training-free silhouette to choose from");
        return best;
    }

    public static String describe(SilhouetteSource.Squeeze c) {
        return switch (c.mode()) {
            case MAX -> "channel max";
            case MEAN -> "channel mean";
            case TOP_K_BY_MEAN -> "mean of top-" + c.k() + " channels by mean";
            case TOP_K_BY_STD -> "mean of top-" + c.k() + " channels by std";
        };
    }
}
