package dev.silhouette.onnx;

import dev.silhouette.io.Limit;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.Arrays;

/**
 * A tensor known at import time (initializer, Constant node, or a folded shape computation). Exactly one
 * of {@code floats} (every floating type, widened or narrowed to float32) and {@code ints} (every integer
 * and boolean type, as int64) is set; dims are ONNX's int64 dims.
 */
record Constant(long[] dims, float[] floats, long[] ints) {

    Constant {
        if ((floats == null) == (ints == null)) throw new IllegalStateException("a constant holds floats or ints");
        long size = size(dims);
        if ((floats != null ? floats.length : ints.length) != size) {
            throw new IllegalStateException("constant of dims " + Arrays.toString(dims) + " holds " + (floats != null ? floats.length : ints.length) + " values");
        }
    }

    static Constant floats(long[] dims, float[] values) {
        return new Constant(dims, values, null);
    }

    static Constant ints(long[] dims, long[] values) {
        return new Constant(dims, null, values);
    }

    static Constant scalar(long v) {
        return ints(new long[0], new long[] {v});
    }

    /**
     * The most elements one import-time tensor may hold: {@link Limit#TENSOR_ELEMENTS}, and at most a
     * sixteenth of the heap (an int64 copy of it is then an eighth), so no weight or folded constant can
     * exhaust memory.
     */
    static long maxElements() {
        return Math.min(Limit.TENSOR_ELEMENTS.value(), Runtime.getRuntime().maxMemory() / 16);
    }

    /** Element count of dims, checked against {@link #maxElements()} (also rejects negative dims). */
    static long size(long[] dims) {
        if (!Limit.RANK.allows(dims.length)) throw new OnnxException(Limit.RANK.refusal("declares dimensions:", dims.length));
        long size = 1, limit = maxElements();
        for (long d : dims) {
            if (d < 0) throw new OnnxException("negative dimension " + d + " in " + Arrays.toString(dims));
            size = d != 0 && size > limit / d ? Long.MAX_VALUE : size * d;
        }
        if (size > limit) {
            throw new OnnxException("dims " + Arrays.toString(dims) + " hold more than " + limit
                    + " elements, the limit of one tensor at import (" + Limit.TENSOR_ELEMENTS.describe() + ", and a sixteenth of the "
                    + (Runtime.getRuntime().maxMemory() >> 20) + " MiB heap)");
        }
        return size;
    }

    boolean isFloat() {
        return floats != null;
    }

    int size() {
        return floats != null ? floats.length : ints.length;
    }

    int rank() {
        return dims.length;
    }

    double get(int i) {
        return floats != null ? floats[i] : ints[i];
    }

    /** The same values under other dims of the same size. */
    Constant withDims(long[] newDims) {
        if (size(newDims) != size()) throw new OnnxException("cannot view " + Arrays.toString(dims) + " as " + Arrays.toString(newDims));
        return new Constant(newDims, floats, ints);
    }

    Constant asFloats() {
        if (floats != null) return this;
        float[] f = new float[ints.length];
        for (int i = 0; i < f.length; i++) f[i] = ints[i];
        return floats(dims, f);
    }

    /** Integer values, truncating floats toward zero (ONNX Cast). */
    Constant asInts() {
        if (ints != null) return this;
        long[] l = new long[floats.length];
        for (int i = 0; i < l.length; i++) l[i] = (long) floats[i];
        return ints(dims, l);
    }

    /** Integer values of an int-typed constant, e.g. a shape or axes input; {@code what} names it in errors. */
    long[] longs(String what) {
        if (ints == null) throw new OnnxException(what + " must be an integer tensor, got floats");
        return ints;
    }

    Tensor toTensor(String what) {
        int[] d = new int[dims.length];
        for (int i = 0; i < d.length; i++) d[i] = Math.toIntExact(dims[i]);
        try {
            return new Tensor(Shape.of(d), asFloats().floats().clone());
        } catch (IllegalArgumentException e) {
            throw new OnnxException(what + ": " + e.getMessage(), e);
        }
    }
}
