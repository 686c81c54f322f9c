package dev.silhouette.pipeline;

import dev.silhouette.graph.Graph;
import dev.silhouette.pipeline.QuantPlan;

/** Plans of the study's schemes with fixed clip levels, for tests that need a quantized graph and no calibration data. */
public final class TestPlans {
    private TestPlans() {}

    public static QuantPlan plan(Graph g, Plans.Receiving receiving, Plans.ClipLevels clips) {
        return Plans.of(g, "test", receiving.toString(), new QuantPlan.SilhouetteSource.Learned(), receiving, Plans.PRE_BRANCH_BITS, clips);
    }

    /** {@code g} with the receiving layers under {@code receiving} and the pre-branch ones at 8 bits. */
    public static Graph quantized(Graph g, Plans.Receiving receiving, Plans.ClipLevels clips) {
        return PlanRewrite.apply(g, plan(g, receiving, clips));
    }
}
