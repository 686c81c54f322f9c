package dev.silhouette.io;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.fail;

public class SafeTensorsTest {
    private Path dir;

    @BeforeClass
    public void createDir() throws IOException {
        dir = Files.createTempDirectory("safetensors-test");
    }

    @AfterClass(alwaysRun = true)
    public void deleteDir() throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }

    private static Map<String, Tensor> sampleTensors() {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("conv1.weight", Tensor.normal(Shape.of(4, 1, 3, 3), 0.5f, 1));
        tensors.put("scalar", new Tensor(Shape.of(), new float[] {-7.25f}));
        tensors.put("bn.bias", new Tensor(Shape.of(5), new float[] {0f, -0f, Float.MIN_VALUE, Float.MAX_VALUE, 1e-3f}));
        tensors.put("empty", Tensor.zeros(0, 3));
        tensors.put("fc.weight", Tensor.uniform(Shape.of(10, 16), -1, 1, 2));
        return tensors;
    }

    private static void assertSameTensors(Map<String, Tensor> actual, Map<String, Tensor> expected) {
        assertEquals(List.copyOf(actual.keySet()), List.copyOf(expected.keySet()), "tensor names in file order");
        for (var e : expected.entrySet()) {
            Tensor got = actual.get(e.getKey());
            assertEquals(got.shape(), e.getValue().shape(), "shape of " + e.getKey());
            assertSameValues(e.getKey(), got.data(), e.getValue().data());
        }
    }

    private static void assertSameValues(String name, float[] actual, float[] expected) {
        assertEquals(actual.length, expected.length, "length of " + name);
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(actual[i]) != Float.floatToRawIntBits(expected[i])) {
                fail(name + "[" + i + "]: expected " + expected[i] + ", got " + actual[i]);
            }
        }
    }

    /** A file in the reference layout: little-endian u64 header length, the JSON padded with spaces to 8 bytes, the data. */
    private static byte[] fileBytes(String json, byte[] data) {
        byte[] header = json.getBytes(StandardCharsets.UTF_8);
        int padded = (header.length + 7) / 8 * 8;
        ByteBuffer b = ByteBuffer.allocate(8 + padded + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(padded).put(header);
        while (b.position() < 8 + padded) b.put((byte) ' ');
        return b.put(data).array();
    }

    private static byte[] littleEndian(int bytes, java.util.function.Consumer<ByteBuffer> fill) {
        ByteBuffer b = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        fill.accept(b);
        assertFalse(b.hasRemaining(), "test data fills its buffer");
        return b.array();
    }

    private Path store(String name, byte[] bytes) throws IOException {
        return Files.write(dir.resolve(name), bytes);
    }

    @Test
    public void roundTripKeepsValuesShapesOrderAndMetadata() throws IOException {
        Map<String, Tensor> tensors = sampleTensors();
        Map<String, String> metadata = Map.of("format", "pt", "silhouette.model", "resnet <tiny> & \"quoted\" é");
        Path file = dir.resolve("round-trip.safetensors");
        SafeTensors.write(file, tensors, metadata);

        assertSameTensors(SafeTensors.read(file), tensors);
        assertEquals(SafeTensors.readMetadata(file), metadata, "metadata");
        ByteBuffer head = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        long headerLength = head.getLong();
        assertEquals(headerLength % 8, 0, "header length " + headerLength + " keeps the data 8-byte aligned");
        long dataBytes = tensors.values().stream().mapToLong(t -> 4L * t.size()).sum();
        assertEquals(Files.size(file), 8 + headerLength + dataBytes, "file size");
    }

    @Test
    public void emptyMapAndMetadataRoundTrip() throws IOException {
        Path file = dir.resolve("empty.safetensors");
        SafeTensors.write(file, Map.of(), Map.of());
        assertTrue(SafeTensors.read(file).isEmpty(), "no tensors");
        assertTrue(SafeTensors.readMetadata(file).isEmpty(), "no metadata");
    }

    @Test
    public void f16RoundTripIsExactForRepresentableValues() throws IOException {
        float[] values = {0f, 1f, -2f, 0.5f, 65504f, -65504f, 0x1p-24f, 1.5f, Float.POSITIVE_INFINITY, 3.140625f};
        Map<String, Tensor> tensors = Map.of("half", new Tensor(Shape.of(2, 5), values));
        Path file = dir.resolve("f16.safetensors");
        SafeTensors.write(file, tensors, Map.of(), SafeTensors.DType.F16);
        assertSameTensors(SafeTensors.read(file), tensors);
        assertTrue(new String(Files.readAllBytes(file), StandardCharsets.UTF_8).contains("\"dtype\":\"F16\""), "header names F16");
        assertEquals(Files.size(file), 8 + ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN).getLong() + 2L * values.length,
                "two bytes per value");
    }

    @Test
    public void f16RefusesValuesOutsideItsRange() {
        Path file = dir.resolve("f16-overflow.safetensors");
        var e = expectThrows(SafeTensorsException.class,
                () -> SafeTensors.write(file, Map.of("big", new Tensor(Shape.of(3), new float[] {1f, 70000f, 2f})), Map.of(), SafeTensors.DType.F16));
        assertMentions(e, "'big'", "70000", "index 1", "65504");
        assertFalse(Files.exists(file), "no file after a failed write");
    }

    /** Bytes laid out exactly as Python's safetensors.torch.save_file writes them (keys not in offset order). */
    @Test
    public void readsReferenceLayoutWithEveryDtype() throws IOException {
        String json = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[56,64]},"
                + "\"w32\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                + "\"w64\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[16,32]},"
                + "\"steps\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[32,40]},"
                + "\"h16\":{\"dtype\":\"F16\",\"shape\":[1,4],\"data_offsets\":[40,48]},"
                + "\"b16\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[48,56]}}";
        byte[] data = littleEndian(64, b -> {
            b.putFloat(1.5f).putFloat(-2f).putFloat(0.1f).putFloat(1e30f);
            b.putDouble(Math.PI).putDouble(-1e-3);
            b.putInt(7).putInt(-3);
            b.putShort((short) 0x3C00).putShort((short) 0xC000).putShort((short) 0x7BFF).putShort((short) 0x0001);   // 1, -2, 65504, 2^-24
            b.putShort((short) 0x3F80).putShort((short) 0xC060).putShort((short) 0x4049).putShort((short) 0xFF80);   // 1, -3.5, 3.140625, -inf
            b.putLong(1234);
        });
        Path file = store("reference.safetensors", fileBytes(json, data));

        Map<String, Tensor> read = SafeTensors.read(file);
        assertEquals(List.copyOf(read.keySet()), List.of("w32", "w64", "steps", "h16", "b16", "bn.num_batches_tracked"), "order of the data");
        assertEquals(read.get("w32").shape(), Shape.of(2, 2), "w32 shape");
        assertSameValues("w32", read.get("w32").data(), new float[] {1.5f, -2f, 0.1f, 1e30f});
        assertSameValues("w64", read.get("w64").data(), new float[] {(float) Math.PI, -1e-3f});
        assertSameValues("steps", read.get("steps").data(), new float[] {7, -3});
        assertEquals(read.get("h16").shape(), Shape.of(1, 4), "h16 shape");
        assertSameValues("h16", read.get("h16").data(), new float[] {1f, -2f, 65504f, 0x1p-24f});
        assertSameValues("b16", read.get("b16").data(), new float[] {1f, -3.5f, 3.140625f, Float.NEGATIVE_INFINITY});
        assertEquals(read.get("bn.num_batches_tracked").shape().rank(), 0, "counter is a scalar");
        assertSameValues("bn.num_batches_tracked", read.get("bn.num_batches_tracked").data(), new float[] {1234});
        assertEquals(SafeTensors.readMetadata(file), Map.of("format", "pt"), "metadata");
    }

    @Test
    public void acceptsNullMetadataAndWhitespaceInHeader() throws IOException {
        String json = " {\n \"__metadata__\" : null ,\n \"a\" : {\"data_offsets\": [0, 4], \"shape\": [1], \"dtype\": \"F32\"} }\n";
        Path file = store("whitespace.safetensors", fileBytes(json, littleEndian(4, b -> b.putFloat(2.5f))));
        assertSameValues("a", SafeTensors.read(file).get("a").data(), new float[] {2.5f});
        assertTrue(SafeTensors.readMetadata(file).isEmpty(), "null metadata reads as none");
    }

    private static final String GOOD_ENTRY = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    private static Object[] corrupt(String what, byte[] bytes, String... fragments) {
        return new Object[] {what, bytes, fragments};
    }

    private static byte[] oneTensorFile(String entry, int dataBytes) {
        return fileBytes("{" + entry + "}", new byte[dataBytes]);
    }

    private static byte[] invalidUtf8Header() {
        byte[] json = "{\"xx\":{}}".getBytes(StandardCharsets.US_ASCII);
        json[2] = (byte) 0xC3;   // a UTF-8 lead byte followed by an ASCII byte is malformed
        return ByteBuffer.allocate(8 + json.length).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length).put(json).array();
    }

    private static byte[] withHeaderLength(long declared, int totalBytes) {
        return ByteBuffer.allocate(totalBytes).order(ByteOrder.LITTLE_ENDIAN).putLong(declared).array();
    }

    @org.testng.annotations.DataProvider
    public Object[][] corruptions() {
        return new Object[][] {
            corrupt("empty file", new byte[0], "0 bytes", "shorter than the 8-byte header length"),
            corrupt("7 bytes", new byte[7], "7 bytes", "shorter than the 8-byte header length"),
            corrupt("header longer than file", withHeaderLength(100, 50), "header length says 100 bytes", "only 42 bytes"),
            corrupt("header length with top bit set", withHeaderLength(-1, 16), "18446744073709551615", "limit of 100000000"),
            corrupt("invalid JSON", fileBytes("{\"a\": ", new byte[0]), "not valid JSON"),
            corrupt("JSON array", fileBytes("[1, 2]", new byte[0]), "not a JSON object"),
            corrupt("lenient JSON", fileBytes("{a: {}}", new byte[0]), "not valid JSON"),
            corrupt("text after the object", fileBytes("{} {}", new byte[0]), "not valid JSON", "column 5"),
            corrupt("invalid UTF-8", invalidUtf8Header(), "not valid UTF-8"),
            corrupt("duplicate name", oneTensorFile(GOOD_ENTRY + "," + GOOD_ENTRY, 8), "'a' twice"),
            corrupt("entry not an object", oneTensorFile("\"a\":[1]", 0), "tensor 'a'", "not an object"),
            corrupt("missing dtype", oneTensorFile("\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}", 8), "tensor 'a'", "no dtype"),
            corrupt("numeric dtype", oneTensorFile("\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}", 8), "tensor 'a'", "not a string"),
            corrupt("unknown dtype", oneTensorFile("\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}", 8), "tensor 'a'", "'Q7'", "F32"),
            corrupt("missing shape", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}", 8), "tensor 'a'", "no shape"),
            corrupt("negative dim", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}", 8), "tensor 'a'", "negative dimension -1 at axis 1"),
            corrupt("fractional dim", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}", 8), "tensor 'a'", "2.5", "not an integer"),
            corrupt("too many elements", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[65536,65536],\"data_offsets\":[0,8]}", 8),
                    "tensor 'a'", "limit of 2147483639 elements", "Limit.TENSOR_ELEMENTS"),
            corrupt("huge dim", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[0,99999999999],\"data_offsets\":[0,0]}", 0),
                    "tensor 'a'", "99999999999", "above the limit"),
            corrupt("dim beyond 64 bits", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}", 8),
                    "tensor 'a'", "64-bit"),
            corrupt("one offset", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}", 8), "tensor 'a'", "two integers"),
            corrupt("missing offsets", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[2]}", 8), "tensor 'a'", "two integers"),
            corrupt("string offset", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}", 8), "tensor 'a'", "not an integer"),
            corrupt("descending offsets", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}", 8), "tensor 'a'", "[8,0]", "begin <= end"),
            corrupt("negative offset", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}", 8), "tensor 'a'", "begin <= end"),
            corrupt("offsets outside buffer", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}", 16),
                    "tensor 'a'", "[0,400]", "outside the 16 data bytes"),
            corrupt("huge declared tensor", oneTensorFile("\"a\":{\"dtype\":\"F64\",\"shape\":[1000000000],\"data_offsets\":[0,8000000000]}", 8),
                    "tensor 'a'", "outside the 8 data bytes"),
            corrupt("length mismatch", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}", 16),
                    "tensor 'a'", "needs 12 bytes", "span 16"),
            corrupt("integer tensor of rank 2", oneTensorFile("\"a\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[0,8]}", 8),
                    "tensor 'a'", "rank 2"),
            corrupt("overlap", oneTensorFile(GOOD_ENTRY + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}", 12),
                    "tensor 'b'", "starts at data byte 4", "overlapping"),
            corrupt("gap", oneTensorFile(GOOD_ENTRY + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}", 20),
                    "tensor 'b'", "starts at data byte 12", "gap"),
            corrupt("gap before the first tensor", oneTensorFile("\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}", 8),
                    "tensor 'a'", "gap"),
            corrupt("trailing bytes", oneTensorFile(GOOD_ENTRY, 12), "4 trailing bytes", "cover 8 of the 12"),
            corrupt("metadata not an object", oneTensorFile("\"__metadata__\":\"x\"," + GOOD_ENTRY, 8), "__metadata__", "not an object"),
            corrupt("metadata value not a string", oneTensorFile("\"__metadata__\":{\"epochs\":3}," + GOOD_ENTRY, 8), "'epochs'", "not a string"),
        };
    }

    @Test(dataProvider = "corruptions")
    public void rejectsCorruption(String what, byte[] bytes, String[] fragments) throws IOException {
        Path file = store("corrupt-" + what.replace(' ', '-') + ".safetensors", bytes);
        for (var reader : List.<java.util.function.Function<Path, Object>>of(SafeTensors::read, SafeTensors::readMetadata)) {
            var e = expectThrows(SafeTensorsException.class, () -> reader.apply(file));
            assertMentions(e, file.toString());
            assertMentions(e, fragments);
        }
    }

    /** A sparse file, so the 100 MB limit is tested with a header length that the file could hold. */
    @Test
    public void rejectsHeaderAboveTheLimit() throws IOException {
        Path file = dir.resolve("huge-header.safetensors");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 150_000_000L));
            ch.write(ByteBuffer.allocate(1), 160_000_000L);
        }
        assertMentions(expectThrows(SafeTensorsException.class, () -> SafeTensors.read(file)), file.toString(), "150000000", "limit of 100000000");
        Files.delete(file);
    }

    @Test
    public void everyTruncationIsRejectedWithTheFormatException() throws IOException {
        Path good = dir.resolve("to-truncate.safetensors");
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("a", Tensor.uniform(Shape.of(2, 3), -1, 1, 3));
        tensors.put("b", new Tensor(Shape.of(), new float[] {4}));
        SafeTensors.write(good, tensors, Map.of("k", "v"));
        byte[] bytes = Files.readAllBytes(good);
        Path cut = dir.resolve("truncated.safetensors");
        for (int length = 0; length < bytes.length; length++) {
            Files.write(cut, Arrays.copyOf(bytes, length));
            try {
                SafeTensors.read(cut);
                fail("a file cut to " + length + " of " + bytes.length + " bytes was accepted");
            } catch (SafeTensorsException expected) {
                assertMentions(expected, cut.toString());
            }
        }
    }

    /** Random byte flips must give a valid read or the format exception, never another exception type. */
    @Test
    public void corruptedBytesNeverEscapeAsOtherExceptions() throws IOException {
        Path good = dir.resolve("to-flip.safetensors");
        SafeTensors.write(good, sampleTensors(), Map.of("k", "v"));
        byte[] bytes = Files.readAllBytes(good);
        int headerEnd = 8 + (int) ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        Random random = new Random(42);
        Path flipped = dir.resolve("flipped.safetensors");
        for (int trial = 0; trial < 2000; trial++) {
            byte[] copy = bytes.clone();
            int at = random.nextInt(headerEnd);
            copy[at] = (byte) random.nextInt(256);
            Files.write(flipped, copy);
            try {
                SafeTensors.read(flipped);
            } catch (SafeTensorsException expected) {
                assertMentions(expected, flipped.toString());
            } catch (RuntimeException e) {
                throw new AssertionError("byte " + at + " set to " + (copy[at] & 0xff) + " gave " + e, e);
            }
        }
    }

    @Test
    public void failedWriteKeepsTheOldFileAndLeavesNoTempFile() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("atomic"));
        Path file = folder.resolve("model.safetensors");
        SafeTensors.write(file, sampleTensors(), Map.of("version", "1"));
        byte[] before = Files.readAllBytes(file);
        assertEquals(listing(folder), List.of("model.safetensors"), "only the target after a good write");

        // Fails part-way through the data, after the temp file was created and partly written.
        Map<String, Tensor> failing = new LinkedHashMap<>(sampleTensors());
        failing.put("too-big-for-f16", new Tensor(Shape.of(2), new float[] {1f, 1e6f}));
        expectThrows(SafeTensorsException.class, () -> SafeTensors.write(file, failing, Map.of(), SafeTensors.DType.F16));
        assertEquals(Files.readAllBytes(file), before, "old file unchanged after a failed write");
        assertEquals(listing(folder), List.of("model.safetensors"), "no temp file after a failed write");

        expectThrows(SafeTensorsException.class, () -> SafeTensors.write(file, Map.of("__metadata__", Tensor.zeros(1)), Map.of()));
        assertEquals(Files.readAllBytes(file), before, "old file unchanged after a refused name");

        Path target = Files.createDirectories(folder.resolve("a-directory"));
        Files.writeString(target.resolve("inside"), "keep me");
        var e = expectThrows(UncheckedIOException.class, () -> SafeTensors.write(target, sampleTensors(), Map.of()));
        assertMentions(e, target.toString());
        assertTrue(Files.isDirectory(target), "the directory survives");
        assertEquals(Files.readString(target.resolve("inside")), "keep me", "the directory's content survives");
        assertEquals(listing(folder), List.of("a-directory", "model.safetensors"), "no temp file after a failed move");

        SafeTensors.write(file, Map.of("x", Tensor.zeros(3)), Map.of("version", "2"));
        assertEquals(SafeTensors.readMetadata(file), Map.of("version", "2"), "a later write replaces the file");
        assertEquals(listing(folder), List.of("a-directory", "model.safetensors"), "replacing leaves no temp file");
    }

    @Test
    public void writeUnderAFileFailsCleanly() throws IOException {
        Path blocker = Files.writeString(dir.resolve("a-file"), "not a folder");
        Path file = blocker.resolve("x.safetensors");
        assertMentions(expectThrows(UncheckedIOException.class, () -> SafeTensors.write(file, Map.of(), Map.of())), file.toString());
        assertEquals(Files.readString(blocker), "not a folder");
    }

    private static List<String> listing(Path folder) throws IOException {
        try (Stream<Path> files = Files.list(folder)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static <T extends Throwable> T expectThrows(Class<T> type, org.testng.Assert.ThrowingRunnable action) {
        try {
            action.run();
        } catch (Throwable t) {
            if (type.isInstance(t)) return type.cast(t);
            throw new AssertionError("expected " + type.getSimpleName() + " but got " + t, t);
        }
        throw new AssertionError("expected " + type.getSimpleName() + " but nothing was thrown");
    }

    private static void assertMentions(Throwable e, String... fragments) {
        for (String f : fragments) {
            assertTrue(e.getMessage() != null && e.getMessage().contains(f), "message '" + e.getMessage() + "' should mention '" + f + "'");
        }
    }
}
