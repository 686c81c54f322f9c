package dev.silhouette.gpu;

import dev.silhouette.backend.cuda.RegionWidths;
import dev.silhouette.quant.BitSerialConv;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.List;

import static org.testng.Assert.fail;

/**
 * Quantize-and-pack against the CPU, word for word: RegionQuantizer.pactCode (round half to even, the
 * library's Quantizers.code) at each pixel's region, packed by
 * BitSerialConv.packActivations at the widest region's planes. Channels around word boundaries, named
 * region maps, every uniform width 1..8 and the policies 2:50,3:30,4:20 and 1:25,2:25,4:25,8:25.
 */
@Test(groups = "gpu")
public class QuantizePackKernelTest extends LowBitGpuTest {
    @DataProvider
    public Object[][] problems() {
        List<Object[]> cases = new ArrayList<>();
        int[] channels = {1, 3, 63, 64, 65, 130, 256};
        long seed = 1;
        for (int bits = 1; bits <= 8; bits++) {
            int c = channels[bits % channels.length];
            cases.add(new Object[] {"uniform", Shape.of(2, c, 5, 7), RegionWidths.uniform(bits, 1.5f + bits), null, seed++});
        }
        for (String policy : new String[] {"2:50,3:30,4:20", "1:25,2:25,4:25,8:25"}) {
            RegionPolicy p = RegionPolicy.parse(policy);
            float[] alphas = new float[p.regions().size()];
            for (int r = 0; r < alphas.length; r++) alphas[r] = 0.75f + r;
            RegionWidths widths = RegionWidths.of(p, alphas);
            for (String map : LowBitReference.MAP_NAMES) {
                for (int c : channels) {
                    Shape s = Shape.of(1 + (int) (seed % 3), c, 6, 9);
                    cases.add(new Object[] {map, s, widths, LowBitReference.namedMap(map, s.n(), s.h(), s.w(), widths.regions(), seed), seed++});
                }
            }
        }
        cases.add(new Object[] {"ResNet-18 layer2 input", Shape.of(4, 128, 28, 28), RegionWidths.of(RegionPolicy.parse("2:50,3:30,4:20"), new float[] {1, 2, 3}),
                LowBitReference.namedMap("random", 4, 28, 28, 3, 99), seed++});
        return cases.toArray(Object[][]::new);
    }

    @Test(dataProvider = "problems")
    public void packedCodesAreTheCpus(String name, Shape s, RegionWidths widths, byte[] map, long seed) {
        check(device(), name, s, widths, map, seed);
    }

    static void check(LowBitDevice device, String name, Shape s, RegionWidths widths, byte[] map, long seed) {
        Tensor x = LowBitReference.activations(s, widths.alphas()[widths.regions() - 1], seed);
        long[] expected = BitSerialConv.packActivations(LowBitReference.codes(x, map, widths), s, widths.planeBits());
        long[] actual = device.quantizePack(x, map, widths);
        String d = LowBitReference.firstDifference(expected, actual);
        if (d != null) fail(name + " " + s + " " + widths + ": packed word " + d);
    }
}
