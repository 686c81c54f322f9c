package dev.silhouette.cli;

import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Whether a silhouette finds the item of a cluttered image: the share of its top pixels (the silhouette resized
 * nearest to the image, ranked by value, equal values by pixel index) that fall inside the item's box, the box
 * {@code silhouette data cluttered} writes. A silhouette blind to the item scores about the box's share of the canvas.
 */
final class Localisation {
    private Localisation() {}

    /** The share of pixels counted as the silhouette's top, as the measure asks: the top 20%. */
    static final double TOP = 0.2;

    /** An item's box on the canvas: columns [x, x + width), rows [y, y + height). */
    record Box(int x, int y, int width, int height) {}

    /**
     * @param chance the mean share of the canvas inside the boxes: what a silhouette blind to the item scores
     */
    record Result(int images, double top, double learned, double trainingFree, double noise, double chance) {}

    /** The boxes of a split's side file ({@code t10k-boxes.csv}), in image order; refuses a malformed file naming the line. */
    static List<Box> read(Path csv) {
        List<String> lines;
        try {
            lines = Files.readAllLines(csv);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + csv + ": " + e.getMessage(), e);
        }
        if (lines.isEmpty() || !lines.getFirst().startsWith("index,label,x,y,width,height")) {
            throw new IllegalArgumentException(csv + ": not a box file, the first line is not index,label,x,y,width,height,...");
        }
        List<Box> boxes = new java.util.ArrayList<>();
        for (int i = 1; i < lines.size(); i++) {
            String[] f = lines.get(i).split(",");
            try {
                if (f.length < 6 || Integer.parseInt(f[0]) != i - 1) throw new NumberFormatException("index " + (i - 1) + " expected");
                Box b = new Box(Integer.parseInt(f[2]), Integer.parseInt(f[3]), Integer.parseInt(f[4]), Integer.parseInt(f[5]));
                if (b.x() < 0 || b.y() < 0 || b.width() < 0 || b.height() < 0) throw new NumberFormatException("negative box");
                boxes.add(b);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(csv + " line " + (i + 1) + ": '" + lines.get(i) + "' is not index,label,x,y,width,height (" + e.getMessage() + ")");
            }
        }
        return boxes;
    }

    /** The share of image {@code image}'s top {@code top} silhouette pixels, at the image's {@code h x w}, inside its box. */
    static double share(Tensor silhouette, int image, int h, int w, Box box, double top) {
        int sh = silhouette.shape().h(), sw = silhouette.shape().w(), n = h * w;
        // Sort keys: the value's order (float bits made to sort as signed ints) above the reversed index, so the
        // last entries are the highest values and, among equal values, the lower indices.
        long[] keys = new long[n];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int bits = Float.floatToIntBits(silhouette.get(image, 0, y * sh / h, x * sw / w));
                bits ^= (bits >> 31) & 0x7fffffff;
                keys[y * w + x] = (long) bits << 32 | (n - 1 - (y * w + x));
            }
        java.util.Arrays.sort(keys);
        int count = Math.max(1, (int) Math.round(top * n)), inside = 0;
        for (int r = n - count; r < n; r++) {
            int index = n - 1 - (int) (keys[r] & 0xffffffffL), y = index / w, x = index % w;
            if (x >= box.x() && x < box.x() + box.width() && y >= box.y() && y < box.y() + box.height()) inside++;
        }
        return (double) inside / count;
    }

    /** The sum of {@link #share} over a batch of silhouettes, whose first image is image {@code from} of the boxes. */
    static double sumOfShares(Tensor silhouettes, List<Box> boxes, int from, int h, int w, double top) {
        double sum = 0;
        for (int i = 0; i < silhouettes.shape().n(); i++) sum += share(silhouettes, i, h, w, boxes.get(from + i), top);
        return sum;
    }

    /** The mean share of the canvas the boxes of the first {@code images} images cover. */
    static double chance(List<Box> boxes, int images, int h, int w) {
        double sum = 0;
        for (int i = 0; i < images; i++) {
            Box b = boxes.get(i);
            sum += (double) Math.min(b.width(), w) * Math.min(b.height(), h) / (h * w);
        }
        return sum / images;
    }
}
