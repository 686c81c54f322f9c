package dev.silhouette.fuzz;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Passes;
import dev.silhouette.pipeline.PlanRewrite;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlanJson;

import java.nio.charset.StandardCharsets;

/**
 * Quantization plan JSON: parsed, written back (which must read back to the same JSON), and applied to
 * the bundled model with its BatchNorms folded, as {@code eval --plan} does.
 */
public final class QuantPlanFuzz {
    static final String SOURCE = "fuzzed-plan.json";
    /** The graph the seed plans were made for, so that fuzzed plans get past the fingerprint check. */
    static final Graph MODEL = Passes.foldBatchNorm(ModelLoader.load(ModelLoader.BUNDLED).graph());

    private QuantPlanFuzz() {}

    public static void fuzzerInitialize() {
        Findings.warmUp(QuantPlanFuzz::fuzzerTestOneInput, "QuantPlanFuzz");
    }

    public static void fuzzerTestOneInput(byte[] data) {
        QuantPlan plan;
        try {
            plan = QuantPlanJson.read(new String(data, StandardCharsets.UTF_8), SOURCE);
        } catch (RuntimeException e) {
            Findings.refusal(e, SOURCE);
            return;
        }
        String written = QuantPlanJson.write(plan);
        if (!QuantPlanJson.write(QuantPlanJson.read(written, "rewritten " + SOURCE)).equals(written)) {
            throw new AssertionError("the plan does not read back from its own JSON:\n" + written);
        }
        try {
            PlanRewrite.apply(MODEL, plan);
        } catch (RuntimeException e) {
            Findings.refusal(e);
        }
    }
}
