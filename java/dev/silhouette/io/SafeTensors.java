package dev.silhouette.io;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The safetensors format (what PyTorch users save): an 8-byte little-endian header length, a JSON
 * header mapping names to dtype, shape and [begin, end) offsets into the byte buffer that follows, then
 * the buffer. Reading validates everything before allocating; writing is atomic (temp file + move).
 */
public final class SafeTensors {
    /** Larger headers are refused: real ones are kilobytes, so this only guards against garbage. */
    public static final long MAX_HEADER_BYTES = 100L << 20;
    private static final String METADATA = "__metadata__";

    private SafeTensors() {}

    private enum DType {
        F32(4), F16(2), BF16(2), F64(8), I64(8), I32(4);
        final int bytes;

        DType(int bytes) {
            this.bytes = bytes;
        }
    }

    private record Entry(String name, DType dtype, Shape shape, long begin, long end) {}

    private record Parsed(Map<String, String> metadata, List<Entry> entries, long dataStart) {}

    public static Map<String, Tensor> read(Path path) {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            Parsed p = parse(ch, path);
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (Entry e : p.entries()) {
                ByteBuffer bytes = ByteBuffer.allocate(Math.toIntExact(e.end() - e.begin())).order(ByteOrder.LITTLE_ENDIAN);
                readFully(ch, bytes, p.dataStart() + e.begin(), path);
                bytes.flip();
                out.put(e.name(), new Tensor(e.shape(), decode(e.dtype(), bytes, e.shape().size())));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read safetensors file " + path + ": " + e.getMessage(), e);
        }
    }

