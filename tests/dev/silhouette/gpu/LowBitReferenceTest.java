package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.RegionWidths;
import dev.silhouette.tensor.Window;
import dev.silhouette.quant.BitSerialConv;
import dev.silhouette.quant.Quantizers;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;

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
    public void codesAreTheLibrarysPactAtEachPixelsRegion() {
        RegionWidths widths = RegionWidths.of(RegionPolicy.parse("2:50,3:30,4:20"), new float[] {0.7f, 1.9f, 2.5f});
        Shape s = Shape.of(2, 5, 6, 7);
        Tensor x = LowBitReference.activations(s, 2.5f, 5);
        byte[] map = LowBitReference.namedMap("random", 2, 6, 7, 3, 11);
        int[] codes = LowBitReference.codes(x, map, widths);
        int[][] library = new int[3][];
        for (int r = 0; r < 3; r++) library[r] = Quantizers.pact(x, widths.bits()[r], widths.alphas()[r]).codes();
        for (int i = 0; i < codes.length; i++) {
            int r = map[i / (5 * 42) * 42 + i % 42];
            assertEquals(codes[i], library[r][i], "activation " + i + " (" + x.data()[i] + ") in region " + r);
        }
    }
}
