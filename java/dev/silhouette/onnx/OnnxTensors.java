package dev.silhouette.onnx;

import com.google.protobuf.ByteString;
import dev.silhouette.io.Limit;
import dev.silhouette.onnx.proto.Onnx.StringStringEntryProto;
import dev.silhouette.onnx.proto.Onnx.TensorProto;
import dev.silhouette.onnx.proto.Onnx.TensorProto.DataType;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

/**
 * TensorProto to and from {@link Constant}: raw_data (little-endian), the typed repeated fields, and
 * external data files beside the model. Every declared size is checked against the bytes actually
 * present before anything is allocated, so a corrupt header cannot ask for gigabytes.
 */
final class OnnxTensors {
    private OnnxTensors() {}

    /**
     * @param modelDir folder of the model file, against which external data locations resolve; null
     *                 when the model came from memory (external data is then refused)
     */
    static Constant decode(TensorProto t, Path modelDir) {
        String what = "tensor '" + t.getName() + "'";
        if (!Limit.RANK.allows(t.getDimsCount())) throw new OnnxException(Limit.RANK.refusal(what + " declares dimensions:", t.getDimsCount()));
        long[] dims = new long[t.getDimsCount()];
        for (int i = 0; i < dims.length; i++) dims[i] = t.getDims(i);
        long size;
        try {
            size = Constant.size(dims);
        } catch (OnnxException e) {
            throw new OnnxException(what + ": " + e.getMessage());
        }
        DataType type = DataType.forNumber(t.getDataType());
        if (type == null) throw new OnnxException(what + " has unknown data type " + t.getDataType());
        int width = switch (type) {
            case FLOAT, INT32, UINT32 -> 4;
            case DOUBLE, INT64, UINT64 -> 8;
            case FLOAT16, BFLOAT16, INT16, UINT16 -> 2;
            case INT8, UINT8, BOOL -> 1;
            default -> throw new OnnxException(what + " has data type " + type + ", which Silhouette does not read "
                    + "(supported: float, double, float16, bfloat16 and the integer and bool types)");
        };
        ByteBuffer raw = null;
        if (!Limit.TENSOR_BYTES.allows(size * width)) throw new OnnxException(Limit.TENSOR_BYTES.refusal(what + " declares dims " + Arrays.toString(dims) + " of " + type + ", bytes:", size * width));
        if (t.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
            raw = external(t, what, size * width, modelDir);
        } else if (t.hasRawData()) {
            ByteString bytes = t.getRawData();
            if (bytes.size() != size * width) {
                throw new OnnxException(what + " declares dims " + Arrays.toString(dims) + " of " + type + " (" + size * width
                        + " bytes) but its raw_data holds " + bytes.size() + " bytes");
            }
            raw = bytes.asReadOnlyByteBuffer();
        }
        int n = (int) size;
        if (raw != null) {
            raw.order(ByteOrder.LITTLE_ENDIAN);
            return switch (type) {
                case FLOAT -> { float[] v = new float[n]; raw.asFloatBuffer().get(v); yield Constant.floats(dims, v); }
                case DOUBLE -> { float[] v = new float[n]; for (int i = 0; i < n; i++) v[i] = (float) raw.getDouble(i * 8); yield Constant.floats(dims, v); }
                case FLOAT16 -> { float[] v = new float[n]; for (int i = 0; i < n; i++) v[i] = Float.float16ToFloat(raw.getShort(i * 2)); yield Constant.floats(dims, v); }
                case BFLOAT16 -> { float[] v = new float[n]; for (int i = 0; i < n; i++) v[i] = Float.intBitsToFloat((raw.getShort(i * 2) & 0xFFFF) << 16); yield Constant.floats(dims, v); }
                default -> {
                    long[] v = new long[n];
                    for (int i = 0; i < n; i++) {
                        v[i] = switch (type) {
                            case INT64, UINT64 -> raw.getLong(i * 8);
                            case INT32 -> raw.getInt(i * 4);
                            case UINT32 -> raw.getInt(i * 4) & 0xFFFFFFFFL;
                            case INT16 -> raw.getShort(i * 2);
                            case UINT16 -> raw.getShort(i * 2) & 0xFFFF;
                            case INT8 -> raw.get(i);
                            default -> raw.get(i) & 0xFF;
                        };
                    }
                    yield Constant.ints(dims, v);
                }
            };
        }
        // Typed fields: FLOAT in float_data, DOUBLE in double_data, INT64 in int64_data, UINT32/UINT64 in
        // uint64_data, every narrower type (float16 and bfloat16 as bit patterns) in int32_data.
        int present = switch (type) {
            case FLOAT -> t.getFloatDataCount();
            case DOUBLE -> t.getDoubleDataCount();
            case INT64 -> t.getInt64DataCount();
            case UINT32, UINT64 -> t.getUint64DataCount();
            default -> t.getInt32DataCount();
        };
        if (present != size) {
            throw new OnnxException(what + " declares dims " + Arrays.toString(dims) + " (" + size + " values) but holds "
                    + present + " values" + (present == 0 ? " (no raw_data, no typed data: a missing or stripped initializer?)" : ""));
        }
        return switch (type) {
            case FLOAT -> { float[] v = new float[n]; for (int i = 0; i < n; i++) v[i] = t.getFloatData(i); yield Constant.floats(dims, v); }
            case DOUBLE -> { float[] v = new float[n]; for (int i = 0; i < n; i++) v[i] = (float) t.getDoubleData(i); yield Constant.floats(dims, v); }
            case FLOAT16 -> { float[] v = new float[n]; for (int i = 0; i < n; i++) v[i] = Float.float16ToFloat((short) t.getInt32Data(i)); yield Constant.floats(dims, v); }
            case BFLOAT16 -> { float[] v = new float[n]; for (int i = 0; i < n; i++) v[i] = Float.intBitsToFloat((t.getInt32Data(i) & 0xFFFF) << 16); yield Constant.floats(dims, v); }
            case INT64 -> { long[] v = new long[n]; for (int i = 0; i < n; i++) v[i] = t.getInt64Data(i); yield Constant.ints(dims, v); }
            case UINT32, UINT64 -> { long[] v = new long[n]; for (int i = 0; i < n; i++) v[i] = t.getUint64Data(i); yield Constant.ints(dims, v); }
            default -> { long[] v = new long[n]; for (int i = 0; i < n; i++) v[i] = t.getInt32Data(i); yield Constant.ints(dims, v); }
        };
    }

