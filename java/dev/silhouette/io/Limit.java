package dev.silhouette.io;

/**
 * The largest declarations Silhouette accepts from a file or an argument, in one place. Every parser
 * compares what an input declares (a shape, a length, a count) with these before it allocates for it,
 * and refuses with one error naming the input, the declaration and the limit (see {@link #refusal}).
 * They stop garbage and hostile files, not real work: each lies far above what a CNN, its weights or
 * its data need.
 */
public enum Limit {
    /** Elements of one tensor read from a file (weights, an ONNX initializer or folded constant, an IDX array): one Java array. */
    TENSOR_ELEMENTS(Integer.MAX_VALUE - 8, "elements in one tensor"),
    /** Stored bytes of one tensor read whole (ONNX raw or external data, an IDX array): one Java byte array. */
    TENSOR_BYTES(Integer.MAX_VALUE - 8, "bytes of one tensor's data"),
    /** Dimensions of one tensor (numpy allows 64; CNN tensors have at most 5). */
    RANK(16, "dimensions of one tensor"),
    /** An ONNX model file, read whole: protobuf parses one message of at most 2 GiB (larger models keep weights as external data). */
    ONNX_FILE_BYTES(Integer.MAX_VALUE - 8, "bytes of an ONNX model file"),
    /** Nodes of one ONNX graph (ResNet-50 has about 180, the largest exported vision models some thousands). */
    ONNX_NODES(100_000, "nodes in one ONNX graph"),
    /** Initializers of one ONNX graph. */
    ONNX_INITIALIZERS(100_000, "initializers in one ONNX graph"),
    /** The JSON header of a safetensors file (the reference implementation's limit; real headers are kilobytes). */
    SAFETENSORS_HEADER_BYTES(100_000_000, "bytes of a safetensors header"),
    /** Height or width of one image or feature map: IDX images, a model file's declared input size, an ONNX Resize's output. */
    IMAGE_SIDE(16_384, "pixels on a side of one image"),
    /** Classes a model file may declare (ImageNet-21k has 21,841). */
    MODEL_CLASSES(100_000, "classes of one model"),
    /** A quantization plan file (a ResNet-50 plan is some tens of kilobytes). */
    PLAN_BYTES(64L << 20, "bytes of a quantization plan"),
    /** A region policy string such as 2:50,3:30,4:20. */
    POLICY_CHARS(256, "characters of a region policy");

    private final long value;
    private final String unit;

    Limit(long value, String unit) {
        this.value = value;
        this.unit = unit;
    }

    public long value() {
        return value;
    }

    /** Whether a declared count or size (never negative) fits. */
    public boolean allows(long declared) {
        return declared >= 0 && declared <= value;
    }

    /** e.g. "declares 1099511627776 elements, above the limit of 2147483639 elements in one tensor (Limit.TENSOR_ELEMENTS)". */
    public String refusal(String declaration, long declared) {
        if (declared < 0) return declaration + " " + declared + ", a negative count (the limit is " + value + " " + unit + ", Limit." + name() + ")";
        return declaration + " " + declared + ", " + describe();
    }

    /** "above the limit of N UNIT (Limit.NAME)", for messages that state the declaration their own way. */
    public String describe() {
        return "above the limit of " + value + " " + unit + " (Limit." + name() + ")";
    }
}
