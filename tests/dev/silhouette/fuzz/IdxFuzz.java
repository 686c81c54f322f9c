package dev.silhouette.fuzz;

import dev.silhouette.io.Idx;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.zip.GZIPOutputStream;

/**
 * IDX arrays, images and labels, plain and gzipped. The first byte picks the reader (bits 0-1: any
 * array, images, labels) and whether the rest is gzipped first (bit 2), so the header and data checks
 * are reached through the decompressor too; raw gzip bytes (corrupt streams) come in as plain input.
 */
public final class IdxFuzz {
    static final String SOURCE = "fuzzed.idx";

    private IdxFuzz() {}

    public static void fuzzerInitialize() {
        Findings.warmUp(IdxFuzz::fuzzerTestOneInput, "IdxFuzz");
    }

    public static void fuzzerTestOneInput(byte[] data) {
        if (data.length == 0) return;
        int mode = data[0] & 0xff;
        byte[] body = Arrays.copyOfRange(data, 1, data.length);
        if ((mode & 4) != 0) body = gzip(body);
        try {
            switch (mode & 3) {
                case 1 -> Idx.readImages(new ByteArrayInputStream(body), SOURCE);
                case 2 -> Idx.readLabels(new ByteArrayInputStream(body), SOURCE);
                default -> Idx.read(new ByteArrayInputStream(body), SOURCE);
            }
        } catch (IOException e) {
            throw new AssertionError("an in-memory stream failed: " + e, e);
        } catch (RuntimeException e) {
            Findings.refusal(e, SOURCE);
        }
    }

    static byte[] gzip(byte[] bytes) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream z = new GZIPOutputStream(out)) {
            z.write(bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }
}
