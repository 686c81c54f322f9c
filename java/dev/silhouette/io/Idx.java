package dev.silhouette.io;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.zip.GZIPInputStream;

/**
 * The IDX format of MNIST and Fashion-MNIST: two zero bytes, a type byte (0x08 = unsigned byte), the
 * number of dimensions, big-endian int32 sizes, then the values. Gzipped files are recognised by their
 * magic bytes, so ".gz" and raw files read the same way.
 */
public final class Idx {
    private static final int UNSIGNED_BYTE = 0x08;

    private Idx() {}

    /** Images as N x 1 x H x W floats in [0, 1] (value / 255). */
    public static Tensor readImages(InputStream in, String source) throws IOException {
        Array a = read(in, source);
        if (a.dims().length != 3) throw new IdxException(source + ": images need 3 dimensions (N, H, W), the file has " + a.dims().length);
        float[] data = new float[a.values().length];
        for (int i = 0; i < data.length; i++) data[i] = (a.values()[i] & 0xff) / 255f;
        return new Tensor(Shape.of(a.dims()[0], 1, a.dims()[1], a.dims()[2]), data);
    }

    public static int[] readLabels(InputStream in, String source) throws IOException {
        Array a = read(in, source);
        if (a.dims().length != 1) throw new IdxException(source + ": labels need 1 dimension, the file has " + a.dims().length);
        int[] labels = new int[a.values().length];
        for (int i = 0; i < labels.length; i++) labels[i] = a.values()[i] & 0xff;
        return labels;
    }

    /** An unsigned-byte IDX array: its dimensions and raw values. */
    public record Array(int[] dims, byte[] values) {}

    public static Array read(InputStream raw, String source) throws IOException {
        BufferedInputStream buffered = new BufferedInputStream(raw, 1 << 16);
        buffered.mark(2);
        int b0 = buffered.read(), b1 = buffered.read();
        buffered.reset();
        DataInputStream in = new DataInputStream(b0 == 0x1f && b1 == 0x8b ? new BufferedInputStream(new GZIPInputStream(buffered), 1 << 16) : buffered);
        try {
            int zero = in.readUnsignedShort(), type = in.readUnsignedByte(), rank = in.readUnsignedByte();
            if (zero != 0) throw new IdxException(source + ": not an IDX file (magic starts 0x" + Integer.toHexString(zero) + ", expected 0x0000)");
            if (type != UNSIGNED_BYTE) throw new IdxException(source + ": IDX type 0x" + Integer.toHexString(type) + " is not supported; MNIST-format data is 0x08 (unsigned byte)");
            if (rank < 1 || rank > 4) throw new IdxException(source + ": " + rank + " dimensions; 1 to 4 are supported");
            int[] dims = new int[rank];
            long count = 1;
            for (int i = 0; i < rank; i++) {
                dims[i] = in.readInt();
                if (dims[i] < 0) throw new IdxException(source + ": dimension " + i + " is " + Integer.toUnsignedString(dims[i]) + ", above the int32 limit");
                count *= dims[i];
                if (count > Integer.MAX_VALUE - 8) throw new IdxException(source + ": declares more than " + (Integer.MAX_VALUE - 8) + " values");
            }
            // readNBytes grows with the data actually present, so a lying header cannot force a huge allocation.
            byte[] values = in.readNBytes((int) count);
            if (values.length < count) {
                throw new IdxException(source + ": truncated; the header declares " + count + " values, the file holds " + values.length);
            }
            if (in.read() != -1) throw new IdxException(source + ": trailing bytes after the " + count + " declared values");
            return new Array(dims, values);
        } catch (EOFException e) {
            throw new IdxException(source + ": truncated inside the header");
        } catch (java.util.zip.ZipException e) {
            throw new IdxException(source + ": corrupt gzip data (" + e.getMessage() + ")");
        }
    }
}
