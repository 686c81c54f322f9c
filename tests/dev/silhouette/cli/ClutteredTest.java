package dev.silhouette.cli;

import dev.silhouette.io.Progress;
import org.testng.annotations.Test;

import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ForkJoinPool;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** The cluttered construction: where items and clutter go, what the pixels become, and that a seed fixes it all. */
public class ClutteredTest {
    private static final int SIZE = 60, ITEM = 28;

    /** Items whose every pixel is one value, a different one per item: a canvas pixel's value then says which item it came from. */
    private static Cluttered.Items constantItems(int n) {
        byte[] pixels = new byte[n * ITEM * ITEM];
        for (int k = 0; k < n; k++) java.util.Arrays.fill(pixels, k * ITEM * ITEM, (k + 1) * ITEM * ITEM, (byte) (20 * (k + 1)));
        return new Cluttered.Items(pixels, n, ITEM, ITEM, 0);
    }

    private static int at(byte[] canvases, int image, int y, int x) {
        return canvases[(image * SIZE + y) * SIZE + x] & 0xff;
    }

    private static boolean inFrame(Cluttered.Box b, int y, int x) {
        return x >= b.frameX() && x < b.frameX() + ITEM && y >= b.frameY() && y < b.frameY() + ITEM;
    }

    @Test
    public void clutterComesFromOtherItemsInPiecesOfEightByEight() {
        int n = 12, pieces = 3;
        Cluttered.Items items = constantItems(n);
        Cluttered.Split s = Cluttered.compose(items, new Cluttered.Settings(SIZE, pieces, Cluttered.PIECE, 5), Progress.none());
        assertEquals(s.pixels().length, n * SIZE * SIZE);
        int withClutterOutside = 0;
        for (int i = 0; i < n; i++) {
            Cluttered.Box b = s.boxes()[i];
            int own = 20 * (i + 1);
            // The item fills its frame, so its tight box is the frame, inside the canvas.
            assertEquals(new int[] {b.x(), b.y(), b.width(), b.height()}, new int[] {b.frameX(), b.frameY(), ITEM, ITEM}, "item " + i);
            assertTrue(b.frameX() >= 0 && b.frameY() >= 0 && b.frameX() + ITEM <= SIZE && b.frameY() + ITEM <= SIZE, b.toString());
            int outside = 0;
            for (int y = 0; y < SIZE; y++)
                for (int x = 0; x < SIZE; x++) {
                    int v = at(s.pixels(), i, y, x);
                    if (inFrame(b, y, x)) {
                        assertTrue(v >= own, "item " + i + " at " + x + "," + y + ": maximum with the item's " + own + " gave " + v);
                    } else if (v != 0) {
                        outside++;
                        assertTrue(v != own && v % 20 == 0 && v <= 20 * n, "item " + i + ": clutter pixel " + v + " is not from another item");
                    }
                }
            assertTrue(outside <= pieces * 64, "item " + i + ": " + outside + " clutter pixels outside the frame, more than " + pieces + " pieces of 64");
            if (outside > 0) withClutterOutside++;
        }
        assertTrue(withClutterOutside >= n / 2, "clutter lands outside the item's frame on most canvases, here " + withClutterOutside + " of " + n);

        // One piece alone is one 8x8 square of one other item's value, clipped only by the item's frame.
        Cluttered.Split one = Cluttered.compose(items, new Cluttered.Settings(SIZE, 1, Cluttered.PIECE, 6), Progress.none());
        for (int i = 0; i < n; i++) {
            Set<Integer> values = new HashSet<>();
            int minX = SIZE, minY = SIZE, maxX = -1, maxY = -1;
            for (int y = 0; y < SIZE; y++)
                for (int x = 0; x < SIZE; x++) {
                    int v = at(one.pixels(), i, y, x);
                    if (v != 0 && v != 20 * (i + 1)) {
                        values.add(v);
                        minX = Math.min(minX, x);
                        maxX = Math.max(maxX, x);
                        minY = Math.min(minY, y);
                        maxY = Math.max(maxY, y);
                    }
                }
            assertTrue(values.size() <= 1, "item " + i + ": one piece, values " + values);
            if (!values.isEmpty()) assertTrue(maxX - minX < 8 && maxY - minY < 8, "item " + i + ": the piece spans " + (maxX - minX + 1) + "x" + (maxY - minY + 1));
        }
    }

