package dev.silhouette.graph;

import java.util.List;

/** One op application. Its output value carries the node's name; inputs name earlier values. */
public record Node(String name, Op op, List<String> inputs) {
    public Node {
        inputs = List.copyOf(inputs);
    }

    public String parameterName(Op.Parameter parameter) {
        return name + "." + parameter.suffix();
    }
}
