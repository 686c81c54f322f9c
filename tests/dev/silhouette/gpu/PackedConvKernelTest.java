package dev.silhouette.gpu;

import dev.silhouette.backend.cpu.Reference;
import dev.silhouette.backend.cuda.PackedConvKernel;
import dev.silhouette.backend.cuda.RegionWidths;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.quant.BitSerialConv;
import dev.silhouette.quant.ChannelAffine;
import dev.silhouette.quant.Gdrq;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.quant.RegionQuantizer;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.testng.Assert.fail;

/**
 * The packed low-bit convolution against the CPU, exactly: accumulators against BitSerialConv.reference
 * (the plain integer convolution; per region, over the pixels of that region), the GDRQ epilogue against
 * ChannelAffine.apply of Gdrq.fold, the region form against Reference.regionConv2d (accumulators and
 * combined values), and requantized outputs against RegionQuantizer.pactCode of those values packed by
 * the CPU. Problem list
 * (CUTLASS style): awkward shapes first (channels 1..130 around the word boundary, 1x1, strided,
 * dilated, kernels larger than the image, output channels around 32 and 64) at every one of the 64
 * (weight, activation) width pairs, then real ResNet-18 and ResNet-50 layers.
 */
@Test(groups = "gpu")
public class PackedConvKernelTest extends LowBitGpuTest {
    /** A convolution shape: input N x C x H x W, O filters, the window. */
    record Conv(String name, Shape input, int outChannels, Window window) {
        Shape weights() {
            return Shape.of(outChannels, input.c(), window.kernelH(), window.kernelW());
        }
    }

    static final Conv[] ODD = {
            new Conv("1x1, one channel", Shape.of(1, 1, 5, 5), 1, Window.square(1, 1, 0)),
            new Conv("3x3 pad 1, 3 channels", Shape.of(2, 3, 7, 6), 5, Window.square(3, 1, 1)),
            new Conv("3x3 stride 2, 63 channels", Shape.of(1, 63, 9, 9), 31, Window.square(3, 2, 1)),
            new Conv("3x3, 64 channels, 32 filters", Shape.of(2, 64, 6, 6), 32, Window.square(3, 1, 1)),
            new Conv("3x3, 65 channels, 33 filters", Shape.of(1, 65, 5, 7), 33, Window.square(3, 1, 0)),
            new Conv("5x5 dilation 2, 130 channels", Shape.of(1, 130, 9, 8), 65, new Window(5, 5, 1, 1, 4, 4, 2, 2)),
            new Conv("7x7 stride 2 pad 3", Shape.of(3, 3, 11, 13), 64, new Window(7, 7, 2, 2, 3, 3, 1, 1)),
            new Conv("kernel larger than the image", Shape.of(1, 17, 3, 2), 100, Window.square(5, 1, 2)),
            new Conv("1x3 rectangular", Shape.of(2, 20, 4, 9), 7, new Window(1, 3, 1, 2, 0, 1, 1, 1)),
    };

    /** Real layers at batch 1 (ResNet-18, ResNet-50 at 224 x 224). */
    static final Conv[] RESNET = {
            new Conv("resnet18 conv1", Shape.of(1, 3, 224, 224), 64, new Window(7, 7, 2, 2, 3, 3, 1, 1)),
            new Conv("resnet18 layer1 conv", Shape.of(1, 64, 56, 56), 64, Window.square(3, 1, 1)),
            new Conv("resnet18 layer2.0 conv1", Shape.of(1, 64, 56, 56), 128, Window.square(3, 2, 1)),
            new Conv("resnet18 layer2.0 downsample", Shape.of(1, 64, 56, 56), 128, Window.square(1, 2, 0)),
            new Conv("resnet18 layer3 conv", Shape.of(1, 256, 14, 14), 256, Window.square(3, 1, 1)),
            new Conv("resnet18 layer4 conv", Shape.of(1, 512, 7, 7), 512, Window.square(3, 1, 1)),
            new Conv("resnet50 layer1 reduce", Shape.of(1, 256, 56, 56), 64, Window.square(1, 1, 0)),
            new Conv("resnet50 layer1 expand", Shape.of(1, 64, 56, 56), 256, Window.square(1, 1, 0)),
            new Conv("resnet50 layer4 expand", Shape.of(1, 512, 7, 7), 2048, Window.square(1, 1, 0)),
    };