    /** Reads [offset, offset + length) of the external file named by "location", within the model's folder. */
    private static ByteBuffer external(TensorProto t, String what, long bytes, Path modelDir) {
        String location = null;
        long offset = 0, length = -1;
        for (StringStringEntryProto e : t.getExternalDataList()) {
            try {
                switch (e.getKey()) {
                    case "location" -> location = e.getValue();
                    case "offset" -> offset = Long.parseLong(e.getValue());
                    case "length" -> length = Long.parseLong(e.getValue());
                    default -> { }
                }
            } catch (NumberFormatException ex) {
                throw new OnnxException(what + ": external data " + e.getKey() + " '" + e.getValue() + "' is not a number");
            }
        }
        if (location == null || location.isEmpty()) throw new OnnxException(what + " is stored externally but names no location");
        if (modelDir == null) throw new OnnxException(what + " is stored externally in '" + location + "', but the model was not read from a file");
        Path file;
        try {
            file = modelDir.resolve(location).normalize();
            if (Path.of(location).isAbsolute() || !file.startsWith(modelDir.normalize())) {
                throw new OnnxException(what + ": external data location '" + location + "' lies outside the model's folder " + modelDir);
            }
        } catch (java.nio.file.InvalidPathException e) {
            throw new OnnxException(what + ": external data location '" + location + "' is not a valid path");
        }
        if (length >= 0 && length != bytes) throw new OnnxException(what + " needs " + bytes + " bytes but its external data length is " + length);
        if (offset < 0) throw new OnnxException(what + ": negative external data offset " + offset);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long fileSize = ch.size();
            if (offset > fileSize || bytes > fileSize - offset) {
                throw new OnnxException(what + " needs bytes [" + offset + ", " + (offset + bytes) + ") of " + file + ", which has " + fileSize);
            }
            ByteBuffer buf = ByteBuffer.allocate((int) bytes);
            while (buf.hasRemaining()) {
                if (ch.read(buf, offset + buf.position()) < 0) throw new OnnxException(what + ": " + file + " ended early");
            }
            return buf.flip();
        } catch (java.nio.file.NoSuchFileException e) {
            throw new OnnxException(what + " is stored in external file " + file + ", which does not exist");
        } catch (IOException e) {
            throw new OnnxException(what + ": cannot read external data " + file + ": " + e.getMessage(), e);
        }
    }

    /** A float tensor as raw little-endian float32. */
    static TensorProto encode(String name, Tensor t) {
        ByteBuffer buf = ByteBuffer.allocate(t.size() * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(t.data());
        TensorProto.Builder b = TensorProto.newBuilder().setName(name).setDataType(DataType.FLOAT_VALUE).setRawData(ByteString.copyFrom(buf.array()));
        for (int x : t.shape().dims()) b.addDims(x);
        return b.build();
    }

    /** A 1-D int64 tensor in the typed int64_data field. */
    static TensorProto encodeInts(String name, long... values) {
        TensorProto.Builder b = TensorProto.newBuilder().setName(name).setDataType(DataType.INT64_VALUE).addDims(values.length);
        for (long v : values) b.addInt64Data(v);
        return b.build();
    }

    /** A float tensor (any dims) in the typed float_data field. */
    static TensorProto encodeFloats(String name, long[] dims, float... values) {
        TensorProto.Builder b = TensorProto.newBuilder().setName(name).setDataType(DataType.FLOAT_VALUE);
        for (long d : dims) b.addDims(d);
        for (float v : values) b.addFloatData(v);
        return b.build();
    }
}
