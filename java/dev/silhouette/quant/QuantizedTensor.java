package dev.silhouette.quant;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.Arrays;

/**
 * Integer codes with their scales and zero points: real value = (code - zeroPoint[g]) * scale[g], where
 * g is the element's group: one group for a per-tensor quantizer, or the index along axis 0 (the output
 * channel of a weight [out, ...], the channel of a [C, ...] tensor) for a per-channel one.
 */
public record QuantizedTensor(Shape shape, int[] codes, int bits, Scheme scheme, float[] scales, int[] zeroPoints) {
    public QuantizedTensor {
        BitWidths.code(bits, "quantized tensor");
        if (codes.length != shape.size()) throw new IllegalArgumentException("codes: " + codes.length + " for shape " + shape);
        if (scales.length != zeroPoints.length) throw new IllegalArgumentException(scales.length + " scales but " + zeroPoints.length + " zero points");
        if (scales.length != 1 && (shape.rank() == 0 || scales.length != shape.dim(0))) {
            throw new IllegalArgumentException(scales.length + " scales fit neither one group nor axis 0 of " + shape);
        }
    }

    public int groups() {
        return scales.length;
    }

    /** Elements per group (the whole tensor per tensor, one channel's slice per channel). */
    public int groupSize() {
        return codes.length / scales.length;
    }

    public int qmin() {
        return scheme.qmin(bits);
    }

    public int qmax() {
        return scheme.qmax(bits);
    }

    public Tensor dequantize() {
        float[] out = new float[codes.length];
        int per = groupSize();
        for (int i = 0; i < codes.length; i++) {
            int g = i / per;
            out[i] = (codes[i] - zeroPoints[g]) * scales[g];
        }
        return new Tensor(shape, out);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof QuantizedTensor q && shape.equals(q.shape) && bits == q.bits && scheme == q.scheme
                && Arrays.equals(codes, q.codes) && Arrays.equals(scales, q.scales) && Arrays.equals(zeroPoints, q.zeroPoints);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(codes) * 31 + Arrays.hashCode(scales);
    }

    @Override
    public String toString() {
        return "QuantizedTensor" + shape + " " + scheme + " " + bits + "b, " + scales.length + " group(s)";
    }
}
