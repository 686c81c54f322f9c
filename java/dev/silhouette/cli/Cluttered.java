package dev.silhouette.cli;

import dev.silhouette.io.Progress;

import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * The cluttered construction of Mnih et al. (2014, "Recurrent Models of Visual Attention", section 4.1, cluttered
 * translated MNIST) applied to any split of single-channel items: each item at a uniformly random place on a
 * blank square canvas, plus {@code pieces} clutter pieces, each a random {@code piece x piece} crop of another item
 * of the same split put at a random place, pixels combined by maximum.
 *
 * <p>Every image draws from its own random stream, seeded by (seed, split, index), so the output depends on the
 * seed alone and not on the number of threads that compose it.
 */
final class Cluttered {
    private Cluttered() {}

    /** Side of a clutter piece in the paper (8 pixels for its 60x60 and 100x100 canvases). */
    static final int PIECE = 8;

    record Settings(int size, int pieces, int piece, long seed) {
        Settings {
            if (size < 1 || size > 4096) throw new IllegalArgumentException("--size " + size + " must be between 1 and 4096");
            if (pieces < 0 || pieces > 1000) throw new IllegalArgumentException("--pieces " + pieces + " must be between 0 and 1000");
            if (piece < 1) throw new IllegalArgumentException("clutter pieces of " + piece + " pixels");
        }
    }

    /**
     * Items of one split: {@code n} images of {@code h x w} unsigned bytes, row-major, one after another.
     *
     * @param id distinguishes the splits' random streams (e.g. 0 for train, 1 for test)
     */
    record Items(byte[] pixels, int n, int h, int w, int id) {
        Items {
            if ((long) n * h * w != pixels.length) throw new IllegalArgumentException(n + " items of " + h + "x" + w + " need " + (long) n * h * w + " bytes, not " + pixels.length);
        }
    }

    /**
     * Where the item went on canvas {@code index}: {@code frameX, frameY} is the top-left corner of its {@code h x w}
     * frame; {@code x, y, width, height} the tightest box around its nonzero pixels (all 0 for a blank item).
     */
    record Box(int frameX, int frameY, int x, int y, int width, int height) {}

    /** The canvases ({@code n x size x size} bytes, in the items' order) and each item's box. */
    record Split(byte[] pixels, Box[] boxes) {}

    static Split compose(Items items, Settings s, Progress progress) {
        return compose(items, s, items.n(), progress);
    }

    /** The first {@code count} canvases of the split, as {@link #compose(Items, Settings, Progress)} makes them (clutter from all items). */
    static Split compose(Items items, Settings s, int count, Progress progress) {
        requireFits(items, s);
        if (count < 0 || count > items.n()) throw new IllegalArgumentException(count + " canvases asked of a split of " + items.n() + " items");
        int canvas = s.size() * s.size();
        byte[] out = new byte[count * canvas];
        Box[] boxes = new Box[count];
        IntStream.range(0, count).parallel().forEach(i -> {
            boxes[i] = composeOne(items, s, i, out, i * canvas);
            progress.step();
        });
        return new Split(out, boxes);
    }

    /** The split ids of the random streams: {@code data cluttered} composes the training split as 0 and the test split as 1. */
    static final int TRAIN = 0, TEST = 1;

    /** The first {@code n} items of a split as bytes; {@code id} tells the splits' random streams apart. */
    static Items items(FashionMnist split, int id, int n) {
        var shape = split.images().shape();
        if (shape.c() != 1) throw new IllegalArgumentException(split.source() + ": items must have one channel, not " + shape.c());
        return new Items(java.util.Arrays.copyOf(split.pixelBytes(), n * shape.h() * shape.w()), n, shape.h(), shape.w(), id);
    }

    /** Labelled cluttered images with each item's box, made in memory. */
    record Labelled(FashionMnist images, java.util.List<Localisation.Box> boxes) {}

    /**
     * The first {@code count} canvases of {@code split} cluttered with items of the whole split, exactly as {@code data cluttered}
     * writes them for the same settings and split id (the images read back from its files equal these).
     */
    static Labelled inMemory(FashionMnist split, int id, Settings s, int count, String source) {
        Items items = items(split, id, split.labels().length);
        Split c = compose(items, s, count, Progress.none());
        float[] pixels = new float[c.pixels().length];
        for (int i = 0; i < pixels.length; i++) pixels[i] = (c.pixels()[i] & 0xff) / 255f;
        var images = new dev.silhouette.tensor.Tensor(dev.silhouette.tensor.Shape.of(count, 1, s.size(), s.size()), pixels);
        java.util.List<Localisation.Box> boxes = new java.util.ArrayList<>();
        for (Box b : c.boxes()) boxes.add(new Localisation.Box(b.x(), b.y(), b.width(), b.height()));
        return new Labelled(new FashionMnist(images, java.util.Arrays.copyOf(split.labels(), count), source), boxes);
    }

    /** Refuses settings these items cannot be cluttered with (before any work), naming the limit. */
    static void requireFits(Items items, Settings s) {
        if (items.h() > s.size() || items.w() > s.size()) {
            throw new IllegalArgumentException("--size " + s.size() + " is smaller than the " + items.h() + "x" + items.w() + " items");
        }
        if (s.pieces() > 0 && (s.piece() > items.h() || s.piece() > items.w())) {
            throw new IllegalArgumentException("clutter pieces of " + s.piece() + "x" + s.piece() + " do not fit in " + items.h() + "x" + items.w() + " items");
        }
        if (s.pieces() > 0 && items.n() < 2) throw new IllegalArgumentException("clutter is cut from other items; a split of " + items.n() + " item has none");
        if ((long) items.n() * s.size() * s.size() > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(items.n() + " canvases of " + s.size() + "x" + s.size() + " exceed the largest array of one split");
        }
    }

    private static Box composeOne(Items items, Settings s, int index, byte[] out, int at) {
        // SplittableRandom mixes its seed, so neighbouring indices still get unrelated streams.
        SplittableRandom r = new SplittableRandom(s.seed() * 0x9E3779B97F4A7C15L + ((long) items.id() << 32) + index);
        int size = s.size(), h = items.h(), w = items.w(), itemBytes = h * w;
        int frameX = r.nextInt(size - w + 1), frameY = r.nextInt(size - h + 1);
        for (int p = 0; p < s.pieces(); p++) {
            int other = r.nextInt(items.n() - 1);
            if (other >= index) other++;
            int cropX = r.nextInt(w - s.piece() + 1), cropY = r.nextInt(h - s.piece() + 1);
            int toX = r.nextInt(size - s.piece() + 1), toY = r.nextInt(size - s.piece() + 1);
            for (int y = 0; y < s.piece(); y++)
                for (int x = 0; x < s.piece(); x++) {
                    maxInto(out, at + (toY + y) * size + toX + x, items.pixels()[other * itemBytes + (cropY + y) * w + cropX + x]);
                }
        }
        int left = w, top = h, right = -1, bottom = -1;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                byte v = items.pixels()[index * itemBytes + y * w + x];
                if (v == 0) continue;
                maxInto(out, at + (frameY + y) * size + frameX + x, v);
                left = Math.min(left, x);
                right = Math.max(right, x);
                top = Math.min(top, y);
                bottom = Math.max(bottom, y);
            }
        if (right < 0) return new Box(frameX, frameY, 0, 0, 0, 0);
        return new Box(frameX, frameY, frameX + left, frameY + top, right - left + 1, bottom - top + 1);
    }

    private static void maxInto(byte[] out, int i, byte v) {
        if ((v & 0xff) > (out[i] & 0xff)) out[i] = v;
    }
}
