package dev.silhouette.cli;

import dev.silhouette.backend.cpu.LowBitConv;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.pipeline.PlanRewrite;
import dev.silhouette.pipeline.QuantPlan;
import picocli.CommandLine.Option;

import java.util.Map;
import java.util.TreeMap;

/** {@code --execution}: how every command that runs a quantization plan executes it, and the label its results carry. */
final class ExecutionOptions {
    @Option(names = "--execution", defaultValue = "packed",
            description = "packed (integer codes and exact int32 accumulators, the default) or simulated (dequantized codes through float ops, as a check)")
    String execution;

    PlanRewrite.Execution mode() {
        return switch (execution.toLowerCase(java.util.Locale.ROOT)) {
            case "packed" -> PlanRewrite.Execution.PACKED;
            case "simulated" -> PlanRewrite.Execution.SIMULATED;
            default -> throw new IllegalArgumentException("--execution " + execution + ": expected packed or simulated");
        };
    }

    /**
     * What executed a graph's quantized layers, for tables and JSON: "fp32", "simulated", or "packed" with
     * the kernels used per layer count, and how many planned layers stayed simulated.
     */
    static String label(Graph graph, QuantPlan plan, PlanRewrite.Execution mode) {
        if (plan == null) return "fp32";
        if (mode == PlanRewrite.Execution.SIMULATED) return "simulated";
        Map<String, Integer> kernels = new TreeMap<>();
        for (Node n : graph.nodes()) {
            if (n.op() instanceof Op.LowBitConv2d op) kernels.merge(LowBitConv.choose(op).name().toLowerCase(java.util.Locale.ROOT), 1, Integer::sum);
        }
        // A layer the lowering kept simulated is still its own Conv2d or Linear node; a lowered one is not.
        long planned = plan.layers().size(), simulated = plan.layers().stream()
                .filter(l -> graph.node(l.layer()).op() instanceof Op.Conv2d || graph.node(l.layer()).op() instanceof Op.Linear).count();
        StringBuilder s = new StringBuilder("packed ").append(kernels);
        if (simulated > 0) s.append(", ").append(simulated).append(" of ").append(planned).append(" layers simulated");
        return s.toString();
    }
}
