package dev.silhouette.backend.cpu;

import dev.silhouette.graph.Op;
import dev.silhouette.graph.Op.Interpolate.Mode;
import dev.silhouette.graph.Op.RegionQuantize.MaskOrder;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.quant.RegionQuantizer;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertThrows;
import static org.testng.Assert.assertTrue;

/** Region masks on the edge cases of the spec, per-pixel quantization, DRQ masks and channel squeezes. */
public class RegionOpsTest {
    static final RegionPolicy MAIN = RegionPolicy.parse("2:50,3:30,4:20");

    static Tensor silhouette(int n, int h, int w, float... values) {
        return new Tensor(Shape.of(n, 1, h, w), values);
    }

    static int[] counts(byte[] map, int regions) {
        int[] c = new int[regions];
        for (byte b : map) c[b]++;
        return c;
    }

    @Test
    public void constantSilhouetteSplitsInPixelOrderAtThePolicyShares() {
        Tensor s = Tensor.filled(Shape.of(3, 1, 5, 7), 0.3f);
        // Resized to 10x3 (still constant): 30 pixels cut at ceil(15) = 15 and ceil(24) = 24, in raster order.
        for (Mode mode : Mode.values()) {
            byte[] map = RegionOps.regionMap(s, MAIN, 10, 3, mode, MaskOrder.RESIZE_THEN_THRESHOLD);
            for (int i = 0; i < map.length; i++) assertEquals(map[i], i % 30 < 15 ? 0 : i % 30 < 24 ? 1 : 2, mode + " pixel " + i);
        }
        // Split at 5x7 first: 35 pixels cut at ceil(17.5) = 18 and ceil(28) = 28. Nearest to 10x3 samples source
        // rows 0,0,1,1,..,4,4 and columns 0, 2, 4: indices 0..4 and 7..11 low, 14 and 16 low and 18 middle,
        // 21..25 middle, 28..32 top, each row twice.
        byte[] map = RegionOps.regionMap(s, MAIN, 10, 3, Mode.NEAREST, MaskOrder.THRESHOLD_THEN_RESIZE);
        assertEquals(counts(map, 3), new int[] {3 * 16, 3 * 8, 3 * 6});
    }

    @Test
    public void singleHotPixelIsTopAndTiesSplitInPixelOrder() {
        float[] v = new float[16];
        v[5] = 1f;
        byte[] map = RegionOps.regionMap(silhouette(1, 4, 4, v), MAIN, 4, 4, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD);
        // 16 pixels cut at ceil(8) = 8 and ceil(12.8) = 13. The 15 zeros rank in pixel order below the hot pixel:
        // pixels 0-4 and 6-8 low, 9-13 middle, 14, 15 and the hot pixel 5 top.
        assertEquals(map, new byte[] {0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2});
        // A strictly increasing background ranks the same way, so the map is the same.
        for (int i = 0; i < 16; i++) v[i] = i == 5 ? 1f : i * 1e-3f;
        assertEquals(RegionOps.regionMap(silhouette(1, 4, 4, v), MAIN, 4, 4, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD), map);
    }

    @Test
    public void checkerboardSplitsIntoItsTwoColours() {
        RegionPolicy half = RegionPolicy.parse("2:50,4:50");
        float[] v = new float[36];
        for (int i = 0; i < 36; i++) v[i] = ((i / 6 + i % 6) & 1);
        byte[] map = RegionOps.regionMap(silhouette(1, 6, 6, v), half, 6, 6, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD);
        for (int i = 0; i < 36; i++) assertEquals(map[i], (byte) v[i], "pixel " + i);
    }

    @Test
    public void imagesSmallerThanTheRegionCount() {
        RegionPolicy four = RegionPolicy.parse("1:25,2:25,3:25,4:25");
        // Two pixels cut at ceil(0.5) = 1, ceil(1) = 1 and ceil(1.5) = 2 (the pixel count: nothing above it).
        // Region 1 and region 3 are empty; 2 bits on average, within the policy's 2.5.
        byte[] map = RegionOps.regionMap(silhouette(1, 1, 2, 0.2f, 0.8f), four, 1, 2, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD);
        assertEquals(map, new byte[] {0, 2});
        // One pixel: every cut is at rank 1, so it takes the lowest region.
        map = RegionOps.regionMap(silhouette(2, 1, 1, 0.1f, 0.9f), four, 1, 1, Mode.BILINEAR, MaskOrder.THRESHOLD_THEN_RESIZE);
        assertEquals(map, new byte[] {0, 0});
        // One pixel upsampled to 3x3 is constant: cut at ceil(2.25) = 3, ceil(4.5) = 5, ceil(6.75) = 7.
        map = RegionOps.regionMap(silhouette(1, 1, 1, 0.5f), four, 3, 3, Mode.BILINEAR, MaskOrder.RESIZE_THEN_THRESHOLD);
        assertEquals(map, new byte[] {0, 0, 0, 1, 1, 2, 2, 3, 3});
    }