    @Test
    public void realItemsKeepTheirPixelsTheirBoxAndTheMeanIntensityBound() {
        FashionMnist test = FashionMnist.testSplit(null);
        int n = 300, pieces = 4;
        byte[] source = java.util.Arrays.copyOf(test.pixelBytes(), n * ITEM * ITEM);
        Cluttered.Items items = new Cluttered.Items(source, n, ITEM, ITEM, 1);

        // Without clutter the canvas is the item moved: the same pixels at the frame, zero elsewhere.
        Cluttered.Split plain = Cluttered.compose(items, new Cluttered.Settings(SIZE, 0, Cluttered.PIECE, 2), Progress.none());
        for (int i = 0; i < n; i++) {
            Cluttered.Box b = plain.boxes()[i];
            long itemSum = 0, canvasSum = 0;
            for (int k = 0; k < ITEM * ITEM; k++) itemSum += source[i * ITEM * ITEM + k] & 0xff;
            for (int k = 0; k < SIZE * SIZE; k++) canvasSum += plain.pixels()[i * SIZE * SIZE + k] & 0xff;
            assertEquals(canvasSum, itemSum, "item " + i + " moved whole");
            boolean[] edge = new boolean[4];   // left, right, top, bottom edges of the box each touch the item
            for (int y = 0; y < ITEM; y++)
                for (int x = 0; x < ITEM; x++) {
                    int v = source[i * ITEM * ITEM + y * ITEM + x] & 0xff;
                    assertEquals(at(plain.pixels(), i, b.frameY() + y, b.frameX() + x), v, "item " + i + " pixel " + x + "," + y);
                    if (v == 0) continue;
                    int cx = b.frameX() + x, cy = b.frameY() + y;
                    assertTrue(cx >= b.x() && cx < b.x() + b.width() && cy >= b.y() && cy < b.y() + b.height(), "item " + i + ": pixel outside its box " + b);
                    edge[0] |= cx == b.x();
                    edge[1] |= cx == b.x() + b.width() - 1;
                    edge[2] |= cy == b.y();
                    edge[3] |= cy == b.y() + b.height() - 1;
                }
            assertEquals(edge, new boolean[] {true, true, true, true}, "item " + i + ": box " + b + " is the tightest");
        }

        Cluttered.Split cluttered = Cluttered.compose(items, new Cluttered.Settings(SIZE, pieces, Cluttered.PIECE, 2), Progress.none());
        long sourceSum = 0, canvasSum = 0, clutterPixels = 0;
        for (byte v : source) sourceSum += v & 0xff;
        for (byte v : cluttered.pixels()) canvasSum += v & 0xff;
        for (int i = 0; i < n; i++) {
            Cluttered.Box b = cluttered.boxes()[i];
            assertEquals(b, plain.boxes()[i], "the seed places item " + i + " where it goes without clutter too");
            for (int y = 0; y < SIZE; y++)
                for (int x = 0; x < SIZE; x++) {
                    int v = at(cluttered.pixels(), i, y, x);
                    if (inFrame(b, y, x)) {
                        assertTrue(v >= (source[i * ITEM * ITEM + (y - b.frameY()) * ITEM + x - b.frameX()] & 0xff), "maximum keeps the item");
                    } else if (v != 0) {
                        clutterPixels++;
                    }
                }
        }
        // Maximum only adds: at least the items' ink, at most that plus every piece at full white.
        assertTrue(canvasSum >= sourceSum && canvasSum <= sourceSum + (long) n * pieces * 64 * 255, canvasSum + " against the items' " + sourceSum);
        double mean = canvasSum / 255.0 / (n * SIZE * SIZE), itemsOnCanvas = sourceSum / 255.0 / (n * SIZE * SIZE);
        assertTrue(mean > itemsOnCanvas * 1.05, "clutter raises the mean intensity above the items' alone: " + mean + " vs " + itemsOnCanvas);
        // Fashion-MNIST items are about half ink, so a random 8x8 crop lights tens of pixels; some overlap or land in the frame.
        double perImage = (double) clutterPixels / n;
        assertTrue(perImage > 30 && perImage <= pieces * 64, perImage + " clutter pixels outside the frame per image");
    }

    @Test
    public void aSeedFixesTheOutputWhateverTheThreads() throws Exception {
        Cluttered.Items items = constantItems(40);
        Cluttered.Settings s = new Cluttered.Settings(SIZE, 4, Cluttered.PIECE, 11);
        Cluttered.Split one = new ForkJoinPool(1).submit(() -> Cluttered.compose(items, s, Progress.none())).get();
        Cluttered.Split four = new ForkJoinPool(4).submit(() -> Cluttered.compose(items, s, Progress.none())).get();
        assertEquals(four.pixels(), one.pixels());
        assertEquals(four.boxes(), one.boxes());
        Cluttered.Split other = Cluttered.compose(items, new Cluttered.Settings(SIZE, 4, Cluttered.PIECE, 12), Progress.none());
        assertFalse(java.util.Arrays.equals(other.pixels(), one.pixels()), "another seed gives other canvases");
        // The split's id separates the streams: the test split is not the training split's placements again.
        Cluttered.Split otherSplit = Cluttered.compose(new Cluttered.Items(items.pixels(), 40, ITEM, ITEM, 1), s, Progress.none());
        assertFalse(java.util.Arrays.equals(otherSplit.pixels(), one.pixels()));
    }

    @Test
    public void refusesWhatCannotBeBuilt() {
        Cluttered.Items items = constantItems(3);
        assertTrue(expectThrows(IllegalArgumentException.class, () -> Cluttered.compose(items, new Cluttered.Settings(20, 1, 8, 0), Progress.none()))
                .getMessage().contains("--size 20 is smaller than the 28x28 items"));
        assertTrue(expectThrows(IllegalArgumentException.class, () -> Cluttered.compose(constantItems(1), new Cluttered.Settings(60, 1, 8, 0), Progress.none()))
                .getMessage().contains("other items"));
        assertTrue(expectThrows(IllegalArgumentException.class, () -> new Cluttered.Settings(60, -1, 8, 0)).getMessage().contains("--pieces -1"));
    }
}