    @DataProvider
    public Object[][] accumulatorProblems() {
        List<Object[]> cases = new ArrayList<>();
        int k = 0;
        for (int wBits = 1; wBits <= 8; wBits++) {
            for (int aBits = 1; aBits <= 8; aBits++) {
                Conv c = ODD[k % ODD.length];
                cases.add(new Object[] {c, RegionWidths.uniform(aBits, 1f), "all-low", wBits, k % 2 == 1, k % 5 == 2, (long) k});
                k++;
            }
        }
        for (String policy : new String[] {"2:50,3:30,4:20", "1:25,2:25,4:25,8:25"}) {
            RegionWidths widths = RegionWidths.of(RegionPolicy.parse(policy), ones(RegionPolicy.parse(policy).regions().size()));
            for (String map : LowBitReference.MAP_NAMES) {
                for (Conv c : ODD) cases.add(new Object[] {c, widths, map, 4, true, false, (long) k++});
            }
        }
        int[][] widthPairs = {{4, 4}, {2, 2}, {8, 8}, {1, 1}};
        for (Conv c : RESNET) {
            int[] pair = widthPairs[k % widthPairs.length];
            cases.add(new Object[] {c, RegionWidths.uniform(pair[1], 1f), "all-low", pair[0], pair[0] > 1, false, (long) k++});
            cases.add(new Object[] {c, RegionWidths.of(RegionPolicy.parse("2:50,3:30,4:20"), ones(3)), "random", 4, true, false, (long) k++});
        }
        return cases.toArray(Object[][]::new);
    }

    /** Codes in range of each pixel's region width (the clip levels of the widths are unused here). */
    static int[] regionCodes(SplittableRandom rnd, Shape xs, byte[] map, RegionWidths widths, boolean extremes) {
        int plane = xs.h() * xs.w();
        int[] codes = new int[xs.size()];
        for (int i = 0; i < codes.length; i++) {
            int bits = widths.bits()[map[i / (xs.c() * plane) * plane + i % plane]];
            codes[i] = extremes ? (rnd.nextBoolean() ? 0 : (1 << bits) - 1) : rnd.nextInt(1 << bits);
        }
        return codes;
    }

    @Test(dataProvider = "accumulatorProblems")
    public void accumulatorsAreTheIntegerConvolution(Conv c, RegionWidths widths, String mapName, int wBits, boolean signed, boolean extremes, long seed) {
        checkAccumulators(device(), c, widths, mapName, wBits, signed, extremes, seed);
    }

    static void checkAccumulators(LowBitDevice device, Conv c, RegionWidths widths, String mapName, int wBits, boolean signed, boolean extremes, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Shape xs = c.input(), ws = c.weights();
        byte[] map = LowBitReference.namedMap(mapName, xs.n(), xs.h(), xs.w(), widths.regions(), seed);
        int[] x = regionCodes(rnd, xs, map, widths, extremes);
        int[] w = LowBitReference.randomCodes(rnd, ws.size(), wBits, signed, extremes);
        long[] expected = LowBitReference.regionAccumulators(x, xs, map, widths.regions(), w, ws, c.window());
        PackedConvKernel.Problem p = new PackedConvKernel.Problem(xs, ws, c.window(), widths, wBits, signed);
        int[] actual = device.accumulators(p, BitSerialConv.packActivations(x, xs, widths.planeBits()), widths.regions() == 1 ? null : map,
                BitSerialConv.packWeights(w, ws, wBits, signed));
        long[] widened = new long[actual.length];
        for (int i = 0; i < actual.length; i++) widened[i] = actual[i];
        String d = LowBitReference.firstDifference(expected, widened);
        if (d != null) fail(c.name() + " " + xs + " * " + ws + " " + c.window() + " A" + widths + " W" + wBits + (signed ? "s" : "u") + " map " + mapName + ": accumulator " + d);
    }

