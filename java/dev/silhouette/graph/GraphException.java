package dev.silhouette.graph;

/** A graph that cannot be built or run as given: names the node and what does not fit. */
public class GraphException extends IllegalArgumentException {
    public GraphException(String message) {
        super(message);
    }
}
