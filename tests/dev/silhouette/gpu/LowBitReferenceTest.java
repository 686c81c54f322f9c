package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.PactRule;
import dev.silhouette.backend.cuda.RegionMaskKernel;
import dev.silhouette.backend.cuda.RegionWidths;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Window;
import dev.silhouette.quant.BitSerialConv;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/** The GPU tests' CPU answers, checked here on the CPU (not in the gpu group): properties they must have. */
public class LowBitReferenceTest {
    @Test
    public void regionAccumulatorsSumToTheWholeConvolution() {
        SplittableRandom rnd = new SplittableRandom(3);
        Shape xs = Shape.of(2, 67, 6, 5), ws = Shape.of(5, 67, 3, 3);
        Window win = Window.square(3, 1, 1);
        int[] x = LowBitReference.randomCodes(rnd, xs.size(), 4, false, false);
        int[] w = LowBitReference.randomCodes(rnd, ws.size(), 4, true, false);
        long[] whole = BitSerialConv.reference(x, xs, w, ws, win);
        for (String name : LowBitReference.MAP_NAMES) {
            byte[] map = LowBitReference.namedMap(name, 2, 6, 5, 3, 9);
            long[] acc = LowBitReference.regionAccumulators(x, xs, map, 3, w, ws, win);
            int nonZeroRegions = 0;
            boolean[] used = new boolean[3];
            for (int i = 0; i < whole.length; i++) {
                long sum = 0;
                for (int r = 0; r < 3; r++) {
                    sum += acc[i * 3 + r];
                    if (acc[i * 3 + r] != 0) used[r] = true;
                }
                assertEquals(sum, whole[i], name + ": output " + i);
            }
            for (boolean u : used) if (u) nonZeroRegions++;
            int expected = switch (name) {
                case "all-low", "all-high" -> 1;
                case "single pixel", "checkerboard" -> 2;
                default -> 3;
            };
            assertEquals(nonZeroRegions, expected, name + ": regions that contribute");
        }
    }

    @Test
    public void nearestThresholdThenResizeCopiesTheSourceRegion() {
        Tensor s = Tensor.uniform(Shape.of(2, 1, 7, 9), 0, 1, 4);
        double[] f = RegionPolicy.parse("2:50,3:30,4:20").cumulativeFractions();
        byte[] source = LowBitReference.regionMap(s, f, 7, 9, Op.Interpolate.Mode.NEAREST, RegionMaskKernel.Order.THRESHOLD_THEN_RESIZE);
        byte[] up = LowBitReference.regionMap(s, f, 21, 27, Op.Interpolate.Mode.NEAREST, RegionMaskKernel.Order.THRESHOLD_THEN_RESIZE);
        for (int n = 0; n < 2; n++)
            for (int y = 0; y < 21; y++)
                for (int x = 0; x < 27; x++) assertEquals(up[(n * 21 + y) * 27 + x], source[(n * 7 + y / 3) * 9 + x / 3], "pixel " + n + "," + y + "," + x);
        // Bilinear masks: every region that appears upsampled appears at the source too, and the top region survives.
        byte[] bilinear = LowBitReference.regionMap(s, f, 21, 27, Op.Interpolate.Mode.BILINEAR, RegionMaskKernel.Order.THRESHOLD_THEN_RESIZE);
        boolean top = false;
        for (byte b : bilinear) top |= b == 2;
        assertTrue(top, "the top 20% region survives bilinear upsampling");
    }

    @Test
    public void theTwoPactRulesDifferOnlyNearHalves() {
        RegionWidths widths = RegionWidths.uniform(3, 2.5f);
        Tensor x = LowBitReference.activations(Shape.of(1, 1, 100, 100), 2.5f, 5);
        int[] q = LowBitReference.codes(x, null, widths, PactRule.QUANTIZER), r = LowBitReference.codes(x, null, widths, PactRule.REGION);
        int differ = 0;
        for (int i = 0; i < q.length; i++) {
            float v = x.data()[i];
            assertTrue(q[i] >= 0 && q[i] <= 7 && r[i] >= 0 && r[i] <= 7, "codes in range at " + i);
            double position = Math.min(Math.max(v, 0), 2.5f) * 7 / 2.5;
            if (Float.isNaN(v)) assertEquals(q[i], 0, "NaN is code 0");
            if (Math.abs(position - Math.floor(position) - 0.5) > 1e-4 && !Float.isNaN(v)) assertEquals(q[i], r[i], "value " + v + " away from a half");
            if (q[i] != r[i]) differ++;
        }
        assertTrue(differ > 0, "the activations include exact halves, where the rules differ");
    }
}
