package dev.silhouette.backend.cpu;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Passes;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;

/**
 * The backend runs a convolution's Add and ReLU in its GEMM epilogue; the outputs must be the same bits
 * as the ops one after the other, and an intermediate that is asked for must still come back unfused.
 */
public class FusedEpilogueTest {

    /** Every node by CpuOps.forward, one at a time: the unfused oracle. */
    private static Map<String, Tensor> unfused(Graph g, Tensor input) {
        Map<String, Tensor> v = new HashMap<>();
        v.put(g.inputs().getFirst().name(), input);
        for (Node n : g.nodes()) {
            List<Tensor> args = new ArrayList<>();
            for (String in : n.inputs()) args.add(v.get(in));
            v.put(n.name(), CpuOps.forward(g, n, args));
        }
        return v;
    }

    private static void assertSameBits(Tensor actual, Tensor expected, String what) {
        assertEquals(actual.shape(), expected.shape(), what);
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(Float.floatToRawIntBits(actual.data()[i]), Float.floatToRawIntBits(expected.data()[i]), what + ": element " + i);
        }
    }

    @Test
    public void foldedResNetGivesTheUnfusedBitsAndRequestedIntermediatesStayUnfused() {
        // Folded BatchNorm leaves conv (bias) -> ReLU and conv -> Add -> ReLU, the patterns the backend fuses.
        Graph g = Passes.foldBatchNorm(Models.build("fmnist-resnet", Models.defaults("fmnist-resnet")));
        Tensor x = Tensor.uniform(Shape.of(3, 1, 28, 28), 0, 1, 11);
        Map<String, Tensor> expected = unfused(g, x);
        CpuBackend cpu = new CpuBackend();
        Map<String, Tensor> logits = cpu.run(g, Map.of(g.inputs().getFirst().name(), x), List.of(Models.LOGITS));
        assertSameBits(logits.get(Models.LOGITS), expected.get(Models.LOGITS), "logits");
        // A convolution read by an Add, and the Add read by a ReLU: asked for, they come back as themselves.
        List<String> intermediates = new ArrayList<>();
        for (Node n : g.nodes()) {
            if (n.op() instanceof dev.silhouette.graph.Op.Add) intermediates.addAll(n.inputs());
            if (n.op() instanceof dev.silhouette.graph.Op.Relu) intermediates.addAll(n.inputs());
        }
        intermediates = intermediates.stream().distinct().toList();
        Map<String, Tensor> got = cpu.run(g, Map.of(g.inputs().getFirst().name(), x), intermediates);
        for (String name : intermediates) assertSameBits(got.get(name), expected.get(name), name);
    }
}
