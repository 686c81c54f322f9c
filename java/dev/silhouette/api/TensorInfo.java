package dev.silhouette.api;

import java.util.List;

/**
 * A model input or output as a client sees it: its name, its datatype (always {@code FP32}: every
 * Silhouette tensor is float32) and its shape with {@code -1} for the batch axis.
 */
public record TensorInfo(String name, String datatype, List<Long> shape) {
    /** The datatype of every tensor a Silhouette model reads or writes. */
    public static final String FP32 = "FP32";
    /** The batch axis's size in {@link #shape()}: any number of samples. */
    public static final long BATCH = -1;

    public TensorInfo {
        shape = List.copyOf(shape);
    }

    /** The shape of one sample: {@link #shape()} without the batch axis. */
    public int[] sampleDims() {
        int[] d = new int[shape.size() - 1];
        for (int i = 1; i < shape.size(); i++) d[i - 1] = Math.toIntExact(shape.get(i));
        return d;
    }
}
