package dev.silhouette.tensor;

import java.util.Arrays;

/** A tensor shape. Rank-4 shapes are NCHW. Immutable; sizes are checked to fit one Java array. */
public final class Shape {
    private final int[] dims;

    private Shape(int[] dims) {
        this.dims = dims;
    }

    public static Shape of(int... dims) {
        long size = 1;
        for (int i = 0; i < dims.length; i++) {
            if (dims[i] < 0) {
                throw new IllegalArgumentException("negative dimension " + dims[i] + " at axis " + i + " of " + Arrays.toString(dims));
            }
            size *= dims[i];
            if (size > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("shape " + Arrays.toString(dims) + " holds more than "
                        + (Integer.MAX_VALUE - 8) + " elements, the limit of one host tensor");
            }
        }
        return new Shape(dims.clone());
    }

    public int rank() {
        return dims.length;
    }

    public int dim(int axis) {
        return dims[axis < 0 ? dims.length + axis : axis];
    }

    public int[] dims() {
        return dims.clone();
    }

    public int size() {
        int size = 1;
        for (int d : dims) size *= d;
        return size;
    }

    /** Number of elements of one sample (everything after the batch axis). */
    public int sampleSize() {
        return dims.length == 0 ? 1 : size() / Math.max(1, dims[0]);
    }

    public Shape withDim(int axis, int value) {
        int[] copy = dims.clone();
        copy[axis] = value;
        return of(copy);
    }

    public int n() { requireRank4(); return dims[0]; }
    public int c() { requireRank4(); return dims[1]; }
    public int h() { requireRank4(); return dims[2]; }
    public int w() { requireRank4(); return dims[3]; }

    private void requireRank4() {
        if (dims.length != 4) throw new IllegalStateException("expected an NCHW shape, got " + this);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Shape s && Arrays.equals(dims, s.dims);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(dims);
    }

    @Override
    public String toString() {
        return Arrays.toString(dims);
    }
}
