package dev.silhouette.io;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.SkipException;
import org.testng.annotations.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.GZIPOutputStream;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.fail;

public class IdxTest {
    private static final Path FASHION_MNIST = Path.of("/usr/share/datasets/fashion-mnist");

    /** An IDX file: two zero bytes, the type byte, the rank, big-endian sizes, then the given data bytes. */
    private static byte[] idx(int type, int[] dims, byte[] data) {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * dims.length + data.length);
        b.put((byte) 0).put((byte) 0).put((byte) type).put((byte) dims.length);
        for (int d : dims) b.putInt(d);
        return b.put(data).array();
    }

    private static byte[] gzip(byte[] raw) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
            gz.write(raw);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    private static byte[] imageBytes() {
        byte[] pixels = new byte[2 * 2 * 3];
        for (int i = 0; i < pixels.length; i++) pixels[i] = (byte) (i * 23);   // reaches values above 127
        pixels[pixels.length - 1] = (byte) 255;
        return idx(0x08, new int[] {2, 2, 3}, pixels);
    }

    private static byte[] labelBytes() {
        return idx(0x08, new int[] {2}, new byte[] {9, 0});
    }

    private static Tensor images(byte[] file) throws IOException {
        return Idx.readImages(new ByteArrayInputStream(file), "test images");
    }

    private static int[] labels(byte[] file) throws IOException {
        return Idx.readLabels(new ByteArrayInputStream(file), "test labels");
    }

    private static void checkImages(Tensor images) {
        assertEquals(images.shape(), Shape.of(2, 1, 2, 3), "images become N x 1 x H x W");
        for (int i = 0; i < images.size(); i++) {
            float expected = (i == images.size() - 1 ? 255 : (i * 23) & 0xff) / 255f;
            assertEquals(images.data()[i], expected, 0f, "pixel " + i + ": expected " + expected + ", got " + images.data()[i]);
        }
    }

    @Test
    public void readsRawAndGzippedImagesAlike() throws IOException {
        checkImages(images(imageBytes()));
        checkImages(images(gzip(imageBytes())));
    }

    @Test
    public void readsRawAndGzippedLabelsAlike() throws IOException {
        assertEquals(labels(labelBytes()), new int[] {9, 0}, "raw labels");
        assertEquals(labels(gzip(labelBytes())), new int[] {9, 0}, "gzipped labels");
    }

    @Test
    public void readsFilesAndDatasets() throws IOException {
        Path dir = Files.createTempDirectory("idx-test");
        try {
            Path images = Files.write(dir.resolve("images-idx3-ubyte.gz"), gzip(imageBytes()));
            Path labels = Files.write(dir.resolve("labels-idx1-ubyte"), labelBytes());
            checkImages(Idx.readImages(images));
            assertEquals(Idx.readLabels(labels), new int[] {9, 0}, "labels from a path");
            Idx.Dataset data = Idx.Dataset.load(images, labels);
            checkImages(data.images());
            assertEquals(data.labels(), new int[] {9, 0}, "dataset labels");

            Path threeLabels = Files.write(dir.resolve("three-labels"), idx(0x08, new int[] {3}, new byte[] {1, 2, 3}));
            assertMentions(expectIdx(() -> Idx.Dataset.load(images, threeLabels)), images.toString(), threeLabels.toString(), "2 images", "3 labels");
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) Files.delete(p);
            }
            Files.delete(dir);
        }
    }

    @Test
    public void writesWhatItReadsBackAndTheFormatsBytes() throws IOException {
        byte[] pixels = new byte[3 * 5 * 7];
        new Random(2).nextBytes(pixels);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Idx.write(new Idx.Array(Idx.Type.UNSIGNED_BYTE, new int[] {3, 5, 7}, pixels), out);
        assertEquals(out.toByteArray(), idx(0x08, new int[] {3, 5, 7}, pixels), "magic, sizes, then the data");
        Tensor back = images(out.toByteArray());
        assertEquals(back.shape(), Shape.of(3, 1, 5, 7), "any image size");
        for (int i = 0; i < pixels.length; i++) assertEquals(back.data()[i], (pixels[i] & 0xff) / 255f, 0f);
        ByteArrayOutputStream bad = new ByteArrayOutputStream();
        IllegalArgumentException e = org.testng.Assert.expectThrows(IllegalArgumentException.class,
                () -> Idx.write(new Idx.Array(Idx.Type.INT, new int[] {2}, new byte[7]), bad));
        assertTrue(e.getMessage().contains("needs 8 data bytes, not 7"), e.getMessage());
        assertEquals(bad.size(), 0, "nothing written");
    }

    @Test
    public void readsEveryElementType() throws IOException {
        ByteBuffer shorts = ByteBuffer.allocate(6).putShort((short) -2).putShort((short) 300).putShort(Short.MAX_VALUE);
        ByteBuffer ints = ByteBuffer.allocate(8).putInt(-70000).putInt(Integer.MAX_VALUE);
        ByteBuffer floats = ByteBuffer.allocate(8).putFloat(1.5f).putFloat(-0.25f);
        ByteBuffer doubles = ByteBuffer.allocate(16).putDouble(Math.PI).putDouble(-1e300);
        Object[][] cases = {
            {0x08, new byte[] {(byte) 200, 7}, new double[] {200, 7}},
            {0x09, new byte[] {(byte) 200, 7}, new double[] {-56, 7}},
            {0x0B, shorts.array(), new double[] {-2, 300, Short.MAX_VALUE}},
            {0x0C, ints.array(), new double[] {-70000, Integer.MAX_VALUE}},
            {0x0D, floats.array(), new double[] {1.5, -0.25}},
            {0x0E, doubles.array(), new double[] {Math.PI, -1e300}},
        };
        for (Object[] c : cases) {
            int type = (int) c[0];
            double[] expected = (double[]) c[2];
            Idx.Array a = Idx.read(new ByteArrayInputStream(gzip(idx(type, new int[] {expected.length}, (byte[]) c[1]))), "type " + type);
            assertEquals(a.type().code(), type, "type byte");
            assertEquals(a.dims(), new int[] {expected.length}, "dims of type " + type);
            assertEquals(a.size(), expected.length, "size of type " + type);
            for (int i = 0; i < expected.length; i++) {
                assertEquals(a.get(i), expected[i], 0.0, "type 0x" + Integer.toHexString(type) + " value " + i + ": expected " + expected[i] + ", got " + a.get(i));
            }
        }
    }

    @Test
    public void readsTheFashionMnistTestSplit() throws IOException {
        Path images = FASHION_MNIST.resolve("t10k-images-idx3-ubyte.gz"), labels = FASHION_MNIST.resolve("t10k-labels-idx1-ubyte.gz");
        if (!Files.exists(images) || !Files.exists(labels)) {
            throw new SkipException("Fashion-MNIST test split not found at " + FASHION_MNIST + " (install the dataset-fashion-mnist package)");
        }
        Idx.Dataset data = Idx.Dataset.load(images, labels);
        assertEquals(data.images().shape(), Shape.of(10000, 1, 28, 28), "image tensor shape");
        assertEquals(data.labels().length, 10000, "label count");
        assertEquals(data.labels()[0], 9, "first label (an ankle boot)");
        int[] perClass = new int[10];
        for (int i = 0; i < data.labels().length; i++) {
            int label = data.labels()[i];
            assertTrue(label >= 0 && label <= 9, "label " + i + " is " + label + ", outside 0..9");
            perClass[label]++;
        }
        int[] thousandEach = new int[10];
        Arrays.fill(thousandEach, 1000);
        assertEquals(perClass, thousandEach, "the test split holds 1000 images of each class");
        float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
        for (float v : data.images().data()) {
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        assertEquals(min, 0f, "darkest pixel");
        assertEquals(max, 1f, "brightest pixel");
    }

    @Test
    public void rejectsWrongMagicAndType() {
        byte[] notIdx = imageBytes();
        notIdx[0] = 0x50;
        assertMentions(expectIdx(() -> images(notIdx)), "test images", "not an IDX file", "0x50");
        byte[] unknownType = imageBytes();
        unknownType[2] = 0x07;
        assertMentions(expectIdx(() -> images(unknownType)), "test images", "unknown IDX type byte 0x07");
        assertMentions(expectIdx(() -> images(idx(0x08, new int[0], new byte[1]))), "test images", "0 dimensions");
    }

    @Test
    public void rejectsWrongKindsOfArrays() {
        assertMentions(expectIdx(() -> images(labelBytes())), "test images", "3 dimensions", "[2]");
        assertMentions(expectIdx(() -> images(idx(0x0D, new int[] {1, 1, 1}, new byte[4]))), "test images", "unsigned bytes", "FLOAT");
        assertMentions(expectIdx(() -> labels(imageBytes())), "test labels", "1 dimension", "[2, 2, 3]");
        assertMentions(expectIdx(() -> labels(idx(0x0E, new int[] {1}, new byte[8]))), "test labels", "integers", "DOUBLE");
        assertMentions(expectIdx(() -> labels(idx(0x09, new int[] {2}, new byte[] {3, -4}))), "test labels", "label 1 is -4");
    }

    @Test
    public void rejectsDeclaredSizesAboveTheLimitBeforeAllocating() {
        assertMentions(expectIdx(() -> images(idx(0x08, new int[] {100000, 100000, 100000}, new byte[16]))),
                "test images", "limit of 2147483639 bytes", "Limit.TENSOR_BYTES");
        assertMentions(expectIdx(() -> Idx.read(new ByteArrayInputStream(idx(0x0E, new int[] {300_000_000}, new byte[16])), "doubles")),
                "doubles", "limit of 2147483639 bytes", "Limit.TENSOR_BYTES");
        assertMentions(expectIdx(() -> images(idx(0x08, new int[] {-1, 28, 28}, new byte[0]))), "test images", "4294967295", "int32 limit");
    }

    @Test
    public void rejectsTrailingBytes() {
        byte[] raw = imageBytes(), longer = Arrays.copyOf(raw, raw.length + 1);
        assertMentions(expectIdx(() -> images(longer)), "test images", "trailing bytes after the 12 data bytes");
        assertMentions(expectIdx(() -> images(gzip(longer))), "test images", "trailing bytes");
    }

    @Test
    public void everyTruncationIsRejected() {
        for (boolean gzipped : new boolean[] {false, true}) {
            byte[] file = gzipped ? gzip(imageBytes()) : imageBytes();
            for (int length = 0; length < file.length; length++) {
                byte[] cut = Arrays.copyOf(file, length);
                IdxException e = expectIdx(() -> images(cut));
                assertMentions(e, "test images");
                if (!gzipped || length < 2) assertMentions(e, "truncated");
            }
        }
    }

    /** Flipped bytes in gzipped data must read or fail with the format exception, never anything else. */
    @Test
    public void corruptedGzipNeverEscapesAsOtherExceptions() {
        byte[] file = gzip(imageBytes());
        Random random = new Random(7);
        for (int trial = 0; trial < 3000; trial++) {
            byte[] copy = file.clone();
            int at = random.nextInt(copy.length);
            copy[at] ^= (byte) (1 + random.nextInt(255));
            try {
                images(copy);
            } catch (IdxException expected) {
                assertMentions(expected, "test images");
            } catch (IOException | RuntimeException e) {
                throw new AssertionError("byte " + at + " of the gzipped file changed to " + (copy[at] & 0xff) + " gave " + e, e);
            }
        }
    }

    private interface Action {
        void run() throws IOException;
    }

    private static IdxException expectIdx(Action action) {
        try {
            action.run();
        } catch (IdxException e) {
            return e;
        } catch (IOException | RuntimeException e) {
            throw new AssertionError("expected IdxException but got " + e, e);
        }
        fail("expected IdxException but nothing was thrown");
        return null;
    }

    private static void assertMentions(Throwable e, String... fragments) {
        for (String f : fragments) {
            assertTrue(e.getMessage() != null && e.getMessage().contains(f), "message '" + e.getMessage() + "' should mention '" + f + "'");
        }
    }
}
