package dev.silhouette.serve;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The protocol's tensor datatypes as far as a float32 model takes them: FP32 as it is; the other numeric
 * types (FP16, FP64, INT8 to INT64, UINT8 to UINT64) converted to the nearest float32, as a C cast does;
 * BOOL and BYTES refused, naming the tensor.
 */
final class Datatypes {
    static final List<String> NUMERIC = List.of("FP32", "FP16", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64");

    private Datatypes() {}

    /** Bytes per value of a numeric datatype; refuses the others with the tensor's field name. */
    static int size(String datatype, String field) {
        return switch (datatype) {
            case "FP32", "INT32", "UINT32" -> 4;
            case "FP16", "INT16", "UINT16" -> 2;
            case "FP64", "INT64", "UINT64" -> 8;
            case "INT8", "UINT8" -> 1;
            case "BOOL", "BYTES", "BF16" -> throw InferenceError.invalid(field + ".datatype " + datatype + " cannot feed a float32 model input; send FP32 (or one of "
                    + NUMERIC + ", converted to FP32)");
            default -> throw InferenceError.invalid(field + ".datatype '" + datatype + "' is not a datatype of the protocol; send FP32 (or one of " + NUMERIC + ")");
        };
    }

    /** Little-endian raw values (binary tensor data, gRPC raw contents) as float32. */
    static float[] decode(String datatype, ByteBuffer raw, int count, String field) {
        int size = size(datatype, field);
        if (raw.remaining() != (long) count * size) {
            throw InferenceError.invalid(field + ": " + raw.remaining() + " bytes of " + datatype + " data, the shape needs " + count + " x " + size + " = "
                    + (long) count * size + " bytes");
        }
        ByteBuffer b = raw.slice().order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[count];
        switch (datatype) {
            case "FP32" -> b.asFloatBuffer().get(out);
            case "FP16" -> { for (int i = 0; i < count; i++) out[i] = Float.float16ToFloat(b.getShort(2 * i)); }
            case "FP64" -> { for (int i = 0; i < count; i++) out[i] = (float) b.getDouble(8 * i); }
            case "INT8" -> { for (int i = 0; i < count; i++) out[i] = b.get(i); }
            case "UINT8" -> { for (int i = 0; i < count; i++) out[i] = b.get(i) & 0xff; }
            case "INT16" -> { for (int i = 0; i < count; i++) out[i] = b.getShort(2 * i); }
            case "UINT16" -> { for (int i = 0; i < count; i++) out[i] = b.getShort(2 * i) & 0xffff; }
            case "INT32" -> { for (int i = 0; i < count; i++) out[i] = b.getInt(4 * i); }
            case "UINT32" -> { for (int i = 0; i < count; i++) out[i] = b.getInt(4 * i) & 0xffffffffL; }
            case "INT64" -> { for (int i = 0; i < count; i++) out[i] = b.getLong(8 * i); }
            case "UINT64" -> { for (int i = 0; i < count; i++) out[i] = unsigned(b.getLong(8 * i)); }
            default -> throw new IllegalStateException(datatype);
        }
        return out;
    }

    private static float unsigned(long v) {
        return v >= 0 ? v : (float) (v >>> 1) * 2f;
    }

    /**
     * A JSON number as a value of {@code datatype}, as float32: integer types take whole numbers in their
     * range only, so a request that means something else is refused rather than rounded.
     */
    static float fromJson(String datatype, double v, String field) {
        return switch (datatype) {
            case "FP32", "FP16", "FP64" -> (float) v;
            case "INT8" -> (float) integral(v, -128, 127, datatype, field);
            case "UINT8" -> (float) integral(v, 0, 255, datatype, field);
            case "INT16" -> (float) integral(v, -32768, 32767, datatype, field);
            case "UINT16" -> (float) integral(v, 0, 65535, datatype, field);
            case "INT32" -> (float) integral(v, Integer.MIN_VALUE, Integer.MAX_VALUE, datatype, field);
            case "UINT32" -> (float) integral(v, 0, 4294967295.0, datatype, field);
            case "INT64" -> (float) integral(v, -9.223372036854776E18, 9.223372036854776E18, datatype, field);
            case "UINT64" -> (float) integral(v, 0, 1.8446744073709552E19, datatype, field);
            default -> {
                size(datatype, field);
                throw new IllegalStateException(datatype);
            }
        };
    }

    private static double integral(double v, double lo, double hi, String datatype, String field) {
        if (v != Math.rint(v) || v < lo || v > hi) throw InferenceError.invalid(field + ".data holds " + v + ", which is not a " + datatype + " value");
        return v;
    }
}