    static float[] ones(int n) {
        float[] a = new float[n];
        Arrays.fill(a, 1f);
        return a;
    }

    static float[] uniformFloats(SplittableRandom rnd, int n, double lo, double hi) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (lo + rnd.nextDouble() * (hi - lo));
        return a;
    }

    /** GDRQ: group-quantized signed weights, BatchNorm folded into one affine map per channel; one region (uniform activations). */
    @DataProvider
    public Object[][] gdrqProblems() {
        List<Object[]> cases = new ArrayList<>();
        int k = 0;
        for (Conv c : ODD) cases.add(new Object[] {c, 2 + k % 7, 1 + k % 8, (long) k++});
        cases.add(new Object[] {RESNET[1], 4, 4, (long) k++});
        cases.add(new Object[] {RESNET[4], 2, 2, (long) k++});
        return cases.toArray(Object[][]::new);
    }

    @Test(dataProvider = "gdrqProblems")
    public void gdrqEpilogueIsFoldedChannelAffine(Conv c, int wBits, int aBits, long seed) {
        checkGdrq(device(), c, wBits, aBits, seed);
    }

    static void checkGdrq(LowBitDevice device, Conv c, int wBits, int aBits, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Shape xs = c.input(), ws = c.weights();
        int out = c.outChannels();
        int groups = out % 4 == 0 ? 4 : 1;
        Gdrq.GroupQuantized q = Gdrq.quantize(Tensor.uniform(ws, -1, 1, seed), wBits, groups, 2.0);
        ChannelAffine folded = Gdrq.fold(q, uniformFloats(rnd, out, -0.1, 0.1), uniformFloats(rnd, out, 0.5, 1.5), uniformFloats(rnd, out, -0.2, 0.2),
                uniformFloats(rnd, out, -0.3, 0.3), uniformFloats(rnd, out, 0.1, 2), 1e-5f);
        int[] x = LowBitReference.randomCodes(rnd, xs.size(), aBits, false, false);
        long[] acc = BitSerialConv.reference(x, xs, q.codes(), ws, c.window());
        int[] accInt = new int[acc.length];
        for (int i = 0; i < acc.length; i++) accInt[i] = Math.toIntExact(acc[i]);
        PackedConvKernel.Problem p = new PackedConvKernel.Problem(xs, ws, c.window(), RegionWidths.uniform(aBits, 1f), wBits, true);
        float[] expected = folded.apply(accInt, p.output()).data();
        float[] actual = device.values(p, BitSerialConv.packActivations(x, xs, aBits), null, BitSerialConv.packWeights(q.codes(), ws, wBits, true),
                PackedConvKernel.Epilogue.of(folded));
        compareFloats(c.name() + " GDRQ W" + wBits + "A" + aBits + " groups " + groups, expected, actual);
    }

    @DataProvider
    public Object[][] regionProblems() {
        List<Object[]> cases = new ArrayList<>();
        int k = 0;
        for (String map : LowBitReference.MAP_NAMES) {
            for (Conv c : ODD) cases.add(new Object[] {c, map, k % 3 == 0, (long) k++});
        }
        cases.add(new Object[] {RESNET[2], "random", true, (long) k++});
        cases.add(new Object[] {RESNET[5], "checkerboard", false, (long) k++});
        return cases.toArray(Object[][]::new);
    }

    /**
     * Region policy 2:50,3:30,4:20 with its own clip levels, shared 4-bit weights, against
     * Reference.regionConv2d of the same floats: its accumulators, its combined floats, and those floats
     * requantized for a next layer at 2:50,3:30,4:20 over an output region map.
     */
    @Test(dataProvider = "regionProblems")
    public void regionCombinationAndRequantizationAreTheCpus(Conv c, String mapName, boolean withBias, long seed) {
        checkRegion(device(), c, mapName, withBias, seed);
    }

    static void checkRegion(LowBitDevice device, Conv c, String mapName, boolean withBias, long seed) {
        Shape xs = c.input(), ws = c.weights();
        int outChannels = c.outChannels();
        RegionPolicy policy = RegionPolicy.parse("2:50,3:30,4:20");
        RegionWidths widths = RegionWidths.of(policy, new float[] {0.6f, 1.3f, 2.9f});
        byte[] map = LowBitReference.namedMap(mapName, xs.n(), xs.h(), xs.w(), 3, seed);
        Tensor x = LowBitReference.activations(xs, 2.9f, seed);
        Tensor weights = Tensor.uniform(ws, -1, 1, seed);
        Tensor bias = withBias ? Tensor.uniform(Shape.of(outChannels), -0.5f, 0.5f, seed + 1) : null;
        Reference.RegionConv cpu = Reference.regionConv2d(x, map, widths.bits(), widths.alphas(), new int[] {4, 4, 4}, weights, bias,
                new Op.Conv2d(xs.c(), outChannels, c.window(), 1, withBias));
        // The shared form's weight codes and scales, as regionConv2d quantizes them.
        float[] weightScales = RegionQuantizer.weightScales(weights.data(), outChannels, 4);
        int[] w = new int[ws.size()];
        int row = w.length / outChannels;
        for (int i = 0; i < w.length; i++) w[i] = RegionQuantizer.weightCode(weights.data()[i], weightScales[i / row], 4);
        PackedConvKernel.Problem p = new PackedConvKernel.Problem(xs, ws, c.window(), widths, 4, true);
        long[] xPacked = BitSerialConv.packActivations(LowBitReference.codes(x, map, widths), xs, widths.planeBits());
        long[] wPacked = BitSerialConv.packWeights(w, ws, 4, true);
        String where = c.name() + " map " + mapName;
        int[] acc = device.accumulators(p, xPacked, map, wPacked);
        int i = Arrays.mismatch(cpu.accumulators(), acc);
        if (i >= 0) fail(where + ": accumulator " + i + " is " + acc[i] + ", the CPU gives " + cpu.accumulators()[i]);
        PackedConvKernel.Epilogue epilogue = PackedConvKernel.Epilogue.regionCombine(weightScales, bias == null ? null : bias.data());
        float[] expected = cpu.output().data();
        compareFloats(where, expected, device.values(p, xPacked, map, wPacked, epilogue));

        Shape out = p.output();
        // The next layer's clip levels near the values' spread, so every code of every width occurs.
        float spread = 0;
        for (float v : expected) spread = Math.max(spread, Math.abs(v));
        RegionWidths next = RegionWidths.of(policy, new float[] {spread / 4 + 1e-3f, spread / 2 + 1e-3f, spread + 1e-3f});
        byte[] outMap = LowBitReference.namedMap(mapName, out.n(), out.h(), out.w(), 3, seed + 1);
        long[] expectedPacked = BitSerialConv.packActivations(LowBitReference.codes(cpu.output(), outMap, next), out, next.planeBits());
        long[] actualPacked = device.packed(p, xPacked, map, wPacked, epilogue, new PackedConvKernel.Requantize(next, outMap));
        String d = LowBitReference.firstDifference(expectedPacked, actualPacked);
        if (d != null) fail(where + " requantized " + next + ": packed word " + d);
    }

    static void compareFloats(String where, float[] expected, float[] actual) {
        if (expected.length != actual.length) fail(where + ": " + actual.length + " values, the CPU has " + expected.length);
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                fail(where + ": value " + i + " is " + actual[i] + ", the CPU gives " + expected[i]);
            }
        }
    }
}
