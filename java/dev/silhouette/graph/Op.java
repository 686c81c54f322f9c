package dev.silhouette.graph;

import dev.silhouette.tensor.Window;
import dev.silhouette.quant.BitWidths;
import dev.silhouette.tensor.Shape;

import java.util.List;

/**
 * The operations of the graph IR. Sealed, so every backend's exhaustive {@code switch} over ops fails to
 * compile when an op is added that it does not handle. Ops hold attributes only; their learned tensors
 * live in the graph's parameter map under {@code <node name>.<parameter>} (PyTorch state_dict names).
 */
public sealed interface Op {

    /** Names and shapes of the parameters this op reads (empty for parameter-free ops). */
    default List<Parameter> parameters() {
        return List.of();
    }

    /** Number of value inputs (not parameters); -1 for any number of at least one. */
    default int arity() {
        return 1;
    }

    /** A learned tensor of an op: its suffix in the parameter map and its exact shape. */
    record Parameter(String suffix, int... dims) {
        /** Running statistics are state, not learned weights (PyTorch's buffers); counts exclude them. */
        public boolean isBuffer() {
            return suffix.startsWith("running_");
        }
    }

    /** 2-D convolution, weight [out, in/groups, kh, kw], optional bias [out]. */
    record Conv2d(int inChannels, int outChannels, Window window, int groups, boolean bias) implements Op {
        public Conv2d {
            if (inChannels < 1 || outChannels < 1) throw new IllegalArgumentException("conv channels " + inChannels + "->" + outChannels + " must be positive");
            if (groups < 1 || inChannels % groups != 0 || outChannels % groups != 0) {
                throw new IllegalArgumentException("conv groups " + groups + " must divide in " + inChannels + " and out " + outChannels + " channels");
            }
        }

        /** Input channels each group reads. */
        public int inPerGroup() {
            return inChannels / groups;
        }

        /** Output channels each group writes. */
        public int outPerGroup() {
            return outChannels / groups;
        }

        /** Weights per output channel: the length of one im2col column. */
        public int taps() {
            return inPerGroup() * window.taps();
        }

        @Override
        public List<Parameter> parameters() {
            Parameter weight = new Parameter("weight", outChannels, inPerGroup(), window.kernelH(), window.kernelW());
            return bias ? List.of(weight, new Parameter("bias", outChannels)) : List.of(weight);
        }
    }

    /** Inference BatchNorm over axis 1: y = (x - mean) / sqrt(var + eps) * weight + bias. */
    record BatchNorm(int channels, float eps) implements Op {
        @Override
        public List<Parameter> parameters() {
            return List.of(new Parameter("weight", channels), new Parameter("bias", channels),
                    new Parameter("running_mean", channels), new Parameter("running_var", channels));
        }
    }

    record Relu() implements Op {}

    /** Clamp to [min, max]; ReLU6 and PACT's clip are instances. */
    record Clip(float min, float max) implements Op {
        public Clip {
            if (!(min <= max)) throw new IllegalArgumentException("clip range [" + min + ", " + max + "] is empty");
        }
    }

    /** Elementwise sum of two tensors of the same shape. */
    record Add() implements Op {
        @Override
        public int arity() {
            return 2;
        }
    }

    /** Max pooling; padded positions never win (they count as minus infinity). */
    record MaxPool(Window window) implements Op {}

    /** Average pooling; with countIncludePad the divisor is the full window, else only in-bounds taps. */
    record AvgPool(Window window, boolean countIncludePad) implements Op {}

    /** Mean over H and W, giving N x C x 1 x 1. */
    record GlobalAvgPool() implements Op {}

    /** y = x W^T + b on N x in, weight [out, in], optional bias [out]. */
    record Linear(int inFeatures, int outFeatures, boolean bias) implements Op {
        @Override
        public List<Parameter> parameters() {
            Parameter weight = new Parameter("weight", outFeatures, inFeatures);
            return bias ? List.of(weight, new Parameter("bias", outFeatures)) : List.of(weight);
        }
    }

    /** Flattens everything after the batch axis: N x ... to N x (product). */
    record Flatten() implements Op {}

    record Sigmoid() implements Op {}

    /** Softmax over axis 1 (classes, or channels of an NCHW tensor at every pixel). */
    record Softmax() implements Op {}

    /** Resize of H and W to a fixed size; bilinear follows PyTorch's align_corners=false convention. */
    record Interpolate(Mode mode, int outH, int outW) implements Op {
        public enum Mode { NEAREST, BILINEAR }

        public Interpolate {
            if (outH < 1 || outW < 1) throw new IllegalArgumentException("interpolate size " + outH + "x" + outW + " must be positive");
        }
    }

