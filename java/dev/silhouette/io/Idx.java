package dev.silhouette.io;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * The IDX format of MNIST and Fashion-MNIST: two zero bytes, a type byte, the number of dimensions,
 * big-endian int32 sizes, then the big-endian values. Gzipped input is recognised by its magic bytes,
 * so ".gz" and raw files read the same way. Declared sizes are checked against {@link Limit} (and, for
 * images and labels, the expected type and rank) before anything is allocated, and the data must end
 * exactly where the header says.
 */
public final class Idx {
    private static final int BUFFER_BYTES = 1 << 16;

    private Idx() {}

    /** The element types of the format, by their type byte. */
    public enum Type {
        UNSIGNED_BYTE(0x08, 1), SIGNED_BYTE(0x09, 1), SHORT(0x0B, 2), INT(0x0C, 4), FLOAT(0x0D, 4), DOUBLE(0x0E, 8);

        private final int code, bytes;

        Type(int code, int bytes) {
            this.code = code;
            this.bytes = bytes;
        }

        public int code() {
            return code;
        }

        public int bytes() {
            return bytes;
        }

        public boolean integral() {
            return this != FLOAT && this != DOUBLE;
        }

        private static Type of(int code) {
            for (Type t : values()) if (t.code == code) return t;
            return null;
        }
    }

    /** One IDX array: its type, dimensions and raw big-endian values (arrays compare by identity). */
    public record Array(Type type, int[] dims, byte[] data) {
        public int size() {
            return data.length / type.bytes();
        }

        /** The value at a flat index, exact for every type. */
        public double get(int index) {
            int at = index * type.bytes();
            ByteBuffer b = ByteBuffer.wrap(data);   // big-endian, as the format stores it
            return switch (type) {
                case UNSIGNED_BYTE -> data[index] & 0xff;
                case SIGNED_BYTE -> data[index];
                case SHORT -> b.getShort(at);
                case INT -> b.getInt(at);
                case FLOAT -> b.getFloat(at);
                case DOUBLE -> b.getDouble(at);
            };
        }
    }

    /** Images with their labels, one label per image. */
    public record Dataset(Tensor images, int[] labels) {
        public Dataset {
            if (images.shape().rank() != 4 || images.shape().n() != labels.length) {
                throw new IllegalArgumentException(images.shape() + " images do not match " + labels.length + " labels");
            }
        }

        /** The first {@code n} samples (all of them when there are fewer). */
        public Dataset first(int n) {
            return slice(0, Math.min(n, labels.length));
        }

        /** Samples {@code from} (inclusive) to {@code to} (exclusive). */
        public Dataset slice(int from, int to) {
            if (from < 0 || to > labels.length || from > to) throw new IllegalArgumentException("samples " + from + " to " + to + " of " + labels.length);
            return from == 0 && to == labels.length ? this : new Dataset(images.slice(from, to), java.util.Arrays.copyOfRange(labels, from, to));
        }

        public static Dataset load(Path images, Path labels) throws IOException {
            try (InputStream i = Files.newInputStream(images); InputStream l = Files.newInputStream(labels)) {
                return load(i, images.toString(), l, labels.toString());
            }
        }

        public static Dataset load(InputStream images, String imagesSource, InputStream labels, String labelsSource) throws IOException {
            Tensor x = readImages(images, imagesSource);
            int[] y = readLabels(labels, labelsSource);
            if (x.shape().n() != y.length) {
                throw new IdxException(imagesSource + " holds " + x.shape().n() + " images but " + labelsSource + " holds " + y.length + " labels");
            }
            return new Dataset(x, y);
        }
    }

    /** Unsigned-byte images of N x H x W as an N x 1 x H x W tensor in [0, 1] (value / 255). */
    public static Tensor readImages(InputStream in, String source) throws IOException {
        Array a = read(in, source, (type, dims) -> {
            if (type != Type.UNSIGNED_BYTE || dims.length != 3) {
                throw new IdxException(source + ": images must be unsigned bytes of 3 dimensions (N, H, W); the file holds "
                        + type + " of dimensions " + Arrays.toString(dims));
            }
            if (!Limit.IMAGE_SIDE.allows(dims[1]) || !Limit.IMAGE_SIDE.allows(dims[2])) {
                throw new IdxException(source + ": declares images of " + dims[1] + " x " + dims[2] + " pixels, " + Limit.IMAGE_SIDE.describe());
            }
        });
        byte[] raw = a.data();
        float[] pixels = new float[raw.length];
        for (int i = 0; i < raw.length; i++) pixels[i] = (raw[i] & 0xff) / 255f;
        return new Tensor(Shape.of(a.dims()[0], 1, a.dims()[1], a.dims()[2]), pixels);
    }

    public static Tensor readImages(Path path) throws IOException {
        try (InputStream in = Files.newInputStream(path)) {
            return readImages(in, path.toString());
        }
    }

