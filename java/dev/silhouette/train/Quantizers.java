package dev.silhouette.train;

import dev.silhouette.tensor.Tensor;

import java.util.Map;

/**
 * Quantizers inside the training loop: the forward rounds, the backward uses a straight-through
 * estimator (the rounding's zero-almost-everywhere derivative replaced by 1 inside the representable range).
 */
public final class Quantizers {
    private Quantizers() {}

    /** Fake-quantizes a weight tensor in the forward; maps the gradient of the quantized weight to the float one. */
    public interface WeightQuantizer {
        Tensor forward(Tensor weight);

        Tensor backward(Tensor weight, Tensor gradQuantized);
    }

    /** Fake-quantizes a node's output; may own learned parameters (named under the node). */
    public interface ActivationQuantizer {
        /** Initial values of this quantizer's parameters for the node, by full name. */
        default Map<String, Tensor> parameters(String node) {
            return Map.of();
        }

        Tensor forward(Tensor x, Map<String, Tensor> parameters, String node);

        /** Gradient of the input; adds gradients of its own parameters into {@code paramGrads}. */
        Tensor backward(Tensor x, Tensor dy, Map<String, Tensor> parameters, String node, Map<String, Tensor> paramGrads);
    }
}