    @Test
    public void batchOfManyIsEachImageAlone() {
        SplittableRandom rnd = new SplittableRandom(7);
        int n = 9, h = 7, w = 5;
        float[] v = new float[n * h * w];
        for (int i = 0; i < v.length; i++) v[i] = (float) rnd.nextDouble() * (1 + i / (h * w));
        for (MaskOrder order : MaskOrder.values())
            for (Mode mode : Mode.values()) {
                byte[] all = RegionOps.regionMap(silhouette(n, h, w, v), MAIN, 14, 10, mode, order);
                for (int b = 0; b < n; b++) {
                    byte[] one = RegionOps.regionMap(silhouette(1, h, w, Arrays.copyOfRange(v, b * h * w, (b + 1) * h * w)), MAIN, 14, 10, mode, order);
                    assertEquals(Arrays.copyOfRange(all, b * 140, (b + 1) * 140), one, "image " + b + " " + order + " " + mode);
                }
            }
    }

    @Test
    public void nearestThresholdThenResizeCopiesTheSourceRegion() {
        SplittableRandom rnd = new SplittableRandom(3);
        float[] v = new float[2 * 28 * 28];
        for (int i = 0; i < v.length; i++) v[i] = (float) rnd.nextDouble();
        Tensor s = silhouette(2, 28, 28, v);
        byte[] source = RegionOps.regionMap(s, MAIN, 28, 28, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD);
        for (int size : new int[] {7, 14, 56}) {
            byte[] map = RegionOps.regionMap(s, MAIN, size, size, Mode.NEAREST, MaskOrder.THRESHOLD_THEN_RESIZE);
            for (int b = 0; b < 2; b++)
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++) {
                        int sy = (int) Math.floor(y * 28.0 / size), sx = (int) Math.floor(x * 28.0 / size);
                        assertEquals(map[(b * size + y) * size + x], source[(b * 28 + sy) * 28 + sx], "size " + size + " image " + b + " at " + y + "," + x);
                    }
        }
        // Upsampled 2x, splitting after the resize keeps the budget at the new size (3136 pixels cut at 1568
        // and ceil(2508.8) = 2509); splitting before replicates the 28x28 split (cut at 392 and 628) four times.
        byte[] after = RegionOps.regionMap(s, MAIN, 56, 56, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD);
        byte[] before = RegionOps.regionMap(s, MAIN, 56, 56, Mode.NEAREST, MaskOrder.THRESHOLD_THEN_RESIZE);
        assertEquals(counts(Arrays.copyOf(after, 3136), 3), new int[] {1568, 941, 627});
        assertEquals(counts(Arrays.copyOf(before, 3136), 3), new int[] {1568, 944, 624});
    }

    @Test
    public void bilinearResizeThenThresholdKeepsTheShares() {
        // A horizontal ramp stays a ramp under bilinear resizing: the columns split 50/30/20 by position.
        int size = 10;
        float[] v = new float[5 * 5];
        for (int i = 0; i < v.length; i++) v[i] = i % 5;
        byte[] map = RegionOps.regionMap(silhouette(1, 5, 5, v), RegionPolicy.parse("2:40,4:60"), size, size, Mode.BILINEAR, MaskOrder.RESIZE_THEN_THRESHOLD);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++) assertEquals(map[y * size + x], (byte) (x >= 4 ? 1 : 0), "pixel " + y + "," + x);
        // Bilinear masks after thresholding: a 2x2 checkerboard upsampled gives each pixel its nearest source's region.
        byte[] up = RegionOps.regionMap(silhouette(1, 2, 2, 0f, 1f, 1f, 0f), RegionPolicy.parse("2:50,4:50"), 4, 4, Mode.BILINEAR, MaskOrder.THRESHOLD_THEN_RESIZE);
        byte[] expected = {0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0};
        assertEquals(up, expected);
    }

    @Test
    public void regionQuantizeUsesEachPixelsWidthAndClip() {
        SplittableRandom rnd = new SplittableRandom(11);
        Shape xs = Shape.of(2, 3, 6, 6);
        float[] xv = new float[xs.size()];
        for (int i = 0; i < xv.length; i++) xv[i] = (float) (rnd.nextDouble() * 3 - 0.5);
        Tensor x = new Tensor(xs, xv);
        float[] sv = new float[2 * 9];
        for (int i = 0; i < sv.length; i++) sv[i] = (float) rnd.nextDouble();
        Tensor s = silhouette(2, 3, 3, sv);
        List<Float> alphas = List.of(1.0f, 1.5f, 2.5f);
        Op.RegionQuantize op = new Op.RegionQuantize(MAIN, alphas, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD, -1);
        Tensor y = RegionOps.regionQuantize(x, s, op);
        byte[] map = RegionOps.regionMap(s, MAIN, 6, 6, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD);
        float[] sum = new float[xv.length];
        for (int r = 0; r < 3; r++) {
            Tensor part = RegionOps.regionQuantize(x, s, new Op.RegionQuantize(MAIN, alphas, Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD, r));
            for (int i = 0; i < sum.length; i++) sum[i] += part.data()[i];
        }
        for (int i = 0; i < xv.length; i++) {
            int b = i / 108, pixel = i % 36;
            int r = map[b * 36 + pixel];
            int bits = MAIN.bits(r);
            float alpha = alphas.get(r);
            // Independent PACT: clip, then the nearest point of the grid alpha / (2^bits - 1).
            double step = alpha / ((1 << bits) - 1.0);
            double clipped = Math.min(Math.max(xv[i], 0), alpha);
            double expected = Math.rint(clipped / step) * step;
            assertEquals(y.data()[i], expected, 1e-6, "element " + i + " region " + r);
            assertEquals(sum[i], y.data()[i], 0f, "masked parts sum to the whole at " + i);
        }
    }

    @Test
    public void pactAndWeightsRoundHalfToEvenLikeTheLibrary() {
        // alpha 3 at 2 bits: step 1, so 1.5 rounds to 2 and 0.5 and 2.5 to 0 and 2 (the even codes), and the clip range bounds the codes.
        assertEquals(RegionQuantizer.pactCode(1.5f, 3f, 2), 2);
        assertEquals(RegionQuantizer.pactCode(0.5f, 3f, 2), 0);
        assertEquals(RegionQuantizer.pactCode(2.5f, 3f, 2), 2);
        assertEquals(RegionQuantizer.pactCode(0.51f, 3f, 2), 1);
        assertEquals(RegionQuantizer.pactCode(-4f, 3f, 2), 0);
        assertEquals(RegionQuantizer.pactCode(7f, 3f, 2), 3);
        assertEquals(RegionQuantizer.pactCode(Float.NaN, 3f, 2), 0);
        assertEquals(RegionQuantizer.pactValue(2.4f, 3f, 2), 2f);
        // The same codes as the library's PACT over a tensor.
        float[] xs = {-1f, 0f, 0.25f, 0.5f, 1.5f, 2.5f, 2.99f, 3f, 9f};
        int[] library = dev.silhouette.quant.Quantizers.pact(new Tensor(Shape.of(xs.length), xs), 2, 3f).codes();
        for (int i = 0; i < xs.length; i++) assertEquals(RegionQuantizer.pactCode(xs[i], 3f, 2), library[i], "x = " + xs[i]);
        // Weights: row max 7 at 4 bits gives scale 1; +-2.5 go to the even +-2, +-3.5 to +-4; an all-zero row stays zero.
        float[] w = RegionQuantizer.quantizeWeights(new float[] {7f, 2.5f, -2.5f, 3.5f, -3.5f, 0f, 0f, 0f, 0f, 0f}, 2, 4);
        assertEquals(w, new float[] {7f, 2f, -2f, 4f, -4f, 0f, 0f, 0f, 0f, 0f});
        assertThrows(IllegalArgumentException.class, () -> RegionQuantizer.quantizeWeights(new float[4], 2, 1));
    }

    @Test
    public void drqMarksBlocksByTheirMean() {
        // One channel 3x5, 2x2 blocks: tiles (0,0) (0,1) (0,2 partial 2x1) (1,*) partial rows of height 1.
        float[] v = {
                1, 1, 0, 0, 5,
                1, 0, 0, 1, 5,
                0, 0, 2, 2, 0};
        Tensor x = new Tensor(Shape.of(1, 1, 3, 5), v);
        assertEquals(RegionOps.drqBlockMeans(x, 2), new float[] {0.75f, 0.25f, 5f, 0f, 2f, 0f});
        byte[] map = RegionOps.drqMap(x, 2, 0.75f);
        byte[] expected = {
                1, 1, 0, 0, 1,
                1, 1, 0, 0, 1,
                0, 0, 1, 1, 0};
        assertEquals(map, expected);
        Tensor q = RegionOps.drqQuantize(x, new Op.DrqQuantize(2, 0.75f, 2, 8, 3f, 5f, -1));
        for (int i = 0; i < v.length; i++) {
            float want = expected[i] == 1 ? RegionQuantizer.pactValue(v[i], 5f, 8) : RegionQuantizer.pactValue(v[i], 3f, 2);
            assertEquals(q.data()[i], want, 0f, "element " + i);
        }
    }

    @Test
    public void channelSqueezes() {
        // Two images of three 1x2 channels.
        float[] v = {
                0, 4, 1, 1, 2, 0,
                3, 3, 3, 3, 3, 3};
        Tensor x = new Tensor(Shape.of(2, 3, 1, 2), v);
        Tensor max = RegionOps.channelSqueeze(x, new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MAX, 1));
        assertEquals(max.shape(), Shape.of(2, 1, 1, 2));
        // Image 0: max (2, 4) normalised to (0, 1); image 1 is constant and becomes zeros.
        assertEquals(max.data(), new float[] {0f, 1f, 0f, 0f});
        Tensor mean = RegionOps.channelSqueeze(x, new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MEAN, 1));
        assertEquals(mean.data(), new float[] {0f, 1f, 0f, 0f});
        // Top-1 by mean is channel 0 (mean 2): (0, 4). Top-1 by std is channel 0 as well (std 2 vs 0 and 1).
        // Top-2 by std: channels 0 and 2, mean (1, 2), normalised (0, 1).
        Tensor topStd = RegionOps.channelSqueeze(x, new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.TOP_K_BY_STD, 2));
        assertEquals(Arrays.copyOf(topStd.data(), 2), new float[] {0f, 1f});
        // Top-1 by mean: channel 0 (mean 2 against 1 and 1), (0, 4) normalised to (0, 1).
        Tensor topMean = RegionOps.channelSqueeze(new Tensor(Shape.of(1, 3, 1, 2), new float[] {0, 4, 1, 1, 2, 0}),
                new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.TOP_K_BY_MEAN, 1));
        assertEquals(topMean.data(), new float[] {0f, 1f});
        IllegalArgumentException e = org.testng.Assert.expectThrows(IllegalArgumentException.class,
                () -> RegionOps.channelSqueeze(x, new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.TOP_K_BY_MEAN, 4)));
        assertTrue(e.getMessage().contains("at most 3"), e.getMessage());
    }

    @Test
    public void noiseSilhouetteDependsOnTheImageNotTheBatch() {
        Tensor x = Tensor.uniform(Shape.of(3, 2, 4, 5), 0f, 1f, 9);
        Tensor all = RegionOps.noiseSilhouette(x, new Op.NoiseSilhouette(1));
        assertEquals(all.shape(), Shape.of(3, 1, 4, 5));
        for (int b = 0; b < 3; b++) {
            Tensor one = RegionOps.noiseSilhouette(x.slice(b, b + 1), new Op.NoiseSilhouette(1));
            assertEquals(one.data(), Arrays.copyOfRange(all.data(), b * 20, (b + 1) * 20), "image " + b);
        }
        for (float v : all.data()) assertTrue(v >= 0f && v < 1f, "value " + v);
        // Another seed, other noise.
        assertTrue(!Arrays.equals(all.data(), RegionOps.noiseSilhouette(x, new Op.NoiseSilhouette(2)).data()));
    }

    @Test
    public void badSettingsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new Op.RegionQuantize(MAIN, List.of(1f, 1f), Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD, -1));
        assertThrows(IllegalArgumentException.class, () -> new Op.RegionQuantize(MAIN, List.of(1f, 1f, 0f), Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD, -1));
        assertThrows(IllegalArgumentException.class, () -> new Op.RegionQuantize(MAIN, List.of(1f, 1f, 1f), Mode.NEAREST, MaskOrder.RESIZE_THEN_THRESHOLD, 3));
        assertThrows(IllegalArgumentException.class, () -> new Op.PactQuantize(9, 1f));
        assertThrows(IllegalArgumentException.class, () -> new Op.DrqQuantize(0, 0f, 4, 8, 1f, 1f, -1));
    }
}
