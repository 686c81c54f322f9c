package dev.silhouette.quant;

import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import org.testng.annotations.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.fail;

public class BitSerialConvTest {
    static final int SHAPES_PER_WIDTH_PAIR = 200;

    /** Awkward shapes first (channels around a word boundary, 1x1, kernel larger than the image), then random small ones. */
    @Test
    public void bitSerialEqualsIntegerConvolutionForEveryWidthPair() {
        SplittableRandom rnd = new SplittableRandom(42);
        int checked = 0;
        for (int wBits = 1; wBits <= 8; wBits++) {
            for (int aBits = 1; aBits <= 8; aBits++) {
                for (int s = 0; s < SHAPES_PER_WIDTH_PAIR; s++) {
                    int[] fixedChannels = {1, 63, 64, 65, 128};
                    int c = s < fixedChannels.length ? fixedChannels[s] : 1 + rnd.nextInt(s % 10 == 0 ? 130 : 20);
                    int n = 1 + rnd.nextInt(2), o = 1 + rnd.nextInt(3);
                    int h = 1 + rnd.nextInt(5), w = 1 + rnd.nextInt(5);
                    int k = 1 + rnd.nextInt(3), stride = 1 + rnd.nextInt(2), pad = rnd.nextInt(2), dilation = 1 + (s % 7 == 0 ? 1 : 0);
                    Window win = new Window(k, k, stride, stride, pad, pad, dilation, dilation);
                    if (win.outH(h) < 1 || win.outW(w) < 1) {
                        win = new Window(1, 1, stride, stride, pad, pad, 1, 1);
                        k = 1;
                    }
                    boolean signed = s % 2 == 1;
                    Shape xs = Shape.of(n, c, h, w), ws = Shape.of(o, c, k, k);
                    int[] x = randomCodes(rnd, xs.size(), aBits, false, s);
                    int[] wt = randomCodes(rnd, ws.size(), wBits, signed, s);
                    long[] expected = BitSerialConv.reference(x, xs, wt, ws, win);
                    long[] got = BitSerialConv.conv(BitSerialConv.packActivations(x, xs, aBits), xs, aBits,
                            BitSerialConv.packWeights(wt, ws, wBits, signed), ws, wBits, signed, win);
                    if (!Arrays.equals(expected, got)) {
                        int i = Arrays.mismatch(expected, got);
                        fail("W" + wBits + (signed ? "s" : "u") + "A" + aBits + " x" + xs + " w" + ws + " " + win + ": output " + i
                                + " is " + got[i] + ", integer convolution gives " + expected[i]);
                    }
                    checked++;
                }
            }
        }
        assertEquals(checked, 64 * SHAPES_PER_WIDTH_PAIR);
    }

    /** Uniform codes, except some shapes use only the extremes (all ones, most negative) to stress the sign plane. */
    private static int[] randomCodes(SplittableRandom rnd, int size, int bits, boolean signed, int shape) {
        int lo = signed ? -(1 << (bits - 1)) : 0, hi = signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
        int[] v = new int[size];
        for (int i = 0; i < size; i++) v[i] = shape % 5 == 2 ? (rnd.nextBoolean() ? lo : hi) : lo + rnd.nextInt(hi - lo + 1);
        return v;
    }

    @Test
    public void planesFollowTheDeclaredLayout() {
        // One pixel, 70 channels, 3 bits: channel 65 with code 5 (binary 101) sets bit 1 of word 1 in planes 0 and 2.
        int[] codes = new int[70];
        codes[65] = 5;
        long[] packed = BitSerialConv.packActivations(codes, Shape.of(1, 70, 1, 1), 3);
        PackedLayout.BitPlanes layout = new PackedLayout.BitPlanes(3, 70);
        assertEquals(packed.length, 3 * 2);
        assertEquals(packed[layout.index(0, 0, 1)], 1L << 1);
        assertEquals(packed[layout.index(0, 1, 1)], 0L);
        assertEquals(packed[layout.index(0, 2, 1)], 1L << 1);
        assertEquals(packed[layout.index(0, 0, 0)], 0L);
        // Signed -1 in 4 bits is 1111: all planes set.
        int[] w = {-1};
        long[] pw = BitSerialConv.packWeights(w, Shape.of(1, 1, 1, 1), 4, true);
        for (long word : pw) assertEquals(word, 1L);
    }

    @Test
    public void densePackingRoundTripsAndUsesTheDeclaredWordCount() {
        SplittableRandom rnd = new SplittableRandom(5);
        for (int bits = 1; bits <= 8; bits++) {
            PackedLayout.Dense dense = new PackedLayout.Dense(bits);
            for (boolean signed : new boolean[] {false, true}) {
                int[] codes = randomCodes(rnd, 1000, bits, signed, 0);
                long[] words = dense.pack(codes, signed);
                assertEquals(words.length, (1000 + 64 / bits - 1) / (64 / bits));
                assertEquals(dense.unpack(words, 1000, signed), codes, bits + " bits signed " + signed);
            }
        }
        assertEquals(new PackedLayout.Dense(4).pack(new int[] {1, 2, 15}, false)[0], 1L | 2L << 4 | 15L << 8);
    }

    @Test
    public void codesOutsideTheirWidthAreRefused() {
        var e = org.testng.Assert.expectThrows(IllegalArgumentException.class,
                () -> BitSerialConv.packActivations(new int[] {0, 4}, Shape.of(1, 2, 1, 1), 2));
        assertTrue(e.getMessage().contains("code 4 at index 1 does not fit 2 unsigned bits [0, 3]"), e.getMessage());
        org.testng.Assert.expectThrows(IllegalArgumentException.class, () -> new PackedLayout.BitPlanes(9, 4));
    }
}