    public static Map<String, String> readMetadata(Path path) {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            return parse(ch, path).metadata();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read safetensors file " + path + ": " + e.getMessage(), e);
        }
    }

    /** Writes float32 tensors in the given order; the target appears complete or not at all. */
    public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata) {
        JsonObject header = new JsonObject();
        if (!metadata.isEmpty()) {
            JsonObject meta = new JsonObject();
            metadata.forEach(meta::addProperty);
            header.add(METADATA, meta);
        }
        long offset = 0;
        for (var e : tensors.entrySet()) {
            if (e.getKey().equals(METADATA)) throw new SafeTensorsException("cannot write " + path + ": '" + METADATA + "' is reserved, not a tensor name");
            JsonObject t = new JsonObject();
            t.addProperty("dtype", "F32");
            JsonArray shape = new JsonArray();
            for (int d : e.getValue().shape().dims()) shape.add(d);
            t.add("shape", shape);
            JsonArray offsets = new JsonArray();
            offsets.add(offset);
            offset += 4L * e.getValue().size();
            offsets.add(offset);
            t.add("data_offsets", offsets);
            header.add(e.getKey(), t);
        }
        byte[] json = new Gson().toJson(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;   // keeps the data 8-byte aligned, as the reference writer does
        Path dir = path.toAbsolutePath().getParent();
        Path tmp = null;
        try {
            tmp = Files.createTempFile(dir, "." + path.getFileName() + ".", ".tmp");
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
                head.putLong(padded).put(json);
                while (head.hasRemaining()) head.put((byte) ' ');
                head.flip();
                while (head.hasRemaining()) ch.write(head);
                for (Tensor t : tensors.values()) {
                    ByteBuffer buf = ByteBuffer.allocate(4 * t.size()).order(ByteOrder.LITTLE_ENDIAN);
                    buf.asFloatBuffer().put(t.data());
                    while (buf.hasRemaining()) ch.write(buf);
                }
                ch.force(true);
            }
            Files.move(tmp, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            tmp = null;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write safetensors file " + path + ": " + e, e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // The write already failed and says so; a stray temp file is the lesser problem.
                }
            }
        }
    }

    private static Parsed parse(FileChannel ch, Path path) throws IOException {
        long size = ch.size();
        if (size < 8) throw bad(path, "is " + size + " bytes long, shorter than the 8-byte header length");
        ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, lenBuf, 0, path);
        long headerLength = lenBuf.flip().getLong();
        if (headerLength < 2 || headerLength > MAX_HEADER_BYTES || headerLength > size - 8) {
            throw bad(path, "declares a header of " + Long.toUnsignedString(headerLength) + " bytes; the file has " + (size - 8)
                    + " bytes after the length and headers are limited to " + MAX_HEADER_BYTES);
        }
        ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLength);
        readFully(ch, headerBuf, 8, path);
        JsonObject header;
        try {
            JsonElement parsed = JsonParser.parseString(new String(headerBuf.array(), StandardCharsets.UTF_8));
            if (!parsed.isJsonObject()) throw bad(path, "has a header that is not a JSON object");
            header = parsed.getAsJsonObject();
        } catch (JsonParseException e) {
            throw bad(path, "has a header that is not valid JSON (" + e.getMessage() + ")");
        }
        long dataStart = 8 + headerLength, dataLength = size - dataStart;
        Map<String, String> metadata = new LinkedHashMap<>();
        List<Entry> entries = new ArrayList<>();
        for (var field : header.entrySet()) {
            String name = field.getKey();
            if (name.equals(METADATA)) {
                if (!field.getValue().isJsonObject()) throw bad(path, "has __metadata__ that is not an object of strings");
                for (var m : field.getValue().getAsJsonObject().entrySet()) {
                    if (!m.getValue().isJsonPrimitive() || !m.getValue().getAsJsonPrimitive().isString()) {
                        throw bad(path, "has metadata '" + m.getKey() + "' that is not a string");
                    }
                    metadata.put(m.getKey(), m.getValue().getAsString());
                }
                continue;
            }
            entries.add(entry(path, name, field.getValue(), dataLength));
        }
        entries.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long expected = 0;
        for (Entry e : entries) {
            if (e.begin() != expected) {
                throw bad(path, "tensor '" + e.name() + "' starts at byte " + e.begin() + " of the data, expected " + expected
                        + (e.begin() < expected ? " (it overlaps the previous tensor)" : " (a gap precedes it)"));
            }
            expected = e.end();
        }
        if (expected != dataLength) {
            throw bad(path, "has " + dataLength + " data bytes but its tensors cover " + expected
                    + (dataLength > expected ? " (trailing bytes)" : " (the file is truncated)"));
        }
        return new Parsed(metadata, entries, dataStart);
    }

    private static Entry entry(Path path, String name, JsonElement value, long dataLength) {
        if (!value.isJsonObject()) throw bad(path, "tensor '" + name + "' is not described by an object");
        JsonObject o = value.getAsJsonObject();
        DType dtype;
        try {
            dtype = DType.valueOf(o.get("dtype").getAsString());
        } catch (RuntimeException e) {
            throw bad(path, "tensor '" + name + "' has dtype " + o.get("dtype") + "; supported: F32, F16, BF16, F64, I64, I32");
        }
        if (!(o.get("shape") instanceof JsonArray shapeJson)) throw bad(path, "tensor '" + name + "' has no shape array");
        int[] dims = new int[shapeJson.size()];
        long elements = 1;
        for (int i = 0; i < dims.length; i++) {
            long d = integer(path, name, "shape", shapeJson.get(i));
            if (d < 0 || d > Integer.MAX_VALUE) throw bad(path, "tensor '" + name + "' has dimension " + d + " at axis " + i);
            dims[i] = (int) d;
            elements *= d;
            if (elements > Integer.MAX_VALUE - 8) {
                throw bad(path, "tensor '" + name + "' has more than " + (Integer.MAX_VALUE - 8) + " elements, the limit of one tensor");
            }
        }
        if ((dtype == DType.I64 || dtype == DType.I32) && dims.length > 1) {
            throw bad(path, "tensor '" + name + "' is an integer tensor of rank " + dims.length + "; only scalar or vector counters are read");
        }
        if (!(o.get("data_offsets") instanceof JsonArray offsets) || offsets.size() != 2) {
            throw bad(path, "tensor '" + name + "' needs data_offsets [begin, end]");
        }
        long begin = integer(path, name, "data_offsets", offsets.get(0)), end = integer(path, name, "data_offsets", offsets.get(1));
        if (begin < 0 || end < begin || end > dataLength) {
            throw bad(path, "tensor '" + name + "' has data_offsets [" + begin + ", " + end + "] outside the " + dataLength + " data bytes");
        }
        if (end - begin != elements * dtype.bytes) {
            throw bad(path, "tensor '" + name + "' of shape " + java.util.Arrays.toString(dims) + " and dtype " + dtype + " needs "
                    + elements * dtype.bytes + " bytes but its offsets span " + (end - begin));
        }
        return new Entry(name, dtype, Shape.of(dims), begin, end);
    }

    private static long integer(Path path, String name, String field, JsonElement e) {
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) throw bad(path, "tensor '" + name + "' has a non-numeric " + field + " entry " + e);
        try {
            return e.getAsJsonPrimitive().getAsBigDecimal().longValueExact();
        } catch (ArithmeticException ex) {
            throw bad(path, "tensor '" + name + "' has " + field + " entry " + e + ", not a 64-bit integer");
        }
    }

    private static float[] decode(DType dtype, ByteBuffer b, int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = switch (dtype) {
                case F32 -> b.getFloat();
                case F16 -> Float.float16ToFloat(b.getShort());
                case BF16 -> Float.intBitsToFloat((b.getShort() & 0xffff) << 16);
                case F64 -> (float) b.getDouble();
                case I64 -> (float) b.getLong();
                case I32 -> (float) b.getInt();
            };
        }
        return out;
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position, Path path) throws IOException {
        long pos = position;
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos);
            if (n < 0) throw bad(path, "ends early at byte " + pos);
            pos += n;
        }
    }

    private static SafeTensorsException bad(Path path, String what) {
        return new SafeTensorsException("safetensors file " + path + " " + what);
    }
}