    /** Concatenation along an axis (1 for channels); all other axes must agree. */
    record Concat(int axis) implements Op {
        @Override
        public int arity() {
            return -1;
        }
    }

    /** The four arithmetic operations of the elementwise ops, each one float32 operation as computed. */
    enum Arithmetic {
        ADD, SUB, MUL, DIV;

        public float apply(float a, float b) {
            return switch (this) {
                case ADD -> a + b;
                case SUB -> a - b;
                case MUL -> a * b;
                case DIV -> a / b;
            };
        }
    }

    /**
     * Elementwise arithmetic of two values with NumPy (ONNX) broadcasting: shapes align at the last axis
     * and an axis of size 1 stretches to the other's size. Same-shape sums are {@link Add}.
     */
    record Elementwise(Arithmetic arithmetic) implements Op {
        @Override
        public int arity() {
            return 2;
        }
    }

    /**
     * Elementwise arithmetic of a value and a constant tensor (parameter "constant", e.g. a per-channel
     * scale of shape [C, 1, 1]), broadcast NumPy-style; the constant's rank is at most the value's.
     * {@code constantFirst} puts the constant on the left (c - x, c / x).
     */
    record ElementwiseConstant(Arithmetic arithmetic, Shape constantShape, boolean constantFirst) implements Op {
        @Override
        public List<Parameter> parameters() {
            return List.of(new Parameter("constant", constantShape.dims()));
        }
    }

    /** max(0, min(1, alpha x + beta)); PyTorch's Hardsigmoid is alpha 1/6, beta 1/2. */
    record HardSigmoid(float alpha, float beta) implements Op {}

    /** x * max(0, min(1, x / 6 + 1/2)) (MobileNetV3's h-swish). */
    record HardSwish() implements Op {}

    /** Same values in a new per-sample shape; the batch axis stays first. */
    record Reshape(Shape sampleShape) implements Op {}

    /**
     * Constant padding of H and W of an NCHW tensor, for the asymmetric padding a {@link Window} cannot
     * hold (ONNX auto_pad SAME_UPPER with even kernels, pooling with ceil_mode).
     */
    record Pad(int top, int bottom, int left, int right, float value) implements Op {
        public Pad {
            if (top < 0 || bottom < 0 || left < 0 || right < 0) {
                throw new IllegalArgumentException("padding " + top + "/" + bottom + "/" + left + "/" + right + " must not be negative");
            }
        }
    }

    /**
     * PACT activation quantization at one width (the uniform case and the layers before the silhouette):
     * y = clip(x, 0, alpha) rounded to the grid alpha / (2^bits - 1). See docs/REGION_QUANTIZATION.md.
     */
    record PactQuantize(int bits, float alpha) implements Op {
        public PactQuantize {
            BitWidths.activation(bits, "PACT quantization");
            RegionSettings.checkAlpha("PACT quantization", alpha);
        }
    }

    /**
     * Unsigned affine activation quantization (post-training plans): per tensor ({@code bits}, {@code lo},
     * {@code hi} of one entry) or per channel of axis 1 (one entry per channel), each on the grid of
     * dev.silhouette.quant.Quantizers#affine over [lo, hi] widened to hold 0.
     */
    record AffineQuantize(List<Integer> bits, List<Float> lo, List<Float> hi) implements Op {
        public AffineQuantize {
            bits = List.copyOf(bits);
            lo = List.copyOf(lo);
            hi = List.copyOf(hi);
            if (bits.isEmpty() || lo.size() != bits.size() || hi.size() != bits.size()) {
                throw new IllegalArgumentException("affine quantization needs one width, lo and hi per group; got " + bits.size() + ", " + lo.size() + ", " + hi.size());
            }
            for (int g = 0; g < bits.size(); g++) {
                BitWidths.activation(bits.get(g), "affine quantization");
                if (!(lo.get(g) <= hi.get(g)) || lo.get(g).isInfinite() || hi.get(g).isInfinite()) {
                    throw new IllegalArgumentException("affine quantization: range [" + lo.get(g) + ", " + hi.get(g) + "] of group " + g + " is not a finite interval");
                }
            }
        }
    }

