package dev.silhouette.graph;

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

        @Override
        public List<Parameter> parameters() {
            Parameter weight = new Parameter("weight", outChannels, inChannels / groups, window.kernelH(), window.kernelW());
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
}
