package dev.silhouette.io;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.io.StringReader;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The safetensors format (what PyTorch users save): an 8-byte little-endian header length N, N bytes of
 * UTF-8 JSON mapping each name to its dtype, shape and [begin, end) offsets into the byte buffer that
 * follows, then that buffer. Reading validates the whole header against the real file size before it
 * allocates anything (sizes against {@link Limit}); writing is atomic (temp file in the same folder, then a rename).
 */
public final class SafeTensors {
    private static final String METADATA = "__metadata__";
    private static final Pattern INTEGER = Pattern.compile("-?[0-9]+");
    /** Bytes moved per file read or write; a multiple of every dtype size. */
    private static final int CHUNK_BYTES = 1 << 20;

    private SafeTensors() {}

    /** Element types this reader understands; only F32 and F16 are written. */
    public enum DType {
        F32(4), F16(2), BF16(2), F64(8), I64(8), I32(4);

        private final int bytes;

        DType(int bytes) {
            this.bytes = bytes;
        }

        public int bytes() {
            return bytes;
        }
    }

    private record Entry(String name, DType dtype, Shape shape, long begin, long end) {}

    private record Header(Map<String, String> metadata, List<Entry> entries, long dataStart) {}

    /** All tensors as float32, in the order of their data in the file. */
    public static Map<String, Tensor> read(Path path) {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            Header header = parse(channel, path);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            // No bigger than the largest tensor: a small file is read without a megabyte of buffer.
            long largest = header.entries().stream().mapToLong(e -> e.end() - e.begin()).max().orElse(0);
            ByteBuffer chunk = ByteBuffer.allocate((int) Math.min(CHUNK_BYTES, largest)).order(ByteOrder.LITTLE_ENDIAN);
            for (Entry e : header.entries()) {
                float[] values = new float[e.shape().size()];
                long position = header.dataStart() + e.begin();
                int done = 0;
                while (done < values.length) {
                    int count = Math.min(values.length - done, chunk.capacity() / e.dtype().bytes());
                    chunk.clear().limit(count * e.dtype().bytes());
                    readFully(channel, chunk, position, path);
                    position += chunk.flip().remaining();
                    decode(e.dtype(), chunk, values, done, count);
                    done += count;
                }
                tensors.put(e.name(), new Tensor(e.shape(), values));
            }
            return tensors;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read safetensors file " + path + ": " + e, e);
        }
    }

    /** The string metadata of the header (empty when it has none); the whole header is validated. */
    public static Map<String, String> readMetadata(Path path) {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            return parse(channel, path).metadata();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read safetensors file " + path + ": " + e, e);
        }
    }

    /** Writes the tensors as F32 in map order; the target appears complete or is left as it was. */
    public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata) {
        write(path, tensors, metadata, DType.F32);
    }

    /**
     * Writes the tensors in map order stored as {@code storage} (F32 or F16). F16 halves the file; a
     * finite value outside its range (|x| > 65504) is refused rather than silently turned into infinity.
     */
    public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata, DType storage) {
        if (storage != DType.F32 && storage != DType.F16) {
            throw new SafeTensorsException("cannot write " + path + " as " + storage + ": only F32 and F16 are written");
        }
        byte[] json = headerJson(path, tensors, metadata, storage);
        int padded = (json.length + 7) / 8 * 8;   // keeps the buffer 8-byte aligned, as the reference writer does
        if (!Limit.SAFETENSORS_HEADER_BYTES.allows(padded)) {
            throw new SafeTensorsException("cannot write " + path + ": " + Limit.SAFETENSORS_HEADER_BYTES.refusal("its header would be", padded));
        }
        try {
            AtomicFiles.write(path, tmp -> {
                try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                    ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
                    head.putLong(padded).put(json);
                    while (head.hasRemaining()) head.put((byte) ' ');
                    writeFully(channel, head.flip());
                    ByteBuffer chunk = ByteBuffer.allocate(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
                    for (var e : tensors.entrySet()) writeTensor(channel, chunk, path, e.getKey(), e.getValue().data(), storage);
                    channel.force(true);
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write safetensors file " + path + ": " + e, e);
        }
    }

    private static byte[] headerJson(Path path, Map<String, Tensor> tensors, Map<String, String> metadata, DType storage) {
        JsonObject header = new JsonObject();
        if (!metadata.isEmpty()) {
            JsonObject meta = new JsonObject();
            metadata.forEach((key, value) -> {
                if (key == null || value == null) throw new SafeTensorsException("cannot write " + path + ": metadata " + key + " = " + value + " is not a pair of strings");
                meta.addProperty(key, value);
            });
            header.add(METADATA, meta);
        }
        long offset = 0;
        for (var e : tensors.entrySet()) {
            if (e.getKey() == null || e.getKey().equals(METADATA) || e.getValue() == null) {
                throw new SafeTensorsException("cannot write " + path + ": entry '" + e.getKey() + "' -> " + e.getValue()
                        + " is not a tensor with a name other than '" + METADATA + "'");
            }
            JsonObject t = new JsonObject();
            t.addProperty("dtype", storage.name());
            JsonArray shape = new JsonArray();
            for (int d : e.getValue().shape().dims()) shape.add(d);
            t.add("shape", shape);
            JsonArray offsets = new JsonArray();
            offsets.add(offset);
            offset += (long) storage.bytes() * e.getValue().size();
            offsets.add(offset);
            t.add("data_offsets", offsets);
            header.add(e.getKey(), t);
        }
        return new GsonBuilder().disableHtmlEscaping().create().toJson(header).getBytes(StandardCharsets.UTF_8);
    }

    private static void writeTensor(FileChannel channel, ByteBuffer chunk, Path path, String name, float[] values, DType storage) throws IOException {
        int perChunk = CHUNK_BYTES / storage.bytes();
        for (int from = 0; from < values.length; from += perChunk) {
            int to = Math.min(values.length, from + perChunk);
            chunk.clear();
            if (storage == DType.F32) {
                chunk.asFloatBuffer().put(values, from, to - from);
                chunk.limit(4 * (to - from));
            } else {
                for (int i = from; i < to; i++) {
                    short half = Float.floatToFloat16(values[i]);
                    if (Float.isFinite(values[i]) && Float.isInfinite(Float.float16ToFloat(half))) {
                        throw new SafeTensorsException("cannot write " + path + ": tensor '" + name + "' value " + values[i] + " at index " + i
                                + " is outside the F16 range of +-65504");
                    }
                    chunk.putShort(half);
                }
                chunk.flip();
            }
            writeFully(channel, chunk);
        }
    }

    private static Header parse(FileChannel channel, Path path) throws IOException {
        long size = channel.size();
        if (size < 8) throw bad(path, "only " + size + " bytes long, shorter than the 8-byte header length");
        ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(channel, lengthBytes, 0, path);
        long headerLength = lengthBytes.flip().getLong();
        if (!Limit.SAFETENSORS_HEADER_BYTES.allows(headerLength)) {
            // An unsigned 64-bit length: one with the top bit set is huge, not negative.
            throw bad(path, "the header length declares " + Long.toUnsignedString(headerLength) + " bytes, " + Limit.SAFETENSORS_HEADER_BYTES.describe());
        }
        if (headerLength > size - 8) {
            throw bad(path, "the header length says " + headerLength + " bytes but only " + (size - 8) + " bytes follow it");
        }
        ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
        readFully(channel, headerBytes, 8, path);
        long dataStart = 8 + headerLength, dataLength = size - dataStart;
        Map<String, String> metadata = new LinkedHashMap<>();
        List<Entry> entries = new ArrayList<>();
        for (var field : parseObject(path, headerBytes.flip()).entrySet()) {
            if (field.getKey().equals(METADATA)) metadata = metadata(path, field.getValue());
            else entries.add(entry(path, field.getKey(), field.getValue(), dataLength));
        }
        // The reference format requires the tensors to tile the buffer exactly, so sort by offset and walk it.
        entries.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long expected = 0;
        for (Entry e : entries) {
            if (e.begin() != expected) {
                throw bad(path, "tensor '" + e.name() + "' starts at data byte " + e.begin() + " but the previous tensor ends at " + expected
                        + (e.begin() < expected ? " (overlapping tensors)" : " (a gap between tensors)"));
            }
            expected = e.end();
        }
        if (expected != dataLength) {
            throw bad(path, (dataLength - expected) + " trailing bytes: the tensors cover " + expected + " of the " + dataLength + " data bytes");
        }
        return new Header(metadata, entries, dataStart);
    }

    /** Strict JSON (no comments, unquoted names or trailing text) with duplicate top-level names refused. */
    private static Map<String, JsonElement> parseObject(Path path, ByteBuffer bytes) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(bytes).toString();
        } catch (CharacterCodingException e) {
            throw bad(path, "the header is not valid UTF-8");
        }
        Map<String, JsonElement> fields = new LinkedHashMap<>();
        try {
            JsonReader reader = new JsonReader(new StringReader(text));
            reader.setStrictness(Strictness.STRICT);
            if (reader.peek() != JsonToken.BEGIN_OBJECT) throw bad(path, "the header is not a JSON object but " + reader.peek());
            reader.beginObject();
            while (reader.hasNext()) {
                String name = reader.nextName();
                if (fields.put(name, JsonParser.parseReader(reader)) != null) throw bad(path, "the header names tensor '" + name + "' twice");
            }
            reader.endObject();
            if (reader.peek() != JsonToken.END_DOCUMENT) throw bad(path, "the header has text after its JSON object");
        } catch (IOException | JsonParseException | IllegalStateException e) {
            // Gson's first line says where; the rest advises lenient parsing, which would not help here.
            String where = String.valueOf(e.getMessage()).lines().findFirst().orElse("").replace("Use JsonReader.setStrictness(Strictness.LENIENT) to accept ", "");
            throw bad(path, "the header is not valid JSON (" + where + ")");
        }
        return fields;
    }

    private static Map<String, String> metadata(Path path, JsonElement value) {
        Map<String, String> metadata = new LinkedHashMap<>();
        if (value.isJsonNull()) return metadata;
        if (!value.isJsonObject()) throw bad(path, METADATA + " is not an object of strings");
        for (var m : value.getAsJsonObject().entrySet()) {
            if (!(m.getValue() instanceof JsonPrimitive p) || !p.isString()) {
                throw bad(path, "metadata '" + m.getKey() + "' = " + m.getValue() + " is not a string");
            }
            metadata.put(m.getKey(), p.getAsString());
        }
        return metadata;
    }

    private static Entry entry(Path path, String name, JsonElement value, long dataLength) {
        String tensor = "tensor '" + name + "'";
        if (!(value instanceof JsonObject o)) throw bad(path, tensor + " is described by " + value + ", not an object");
        if (!(o.get("dtype") instanceof JsonPrimitive dtypeName) || !dtypeName.isString()) {
            throw bad(path, tensor + " has " + (o.has("dtype") ? "dtype " + o.get("dtype") + ", not a string" : "no dtype"));
        }
        DType dtype = Arrays.stream(DType.values()).filter(t -> t.name().equals(dtypeName.getAsString())).findFirst()
                .orElseThrow(() -> bad(path, tensor + " has unknown or unsupported dtype '" + dtypeName.getAsString()
                        + "'; supported: " + Arrays.toString(DType.values())));
        if (!(o.get("shape") instanceof JsonArray shapeJson)) throw bad(path, tensor + " has no shape array");
        if (!Limit.RANK.allows(shapeJson.size())) throw bad(path, Limit.RANK.refusal(tensor + " declares dimensions:", shapeJson.size()));
        int[] dims = new int[shapeJson.size()];
        long elements = 1;
        for (int i = 0; i < dims.length; i++) {
            long d = integer(path, tensor, "shape", shapeJson.get(i));
            if (d < 0) throw bad(path, tensor + " has negative dimension " + d + " at axis " + i);
            if (d > Integer.MAX_VALUE) throw bad(path, tensor + " has dimension " + d + " at axis " + i + ", above the limit of " + Integer.MAX_VALUE);
            // Checked after every axis, as Shape.of does; both factors stay below 2^31, so the product cannot overflow.
            elements *= d;
            if (!Limit.TENSOR_ELEMENTS.allows(elements)) {
                throw bad(path, tensor + " of shape " + shapeJson + " declares more elements than fit: " + Limit.TENSOR_ELEMENTS.describe());
            }
            dims[i] = (int) d;
        }
        if ((dtype == DType.I64 || dtype == DType.I32) && dims.length > 1) {
            throw bad(path, tensor + " is an integer tensor of rank " + dims.length + "; only rank 0 or 1 counters such as num_batches_tracked are read");
        }
        if (!(o.get("data_offsets") instanceof JsonArray offsets) || offsets.size() != 2) {
            throw bad(path, tensor + " has data_offsets " + o.get("data_offsets") + "; expected two integers [begin, end]");
        }
        long begin = integer(path, tensor, "data_offsets", offsets.get(0)), end = integer(path, tensor, "data_offsets", offsets.get(1));
        if (begin < 0 || end < begin) throw bad(path, tensor + " has data_offsets " + offsets + "; expected 0 <= begin <= end");
        if (end > dataLength) {
            throw bad(path, tensor + " has data_offsets " + offsets + " outside the " + dataLength + " data bytes (truncated file or wrong offsets)");
        }
        if (end - begin != elements * dtype.bytes()) {
            throw bad(path, tensor + " of shape " + shapeJson + " and dtype " + dtype + " needs " + elements * dtype.bytes()
                    + " bytes but its data_offsets " + offsets + " span " + (end - begin));
        }
        return new Entry(name, dtype, Shape.of(dims), begin, end);
    }

    private static long integer(Path path, String tensor, String field, JsonElement e) {
        if (!(e instanceof JsonPrimitive p) || !p.isNumber() || !INTEGER.matcher(p.getAsString()).matches()) {
            throw bad(path, tensor + " has " + field + " entry " + e + ", not an integer");
        }
        BigInteger value = new BigInteger(p.getAsString());
        if (value.bitLength() > 63) throw bad(path, tensor + " has " + field + " entry " + e + ", beyond the 64-bit range");
        return value.longValue();
    }

    private static void decode(DType dtype, ByteBuffer b, float[] out, int from, int count) {
        switch (dtype) {
            case F32 -> b.asFloatBuffer().get(out, from, count);
            case F16 -> { for (int i = from; i < from + count; i++) out[i] = Float.float16ToFloat(b.getShort()); }
            case BF16 -> { for (int i = from; i < from + count; i++) out[i] = Float.intBitsToFloat((b.getShort() & 0xffff) << 16); }
            case F64 -> { for (int i = from; i < from + count; i++) out[i] = (float) b.getDouble(); }
            case I64 -> { for (int i = from; i < from + count; i++) out[i] = b.getLong(); }
            case I32 -> { for (int i = from; i < from + count; i++) out[i] = b.getInt(); }
        }
    }

    private static void readFully(FileChannel channel, ByteBuffer buf, long position, Path path) throws IOException {
        long pos = position;
        while (buf.hasRemaining()) {
            int n = channel.read(buf, pos);
            if (n < 0) throw bad(path, "the file ends at byte " + pos + " while being read (was it truncated meanwhile?)");
            pos += n;
        }
    }

    private static void writeFully(FileChannel channel, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) channel.write(buf);
    }

    private static SafeTensorsException bad(Path path, String what) {
        return new SafeTensorsException("safetensors file " + path + ": " + what);
    }
}