    /**
     * Region-based activation quantization: input 0 (N x C x H x W activations) is quantized per pixel at
     * the bits of that pixel's region, found from input 1 (the N x 1 x h x w silhouette) by the policy's
     * per-image rank cuts (dev.silhouette.quant.SilhouetteThresholds) at size H x W ({@code resize}, {@code order}). Region j uses
     * {@code alphas.get(j)} as its PACT clip level. With {@code onlyRegion >= 0} pixels of every other
     * region are zero: the masked input of the original code's one-conv-per-region form.
     */
    record RegionQuantize(dev.silhouette.quant.RegionPolicy policy, List<Float> alphas, Interpolate.Mode resize,
                          MaskOrder order, int onlyRegion) implements Op {
        /** Whether the silhouette is resized before thresholding, or its region masks after. */
        public enum MaskOrder { RESIZE_THEN_THRESHOLD, THRESHOLD_THEN_RESIZE }

        public RegionQuantize {
            alphas = List.copyOf(alphas);
            int regions = policy.regions().size();
            if (alphas.size() != regions) {
                throw new IllegalArgumentException("region policy " + policy + " has " + regions + " regions but " + alphas.size() + " clip levels were given");
            }
            for (float a : alphas) RegionSettings.checkAlpha("region quantization", a);
            if (onlyRegion < -1 || onlyRegion >= regions) {
                throw new IllegalArgumentException("region " + onlyRegion + " is outside policy " + policy + " (-1 for all, else 0 to " + (regions - 1) + ")");
            }
        }

        @Override
        public int arity() {
            return 2;
        }
    }

    /**
     * The DRQ baseline's activation quantization: each channel is mean-pooled over block x block tiles
     * (partial tiles at the edges average their in-bounds pixels); tiles whose mean is at or above
     * {@code threshold} are sensitive and their pixels use {@code highBits} (clip {@code highAlpha}),
     * the rest {@code lowBits} (clip {@code lowAlpha}). {@code onlyRegion}: -1 all, 0 only the
     * insensitive pixels, 1 only the sensitive ones (others zero).
     */
    record DrqQuantize(int block, float threshold, int lowBits, int highBits, float lowAlpha, float highAlpha, int onlyRegion) implements Op {
        public DrqQuantize {
            if (block < 1) throw new IllegalArgumentException("DRQ block " + block + " must be at least 1");
            if (!Float.isFinite(threshold)) throw new IllegalArgumentException("DRQ threshold " + threshold + " must be finite");
            BitWidths.activation(lowBits, "DRQ low width");
            BitWidths.activation(highBits, "DRQ high width");
            RegionSettings.checkAlpha("DRQ low width", lowAlpha);
            RegionSettings.checkAlpha("DRQ high width", highAlpha);
            if (onlyRegion < -1 || onlyRegion > 1) throw new IllegalArgumentException("DRQ region " + onlyRegion + " must be -1 (all), 0 (low) or 1 (high)");
        }
    }

    /**
     * The region index (0 = lowest silhouette values) of every pixel at size height x width, N x 1 x height x
     * width, from input 0 (the N x 1 x h x w silhouette): {@link RegionQuantize}'s map, computed once per
     * silhouette and size and read by every low-bit convolution of that size.
     */
    record RegionMap(dev.silhouette.quant.RegionPolicy policy, Interpolate.Mode resize, RegionQuantize.MaskOrder order, int height, int width)
            implements Op {
        public RegionMap {
            if (height < 1 || width < 1) throw new IllegalArgumentException("region map size " + height + "x" + width + " must be positive");
        }
    }

    /**
     * A convolution executed on integer codes (the packed path): input 0 (float N x C x H x W) is quantized to
     * codes on {@code codes}'s grid (per pixel region from input 1, a {@link RegionMap}, where the grid has
     * regions), the codes are multiplied by {@code weights}' integer codes into exact int32 accumulators, one
     * per region, and the epilogue dequantizes: y = bias + sum_r step_r (scale_(o,r) A_r + offset_(o,r) S_r),
     * A_r the sum over region r's taps of weight code x (activation code - zero point), S_r the sum of those
     * activation codes. The one "bias" parameter is the convolution's.
     */
    record LowBitConv2d(Conv2d conv, ActivationCodes codes, dev.silhouette.quant.LowBitWeights weights) implements Op {
        public LowBitConv2d {
            if (weights.groups() != conv.groups() || weights.inPerGroup() != conv.inPerGroup() || weights.outPerGroup() != conv.outPerGroup()
                    || weights.taps() != conv.window().taps()) {
                throw new IllegalArgumentException("low-bit weights " + weights + " do not fit " + conv);
            }
            if (weights.regions() != 1 && weights.regions() != codes.regions()) {
                throw new IllegalArgumentException(weights.regions() + " weight sets for " + codes.regions() + " activation regions");
            }
        }

        @Override
        public List<Parameter> parameters() {
            return conv.bias() ? List.of(new Parameter("bias", conv.outChannels())) : List.of();
        }

        @Override
        public int arity() {
            return codes instanceof ActivationCodes.Regions ? 2 : 1;
        }

