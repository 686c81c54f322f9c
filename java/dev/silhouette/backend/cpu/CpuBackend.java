package dev.silhouette.backend.cpu;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.Inputs;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** The pure-Java backend: the reference every other backend is checked against, and the fallback. */
public final class CpuBackend implements Backend {

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public Map<String, Tensor> run(Graph graph, Map<String, Tensor> inputs, List<String> requested) {
        Inputs.bind(graph, inputs);
        Inputs.checkRequested(graph, requested);
        Map<String, Tensor> values = new HashMap<>(inputs);
        Set<String> wanted = new HashSet<>(requested);
        Map<String, Integer> lastUse = new HashMap<>();
        List<Node> nodes = graph.nodes();
        for (int i = 0; i < nodes.size(); i++) for (String in : nodes.get(i).inputs()) lastUse.put(in, i);
        for (int i = 0; i < nodes.size(); i++) {
            Node node = nodes.get(i);
            List<Tensor> args = new ArrayList<>(node.inputs().size());
            for (String in : node.inputs()) args.add(values.get(in));
            values.put(node.name(), CpuOps.forward(graph, node, args));
            // Drop intermediates after their last reader so peak memory follows the live set, not the graph.
            for (String in : node.inputs()) {
                if (lastUse.get(in) == i && !wanted.contains(in)) values.remove(in);
            }
        }
        Map<String, Tensor> result = new LinkedHashMap<>();
        for (String r : requested) result.put(r, values.get(r));
        return result;
    }
}
