package dev.silhouette.train;

import dev.silhouette.quant.BitWidths;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.Map;

/**
 * Quantizers inside the training loop: the forward is the inference library's quantizer
 * ({@link dev.silhouette.quant.Quantizers}, docs/QUANTIZATION.md: codes rounded half to even), so a model
 * trained here meets at inference exactly the grid it was trained on; the backward uses a
 * straight-through estimator (the rounding's zero-almost-everywhere derivative replaced by 1 inside the
 * representable range, 0 where the value was clipped).
 * <ul>
 *   <li>weights, symmetric per output channel, b bits: {@code Quantizers.symmetric} with alpha = max|w_c|
 *       (scale max|w_c| / (2^(b-1) - 1));</li>
 *   <li>activations, unsigned on [0, alpha], b bits (PACT, Choi et al. 2018): {@code Quantizers.pact};</li>
 *   <li>sign binariser: sign(x) = +1 for x >= 0, -1 otherwise; for weights scaled per output channel
 *       by mean|w_c| (binary-weight networks), for activations unscaled.</li>
 * </ul>
 */
public final class SteQuantizers {
    private SteQuantizers() {}

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

    /** Symmetric per-output-channel weight quantization to {@code bits} (2 to 8); plain straight-through gradient. */
    public record SymmetricWeights(int bits) implements WeightQuantizer {
        public SymmetricWeights {
            BitWidths.weight(bits, "symmetric weight quantizer");
        }

        @Override
        public Tensor forward(Tensor weight) {
            float[] maxAbs = dev.silhouette.quant.Quantizers.maxAbs(weight, weight.shape().dim(0));
            return dev.silhouette.quant.Quantizers.symmetric(weight, bits, maxAbs).dequantize();
        }

        /** The scale follows the channel's maximum, so nothing is clipped: the gradient passes unchanged. */
        @Override
        public Tensor backward(Tensor weight, Tensor gradQuantized) {
            return gradQuantized;
        }
    }

    /**
     * Sign binarisation of weights scaled per output channel by mean|w_c|; the straight-through gradient
     * passes where |w| <= 1 (the usual window: outside it the float weight no longer moves the sign).
     */
    public record SignWeights() implements WeightQuantizer {
        @Override
        public Tensor forward(Tensor weight) {
            int channels = weight.shape().dim(0), per = weight.size() / channels;
            float[] w = weight.data(), q = new float[w.length];
            for (int c = 0; c < channels; c++) {
                double sum = 0;
                for (int i = c * per; i < (c + 1) * per; i++) sum += Math.abs(w[i]);
                float scale = (float) (sum / per);
                for (int i = c * per; i < (c + 1) * per; i++) q[i] = w[i] >= 0 ? scale : -scale;
            }
            return new Tensor(weight.shape(), q);
        }

        @Override
        public Tensor backward(Tensor weight, Tensor gradQuantized) {
            return window(weight, gradQuantized);
        }
    }

    /** Sign binarisation of activations: +-1, straight-through gradient where |x| <= 1. */
    public record SignActivations() implements ActivationQuantizer {
        @Override
        public Tensor forward(Tensor x, Map<String, Tensor> parameters, String node) {
            float[] in = x.data(), out = new float[in.length];
            for (int i = 0; i < in.length; i++) out[i] = in[i] >= 0 ? 1f : -1f;
            return new Tensor(x.shape(), out);
        }

        @Override
        public Tensor backward(Tensor x, Tensor dy, Map<String, Tensor> parameters, String node, Map<String, Tensor> paramGrads) {
            return window(x, dy);
        }
    }

    private static Tensor window(Tensor x, Tensor dy) {
        float[] in = x.data(), g = dy.data(), out = new float[g.length];
        for (int i = 0; i < g.length; i++) out[i] = Math.abs(in[i]) <= 1f ? g[i] : 0f;
        return new Tensor(dy.shape(), out);
    }

    /**
     * PACT: clip to [0, alpha] with alpha learned per layer (parameter {@code <node>.pact_alpha}), then
     * quantize to {@code bits}. Gradients (straight-through): d y_q / d x = 1 for 0 <= x < alpha, else 0;
     * d y_q / d alpha = 1 where x >= alpha, else 0; plus the L2 term {@code decay * alpha} of the
     * regulariser decay / 2 * alpha^2 (on top of the optimizer's weight decay, which treats alpha like any
     * other parameter).
     *
     * @param initialAlpha the paper starts at 10
     */
    public record Pact(int bits, float initialAlpha, float decay) implements ActivationQuantizer {
        public static final String ALPHA = "pact_alpha";

        public Pact {
            BitWidths.activation(bits, "PACT activation quantizer");
            if (!(initialAlpha > 0)) throw new IllegalArgumentException("PACT initial alpha " + initialAlpha + " must be positive");
            if (!(decay >= 0)) throw new IllegalArgumentException("PACT alpha decay " + decay + " must not be negative");
        }

        @Override
        public Map<String, Tensor> parameters(String node) {
            return Map.of(node + "." + ALPHA, new Tensor(Shape.of(1), new float[] {initialAlpha}));
        }

        private static float alpha(Map<String, Tensor> parameters, String node) {
            float a = parameters.get(node + "." + ALPHA).data()[0];
            if (!(a > 0)) throw new IllegalStateException("PACT alpha of '" + node + "' became " + a + "; lower the learning rate");
            return a;
        }

        @Override
        public Tensor forward(Tensor x, Map<String, Tensor> parameters, String node) {
            float alpha = alpha(parameters, node);
            return dev.silhouette.quant.Quantizers.pact(x, bits, alpha).dequantize();
        }

        @Override
        public Tensor backward(Tensor x, Tensor dy, Map<String, Tensor> parameters, String node, Map<String, Tensor> paramGrads) {
            float alpha = alpha(parameters, node);
            float[] in = x.data(), g = dy.data(), dx = new float[g.length];
            double dAlpha = 0;
            for (int i = 0; i < g.length; i++) {
                if (in[i] >= alpha) dAlpha += g[i];
                else if (in[i] >= 0) dx[i] = g[i];
            }
            paramGrads.put(node + "." + ALPHA, new Tensor(Shape.of(1), new float[] {(float) (dAlpha + decay * alpha)}));
            return new Tensor(dy.shape(), dx);
        }
    }
}
