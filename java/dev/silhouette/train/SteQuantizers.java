package dev.silhouette.train;

import dev.silhouette.quant.BitWidths;
import dev.silhouette.quant.WeightQuantization;
import dev.silhouette.tensor.Tensor;

/**
 * Weight quantizers inside the training loop: the forward is the plan's weight quantizer
 * ({@link WeightQuantization}, docs/QUANTIZATION.md: codes rounded half to even), so a model trained here
 * meets at inference exactly the grid it was trained on; the backward uses a straight-through estimator
 * (the rounding's zero-almost-everywhere derivative replaced by 1 inside the representable range).
 * <ul>
 *   <li>symmetric per output channel, b bits: alpha = max|w_c| (scale max|w_c| / (2^(b-1) - 1));</li>
 *   <li>binary (1 bit): sign(w) = +1 for w >= 0, -1 otherwise, scaled per output channel by mean|w_c|
 *       (binary-weight networks).</li>
 * </ul>
 * Activation quantizers are graph ops ({@link dev.silhouette.graph.Op.PactQuantize} and the region
 * quantizer) placed by the plan's rewrite; {@link Network} differentiates them and learns their clip levels.
 */
public final class SteQuantizers {
    private SteQuantizers() {}

    /** Fake-quantizes a weight tensor in the forward; maps the gradient of the quantized weight to the float one. */
    public interface WeightQuantizer {
        Tensor forward(Tensor weight);

        Tensor backward(Tensor weight, Tensor gradQuantized);
    }

    /** Symmetric per-output-channel weight quantization to {@code bits} (2 to 8); plain straight-through gradient. */
    public record SymmetricWeights(int bits) implements WeightQuantizer {
        public SymmetricWeights {
            BitWidths.weight(bits, "symmetric weight quantizer");
        }

        @Override
        public Tensor forward(Tensor weight) {
            return perChannel(weight, bits);
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
            return perChannel(weight, 1);
        }

        @Override
        public Tensor backward(Tensor weight, Tensor gradQuantized) {
            return window(weight, gradQuantized);
        }
    }

    /**
     * The plan's weight quantizer itself ({@link WeightQuantization}, one group per output channel at its own
     * max |w|, or mean |w| at 1 bit), so that the grid trained on is the one {@code PlanRewrite} applies.
     */
    private static Tensor perChannel(Tensor weight, int bits) {
        int[] groups = new int[weight.shape().dim(0)];
        java.util.Arrays.fill(groups, bits);
        return WeightQuantization.quantize(weight, groups, null, false).values();
    }

    private static Tensor window(Tensor x, Tensor dy) {
        float[] in = x.data(), g = dy.data(), out = new float[g.length];
        for (int i = 0; i < g.length; i++) out[i] = Math.abs(in[i]) <= 1f ? g[i] : 0f;
        return new Tensor(dy.shape(), out);
    }
}
