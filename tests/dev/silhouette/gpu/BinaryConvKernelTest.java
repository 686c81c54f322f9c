package dev.silhouette.gpu;

import dev.silhouette.quant.BinaryNet;
import dev.silhouette.quant.BitSerialConv;
import dev.silhouette.quant.ChannelAffine;
import dev.silhouette.tensor.Shape;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.testng.Assert.fail;

/**
 * The binary convolution against the CPU, exactly: sums against the plain integer convolution of the +-1
 * values (BitSerialConv.reference, independent of the XNOR identity) and BinaryNet.xnorConv, the folded
 * BatchNorm against ChannelAffine.apply of BinaryNet.fold, and the frozen layer's signs against
 * BinaryNet.Frozen.apply packed by BinaryNet.packActivations. Same problem list as the packed kernel.
 */
@Test(groups = "gpu")
public class BinaryConvKernelTest extends LowBitGpuTest {
    @DataProvider
    public Object[][] problems() {
        List<Object[]> cases = new ArrayList<>();
        long seed = 0;
        for (PackedConvKernelTest.Conv c : PackedConvKernelTest.ODD) cases.add(new Object[] {c, seed++});
        for (PackedConvKernelTest.Conv c : PackedConvKernelTest.RESNET) cases.add(new Object[] {c, seed++});
        return cases.toArray(Object[][]::new);
    }

    static int[] signs(SplittableRandom rnd, int n) {
        int[] s = new int[n];
        for (int i = 0; i < n; i++) s[i] = rnd.nextBoolean() ? 1 : -1;
        return s;
    }

    @Test(dataProvider = "problems")
    public void sumsFoldedAndFrozenAreTheCpus(PackedConvKernelTest.Conv c, long seed) {
        check(device(), c, seed);
    }

    static void check(LowBitDevice device, PackedConvKernelTest.Conv c, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Shape xs = c.input(), ws = c.weights();
        int[] x = signs(rnd, xs.size()), w = signs(rnd, ws.size());
        long[] xPacked = BinaryNet.packActivations(x, xs), wPacked = BinaryNet.packWeights(w, ws);
        int[] d = BinaryNet.xnorConv(xPacked, xs, wPacked, ws, c.window());
        long[] plain = BitSerialConv.reference(x, xs, w, ws, c.window());
        for (int i = 0; i < d.length; i++) {
            if (d[i] != plain[i]) fail(c.name() + ": the CPU's XNOR sum " + i + " is " + d[i] + ", the integer convolution " + plain[i]);
        }
        int[] sums = device.binarySums(xs, ws, c.window(), xPacked, wPacked);
        for (int i = 0; i < d.length; i++) if (sums[i] != d[i]) fail(c.name() + ": sum " + i + " is " + sums[i] + ", the CPU gives " + d[i]);

        int out = c.outChannels();
        float[] alpha = PackedConvKernelTest.uniformFloats(rnd, out, 0.01, 0.2);
        float[] gamma = PackedConvKernelTest.uniformFloats(rnd, out, -1.5, 1.5);  // negative gammas exercise the frozen flip
        if (out > 2) gamma[out - 1] = 0f;                                           // and a constant channel
        ChannelAffine folded = BinaryNet.fold(alpha, gamma, PackedConvKernelTest.uniformFloats(rnd, out, -0.5, 0.5),
                PackedConvKernelTest.uniformFloats(rnd, out, -2, 2), PackedConvKernelTest.uniformFloats(rnd, out, 0.1, 3), 1e-5f);
        Shape outShape = Shape.of(xs.n(), out, c.window().outH(xs.h()), c.window().outW(xs.w()));
        PackedConvKernelTest.compareFloats(c.name() + " folded", folded.apply(d, outShape).data(),
                device.binaryFolded(xs, ws, c.window(), xPacked, wPacked, folded));

        BinaryNet.Frozen frozen = BinaryNet.freeze(folded);
        long[] expected = BinaryNet.packActivations(frozen.apply(d, outShape), outShape);
        String diff = LowBitReference.firstDifference(expected, device.binaryFrozen(xs, ws, c.window(), xPacked, wPacked, frozen));
        if (diff != null) fail(c.name() + " frozen: packed word " + diff);
    }
}