    /** Class labels: one dimension of a non-negative integral type. */
    public static int[] readLabels(InputStream in, String source) throws IOException {
        Array a = read(in, source, (type, dims) -> {
            if (!type.integral() || dims.length != 1) {
                throw new IdxException(source + ": labels must be integers of 1 dimension; the file holds "
                        + type + " of dimensions " + Arrays.toString(dims));
            }
        });
        int[] labels = new int[a.size()];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = (int) a.get(i);
            if (labels[i] < 0) throw new IdxException(source + ": label " + i + " is " + labels[i] + ", below 0");
        }
        return labels;
    }

    public static int[] readLabels(Path path) throws IOException {
        try (InputStream in = Files.newInputStream(path)) {
            return readLabels(in, path.toString());
        }
    }

    public static Array read(Path path) throws IOException {
        try (InputStream in = Files.newInputStream(path)) {
            return read(in, path.toString());
        }
    }

    /** Writes {@code a} in the format {@link #read} reads (raw, not gzipped); the stream is not closed. */
    public static void write(Array a, java.io.OutputStream out) throws IOException {
        if (a.dims().length < 1 || a.dims().length > 255) throw new IllegalArgumentException("an IDX array has 1 to 255 dimensions, not " + a.dims().length);
        long elements = 1;
        for (int d : a.dims()) {
            if (d < 0) throw new IllegalArgumentException("IDX dimension " + d + " is negative");
            elements *= d;
        }
        if (elements * a.type().bytes() != a.data().length) {
            throw new IllegalArgumentException(a.type() + " " + Arrays.toString(a.dims()) + " needs " + elements * a.type().bytes() + " data bytes, not " + a.data().length);
        }
        ByteBuffer header = ByteBuffer.allocate(4 + 4 * a.dims().length);
        header.put((byte) 0).put((byte) 0).put((byte) a.type().code()).put((byte) a.dims().length);
        for (int d : a.dims()) header.putInt(d);
        out.write(header.array());
        out.write(a.data());
    }

    /** Any IDX array, raw or gzipped; the stream is read to its end but not closed. */
    public static Array read(InputStream raw, String source) throws IOException {
        return read(raw, source, (type, dims) -> { });
    }

    /** What a caller expects of the header, checked before the data is read (throws an {@link IdxException}). */
    private interface HeaderCheck {
        void check(Type type, int[] dims);
    }

    private static Array read(InputStream raw, String source, HeaderCheck expected) throws IOException {
        BufferedInputStream buffered = new BufferedInputStream(raw, BUFFER_BYTES);
        buffered.mark(2);
        boolean gzip = buffered.read() == 0x1f && buffered.read() == 0x8b;
        buffered.reset();
        try {
            return parse(gzip ? new BufferedInputStream(new GZIPInputStream(buffered, BUFFER_BYTES), BUFFER_BYTES) : buffered, source, expected);
        } catch (ZipException e) {
            throw new IdxException(source + ": corrupt gzip data (" + e.getMessage() + ")", e);
        } catch (EOFException e) {
            // Only the gzip decoder throws this; the parser itself reports short reads.
            throw new IdxException(source + ": gzip data ends early, the file is truncated (" + e.getMessage() + ")", e);
        }
    }

    private static Array parse(InputStream in, String source, HeaderCheck expected) throws IOException {
        byte[] magic = in.readNBytes(4);
        if (magic.length < 4) throw new IdxException(source + ": truncated, " + magic.length + " bytes is shorter than the 4-byte magic");
        if (magic[0] != 0 || magic[1] != 0) {
            throw new IdxException(source + ": not an IDX file, the magic starts with 0x%02x 0x%02x instead of two zero bytes"
                    .formatted(magic[0] & 0xff, magic[1] & 0xff));
        }
        Type type = Type.of(magic[2] & 0xff);
        if (type == null) {
            throw new IdxException(source + ": unknown IDX type byte 0x%02x; known: 0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e".formatted(magic[2] & 0xff));
        }
        int rank = magic[3] & 0xff;
        if (rank == 0) throw new IdxException(source + ": declares 0 dimensions");
        if (!Limit.RANK.allows(rank)) throw new IdxException(source + ": " + Limit.RANK.refusal("declares dimensions:", rank));
        byte[] sizes = in.readNBytes(4 * rank);
        if (sizes.length < 4 * rank) {
            throw new IdxException(source + ": truncated in the header, " + rank + " dimensions need " + 4 * rank + " size bytes, found " + sizes.length);
        }
        int[] dims = new int[rank];
        for (int i = 0; i < rank; i++) {
            dims[i] = ByteBuffer.wrap(sizes).getInt(4 * i);
            if (dims[i] < 0) throw new IdxException(source + ": dimension " + i + " is " + Integer.toUnsignedString(dims[i]) + ", above the int32 limit");
        }
        long bytes = type.bytes();
        for (int d : dims) {
            bytes *= d;   // stays below 2^62 thanks to the check after each step, so it cannot overflow
            if (!Limit.TENSOR_BYTES.allows(bytes)) {
                throw new IdxException(source + ": declares " + type + " " + Arrays.toString(dims) + ", more data bytes than fit: " + Limit.TENSOR_BYTES.describe());
            }
        }
        expected.check(type, dims);
        // readNBytes grows with the data actually present, so a lying header cannot force a huge allocation.
        byte[] data = in.readNBytes((int) bytes);
        if (data.length < bytes) {
            throw new IdxException(source + ": truncated, the header declares " + bytes + " data bytes for " + type + " "
                    + Arrays.toString(dims) + " but only " + data.length + " follow");
        }
        if (in.read() != -1) throw new IdxException(source + ": trailing bytes after the " + bytes + " data bytes the header declares");
        return new Array(type, dims, data);
    }
}
