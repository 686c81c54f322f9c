package dev.silhouette.tensor;

import java.util.Arrays;
import java.util.SplittableRandom;

/** A dense float32 host tensor, row-major (NCHW for images). The data array is shared, not copied. */
public final class Tensor {
    private final Shape shape;
    private final float[] data;

    public Tensor(Shape shape, float[] data) {
        if (data.length != shape.size()) {
            throw new IllegalArgumentException("tensor of shape " + shape + " needs " + shape.size()
                    + " values, got " + data.length);
        }
        this.shape = shape;
        this.data = data;
    }

    public static Tensor zeros(Shape shape) {
        return new Tensor(shape, new float[shape.size()]);
    }

    public static Tensor zeros(int... dims) {
        return zeros(Shape.of(dims));
    }

    public static Tensor filled(Shape shape, float value) {
        float[] d = new float[shape.size()];
        Arrays.fill(d, value);
        return new Tensor(shape, d);
    }

    /** Values uniform in [lo, hi), reproducible from the seed. */
    public static Tensor uniform(Shape shape, float lo, float hi, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] d = new float[shape.size()];
        for (int i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * (float) rnd.nextDouble();
        return new Tensor(shape, d);
    }

    /** Values from N(0, std^2), reproducible from the seed. */
    public static Tensor normal(Shape shape, float std, long seed) {
        java.util.Random rnd = new java.util.Random(seed);
        float[] d = new float[shape.size()];
        for (int i = 0; i < d.length; i++) d[i] = (float) (rnd.nextGaussian() * std);
        return new Tensor(shape, d);
    }

    public Shape shape() {
        return shape;
    }

    public float[] data() {
        return data;
    }

    public int size() {
        return data.length;
    }

    public Tensor reshape(Shape newShape) {
        if (newShape.size() != shape.size()) {
            throw new IllegalArgumentException("cannot reshape " + shape + " to " + newShape);
        }
        return new Tensor(newShape, data);
    }

    public Tensor copy() {
        return new Tensor(shape, data.clone());
    }

    /** A copy holding every value's magnitude (the sum-of-absolute-terms scale of an accumulation tolerance). */
    public Tensor abs() {
        float[] d = data.clone();
        for (int i = 0; i < d.length; i++) d[i] = Math.abs(d[i]);
        return new Tensor(shape, d);
    }

    /** Value at an NCHW (or any rank) index. */
    public float get(int... index) {
        return data[offset(index)];
    }

    public void set(float value, int... index) {
        data[offset(index)] = value;
    }

    private int offset(int[] index) {
        if (index.length != shape.rank()) {
            throw new IllegalArgumentException("index of rank " + index.length + " into shape " + shape);
        }
        int off = 0;
        for (int i = 0; i < index.length; i++) {
            if (index[i] < 0 || index[i] >= shape.dim(i)) {
                throw new IndexOutOfBoundsException("index " + Arrays.toString(index) + " outside " + shape);
            }
            off = off * shape.dim(i) + index[i];
        }
        return off;
    }

    /** The samples [from, to) of the batch axis, copied. */
    public Tensor slice(int from, int to) {
        int per = shape.sampleSize();
        float[] d = Arrays.copyOfRange(data, from * per, to * per);
        return new Tensor(shape.withDim(0, to - from), d);
    }

    @Override
    public String toString() {
        return "Tensor" + shape;
    }
}
