package dev.silhouette.quant;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

/**
 * A per-output-channel affine map y = scale[o] * acc + shift[o] over an NCHW accumulator: the form a
 * quantized layer's scales and its BatchNorm fold into (binary layers, GDRQ groups).
 */
public record ChannelAffine(float[] scale, float[] shift) {
    public ChannelAffine {
        if (scale.length != shift.length) throw new IllegalArgumentException(scale.length + " scales but " + shift.length + " shifts");
    }

    public Tensor apply(int[] acc, Shape outShape) {
        float[] f = new float[acc.length];
        for (int i = 0; i < acc.length; i++) f[i] = acc[i];
        return apply(new Tensor(outShape, f));
    }

    public Tensor apply(Tensor acc) {
        Shape s = acc.shape();
        if (s.c() != scale.length) throw new IllegalArgumentException("accumulator " + s + " has " + s.c() + " channels, the map " + scale.length);
        float[] y = new float[acc.size()];
        int plane = s.h() * s.w();
        for (int i = 0; i < y.length; i++) {
            int o = i / plane % s.c();
            y[i] = scale[o] * acc.data()[i] + shift[o];
        }
        return new Tensor(s, y);
    }
}