        /** The activation grid of a low-bit convolution; codes are unsigned, value = step * (code - zeroPoint). */
        public sealed interface ActivationCodes {
            int regions();

            /** Code width of region r. */
            int bits(int region);

            /** Grid step of region r: value = step * (code - zeroPoint). */
            float step(int region);

            /** The code of real 0 (only a one-grid affine input has one other than 0). */
            default int zeroPoint() {
                return 0;
            }

            /** One grid for every activation (PACT, or affine per tensor). */
            record Grid(int bits, float step, int zeroPoint) implements ActivationCodes {
                public Grid {
                    dev.silhouette.quant.BitWidths.activation(bits, "low-bit activation grid");
                    if (!(step > 0) || Float.isInfinite(step)) throw new IllegalArgumentException("activation step " + step + " must be positive and finite");
                    if (zeroPoint < 0 || zeroPoint >= 1 << bits) throw new IllegalArgumentException("zero point " + zeroPoint + " outside " + bits + "-bit codes");
                }

                public int regions() {
                    return 1;
                }

                public int bits(int region) {
                    return bits;
                }

                public float step(int region) {
                    return step;
                }
            }

            /** PACT grids per region (region r: bits.get(r), step alpha_r / (2^bits - 1)), the pixel's region from the map. */
            record Regions(List<Integer> bits, List<Float> steps) implements ActivationCodes {
                public Regions {
                    bits = List.copyOf(bits);
                    steps = List.copyOf(steps);
                    if (bits.isEmpty() || bits.size() != steps.size()) throw new IllegalArgumentException("region grids need one step per width");
                    for (int b : bits) dev.silhouette.quant.BitWidths.activation(b, "low-bit region grid");
                }

                public int regions() {
                    return bits.size();
                }

                public int bits(int region) {
                    return bits.get(region);
                }

                public float step(int region) {
                    return steps.get(region);
                }
            }

            /** One DRQ width: PACT codes of the activations in this sensitivity class ({@link DrqQuantize}'s tiles), zero elsewhere. */
            record DrqClass(int block, float threshold, boolean sensitive, int bits, float step) implements ActivationCodes {
                public DrqClass {
                    dev.silhouette.quant.BitWidths.activation(bits, "low-bit DRQ grid");
                    if (block < 1) throw new IllegalArgumentException("DRQ block " + block + " must be at least 1");
                }

                public int regions() {
                    return 1;
                }

                public int bits(int region) {
                    return bits;
                }

                public float step(int region) {
                    return step;
                }
            }
        }
    }

    /**
     * A training-free silhouette: squeezes N x C x H x W to N x 1 x H x W (channel max, channel mean, or
     * the mean of the k channels ranked highest per image by spatial mean or by spatial standard
     * deviation), then rescales each image to [0, 1] by its own minimum and maximum (a constant image
     * becomes all zeros).
     */
    record ChannelSqueeze(Squeeze mode, int k) implements Op {
        public enum Squeeze { MAX, MEAN, TOP_K_BY_MEAN, TOP_K_BY_STD }

        public ChannelSqueeze {
            if (k < 1) throw new IllegalArgumentException("channel squeeze k " + k + " must be at least 1");
        }
    }

    /**
     * A control silhouette of uniform noise in [0, 1), N x 1 x H x W at the size of input 0 (an N x C x H x W
     * feature map): what region quantization gives when the silhouette carries no information. Each image's
     * noise is seeded by {@code seed} and the hash of that image's values in input 1 (the pipeline passes the
     * graph's input image: the same draw however the layers before the feature map execute), or of input 0
     * when there is no input 1; so it does not depend on batching.
     */
    record NoiseSilhouette(long seed) implements Op {
        @Override
        public int arity() {
            return -1;
        }
    }

    /**
     * The attention branch's blend of two N x K logit tensors (inputs 0 main, 1 auxiliary):
     * y = g main + (1 - g) aux with g = sigmoid(w), w the learned scalar parameter "gate" [1], which
     * starts at {@link #INITIAL_GATE} (g = 0.95), as in the original research code.
     */
    record LogitBlend() implements Op {
        public static final float INITIAL_GATE = 3.0f;

        @Override
        public List<Parameter> parameters() {
            return List.of(new Parameter("gate", 1));
        }

        @Override
        public int arity() {
            return 2;
        }
    }

    /** Clip-level checks shared by the quantization ops, so they refuse bad values with the same words (widths: {@link BitWidths}). */
    final class RegionSettings {
        private RegionSettings() {}

        static void checkAlpha(String what, float alpha) {
            if (!(alpha > 0) || !Float.isFinite(alpha)) throw new IllegalArgumentException(what + ": clip level " + alpha + " must be positive and finite");
        }
    }
}
