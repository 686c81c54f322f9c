package dev.silhouette.gpu;

import dev.silhouette.backend.cpu.LowBitConv;
import dev.silhouette.backend.cpu.Reference;
import dev.silhouette.backend.cuda.BinaryMmaKernel;
import dev.silhouette.backend.cuda.KernelLauncher;
import dev.silhouette.backend.cuda.KernelSupport;
import dev.silhouette.backend.cuda.LowBitIgemmKernel;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Op.LowBitConv2d.ActivationCodes;
import dev.silhouette.quant.BinaryNet;
import dev.silhouette.quant.LowBitWeights;
import dev.silhouette.quant.RegionQuantizer;
import dev.silhouette.quant.WeightQuantization;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.fail;

/**
 * The tensor-core packed convolution (cuda/lowbit_igemm.cu: INT8 IMMA mma.sync m16n8k32, emulated from the
 * PTX ISA's fragment layouts) run by the host emulation with shuffled blocks and poisoned shared memory,
 * bit for bit against the CPU packed path: its accumulators against {@link Reference#lowBitAccumulators},
 * its float outputs against {@link LowBitConv#run} in the Java formulation. Shapes cover partial k steps,
 * partial column and pixel tiles, groups, stride, dilation, padding, per-region weights and a zero point.
 */
public class EmulatedLowBitIgemmTest {
    private HostEmulator emu;

    @BeforeClass(alwaysRun = true)
    public void open() {
        emu = new HostEmulator();
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (emu != null) emu.close();
    }

    /** One layer: op, input, region map (null: one grid) and bias. */
    record Layer(String name, Op.LowBitConv2d op, Tensor x, byte[] map, Tensor bias) {
        Tensor mapTensor() {
            if (map == null) return null;
            float[] v = new float[map.length];
            for (int i = 0; i < map.length; i++) v[i] = map[i];
            Shape s = x.shape();
            return new Tensor(Shape.of(s.n(), 1, s.h(), s.w()), v);
        }

        @Override
        public String toString() {
            return name;
        }
    }

    /** Region grids at {@code bits} (one per region), weights at {@code weightBits} (one set, or one per region). */
    static Layer regional(String name, Op.Conv2d conv, Shape in, int[] bits, int[] weightBits, boolean bias, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Tensor x = Tensor.uniform(in, -0.3f, 1.7f, seed + 1);
        byte[] map = new byte[in.n() * in.h() * in.w()];
        for (int i = 0; i < map.length; i++) map[i] = (byte) rnd.nextInt(bits.length);
        List<Integer> bitList = new ArrayList<>();
        List<Float> steps = new ArrayList<>();
        for (int b : bits) {
            bitList.add(b);
            steps.add(RegionQuantizer.pactStep((float) (0.5 + rnd.nextDouble()), b));
        }
        return new Layer(name, new Op.LowBitConv2d(conv, new ActivationCodes.Regions(bitList, steps), weights(conv, weightBits, seed + 2)), x,
                map, bias ? Tensor.uniform(Shape.of(conv.outChannels()), -1, 1, seed + 3) : null);
    }

    static LowBitWeights weights(Op.Conv2d conv, int[] weightBits, long seed) {
        Tensor weight = Tensor.uniform(Shape.of(conv.parameters().getFirst().dims()), -1, 1, seed);
        List<WeightQuantization.QuantizedWeights> q = new ArrayList<>();
        for (int b : weightBits) {
            int[] perChannel = new int[conv.outChannels()];
            Arrays.fill(perChannel, b);
            q.add(WeightQuantization.quantize(weight, perChannel, null, false));
        }
        return LowBitWeights.of(conv.groups(), conv.outChannels(), conv.inPerGroup(), conv.window().taps(), weightBits, q);
    }

    @DataProvider
    public Object[][] layers() {
        Window same3 = new Window(3, 3, 1, 1, 1, 1, 1, 1);
        Window strided = new Window(3, 3, 2, 2, 2, 1, 2, 1);
        Window wide = new Window(1, 5, 1, 2, 0, 2, 1, 1);
        Op.Conv2d affine = new Op.Conv2d(11, 8, new Window(1, 1, 1, 1, 0, 0, 1, 1), 1, true);
        int qmax = 255;
        Layer zeroPoint = new Layer("1x1 A8W8 affine grid with zero point 37, bias",
                new Op.LowBitConv2d(affine, new ActivationCodes.Grid(8, 2.9f / qmax, 37), weights(affine, new int[] {8}, 71)),
                Tensor.uniform(Shape.of(2, 11, 5, 6), -0.6f, 2.6f, 72), null, Tensor.uniform(Shape.of(8), -1, 1, 73));
        return new Object[][] {
                {regional("3x3 regions 2,3,4 shared W4, C20 (partial k step) O40 (partial column tile)",
                        new Op.Conv2d(20, 40, same3, 1, true), Shape.of(2, 20, 9, 7), new int[] {2, 3, 4}, new int[] {4}, true, 11)},
                {regional("3x3 stride 2 dilation 2 groups 2, per-region weights W4,W3,W2",
                        new Op.Conv2d(16, 12, strided, 2, false), Shape.of(1, 16, 11, 10), new int[] {2, 3, 4}, new int[] {4, 3, 2}, false, 12)},
                {regional("1x5 stride 1x2, one PACT grid A8W8, 70 pixels (partial pixel tile)",
                        new Op.Conv2d(9, 33, wide, 1, true), Shape.of(1, 9, 7, 19), new int[] {8}, new int[] {8}, true, 13)},
                {regional("depthwise-like groups 4 3x3, regions 4,4,2,3 W2",
                        new Op.Conv2d(8, 8, same3, 4, true), Shape.of(3, 8, 6, 5), new int[] {4, 4, 2, 3}, new int[] {2}, true, 14)},
                {zeroPoint},
        };
    }

    @Test(dataProvider = "layers")
    public void accumulatorsAndOutputsEqualTheCpuPackedPath(Layer layer) {
        check(emu, KernelMemory.of(emu), layer);
    }

    /** The first layer again, every launch in the AddressSanitizer and UndefinedBehaviorSanitizer build. */
    @Test
    public void sanitizedRunIsCleanAndExact() {
        try (HostEmulator sanitized = HostEmulator.sanitized()) {
            check(sanitized, KernelMemory.of(sanitized), (Layer) layers()[0][0]);
        }
    }

    /** One layer through LowBitIgemmKernel's glue on {@code launcher} and {@code emu}'s memory (the emulation or a GPU). */
    static void check(KernelLauncher launcher, KernelMemory emu, Layer layer) {
        Op.LowBitConv2d op = layer.op();
        Shape in = layer.x().shape();
        assertEquals(LowBitIgemmKernel.supports(op, in), KernelSupport.YES, layer.name());
        LowBitIgemmKernel kernel = new LowBitIgemmKernel(launcher);
        LowBitIgemmKernel.Prepared p = LowBitIgemmKernel.prepare(op);
        long region = 0;
        if (layer.map() != null) {
            // The graph's float map converted on the device, as CudaBackend does.
            region = emu.allocate(layer.map().length);
            kernel.launchRegionConversion(emu.put(layer.mapTensor().data()), region, layer.map().length, false, null);
            assertEquals(emu.bytes(region, layer.map().length), layer.map(), layer.name() + ": region bytes");
            long back = emu.allocate((long) layer.map().length * Float.BYTES);
            kernel.launchRegionConversion(region, back, layer.map().length, true, null);
            assertEquals(emu.floats(back, layer.map().length), layer.mapTensor().data(), layer.name() + ": region floats");
        }
        long codes = emu.allocate(LowBitIgemmKernel.codeBytes(in));
        kernel.launchCodes(in, emu.put(layer.x().data()), region, emu.put(p.codeSteps()), emu.put(p.levels()), p.zeroPoint(), codes, null);
        LowBitIgemmKernel.Constants c = new LowBitIgemmKernel.Constants(emu.put(p.weights()), emu.put(p.weightSums()), emu.put(p.scales()),
                emu.put(doubles(p.steps())), layer.bias() == null ? 0 : emu.put(layer.bias().data()));
        Window win = op.conv().window();
        int outputs = in.n() * op.conv().outChannels() * win.outH(in.h()) * win.outW(in.w());
        int regions = op.codes().regions();

        long acc = emu.allocate((long) outputs * regions * Integer.BYTES);
        kernel.launchConv(op, in, p, c, codes, region, acc, 0, null);
        int[] expected = Reference.lowBitAccumulators(layer.x(), layer.mapTensor(), op), actual = emu.ints(acc, outputs * regions);
        int i = Arrays.mismatch(expected, actual);
        if (i >= 0) fail(layer.name() + ": accumulator " + i + " (output " + i / regions + ", region " + i % regions + ") is " + actual[i]
                + ", Reference.lowBitAccumulators gives " + expected[i]);

        long y = emu.allocate((long) outputs * Float.BYTES);
        kernel.launchConv(op, in, p, c, codes, region, 0, y, null);
        float[] spec = LowBitConv.run(layer.x(), layer.mapTensor(), layer.bias(), op, LowBitConv.javaFormulation(op)).data(), got = emu.floats(y, outputs);
        for (int j = 0; j < outputs; j++) {
            if (Float.floatToRawIntBits(spec[j]) != Float.floatToRawIntBits(got[j])) {
                fail(layer.name() + ": output " + j + " is " + got[j] + ", LowBitConv.run gives " + spec[j]);
            }
        }
    }

    /** Doubles as the bytes a device buffer holds. */
    private static long[] doubles(double[] d) {
        long[] bits = new long[d.length];
        for (int i = 0; i < d.length; i++) bits[i] = Double.doubleToRawLongBits(d[i]);
        return bits;
    }

    @DataProvider
    public Object[][] binaryProblems() {
        return Arrays.stream(PackedConvKernelTest.ODD).filter(EmulatedKernelsTest::small).map(c -> new Object[] {c}).toArray(Object[][]::new);
    }

    /** binary_mma.cu (mma.sync m16n8k256 AND-popc, emulated) gives BinaryNet.xnorConv's sums exactly. */
    @Test(dataProvider = "binaryProblems")
    public void binaryTensorCoreSumsEqualTheXnorConvolution(PackedConvKernelTest.Conv c) {
        SplittableRandom rnd = new SplittableRandom(c.name().hashCode());
        Shape xs = c.input(), ws = c.weights();
        long[] x = BinaryNet.packActivations(BinaryConvKernelTest.signs(rnd, xs.size()), xs);
        long[] w = BinaryNet.packWeights(BinaryConvKernelTest.signs(rnd, ws.size()), ws);
        checkBinary(emu, KernelMemory.of(emu), c, x, w);
    }

    /** binary_mma_conv's sums of bit-packed x and w through BinaryMmaKernel's glue, against BinaryNet.xnorConv. */
    static void checkBinary(KernelLauncher launcher, KernelMemory emu, PackedConvKernelTest.Conv c, long[] x, long[] w) {
        Shape xs = c.input(), ws = c.weights();
        int[] expected = BinaryNet.xnorConv(x, xs, w, ws, c.window());
        long out = emu.allocate((long) expected.length * Integer.BYTES);
        new BinaryMmaKernel(launcher).launchSums(xs, ws, c.window(), emu.put(x), emu.put(BinaryMmaKernel.tiles(w, ws, c.window())), out, null);
        int[] actual = emu.ints(out, expected.length);
        int i = Arrays.mismatch(expected, actual);
        if (i >= 0) fail(c.name() + ": sum " + i + " is " + actual[i] + ", BinaryNet.xnorConv gives " + expected[i]);
    }

    @Test
    public void refusedShapesAreNamed() {
        Op.Conv2d conv = new Op.Conv2d(4, 4, new Window(3, 3, 1, 1, 1, 1, 1, 1), 1, false);
        Shape in = Shape.of(1, 4, 5, 5);
        Op.LowBitConv2d drq = new Op.LowBitConv2d(conv, new ActivationCodes.DrqClass(2, 0.5f, true, 4, 0.1f), weights(conv, new int[] {4}, 1));
        assertEquals(reason(LowBitIgemmKernel.supports(drq, in)), KernelSupport.Reason.ACTIVATION_GRID);
        Layer five = regional("five regions", conv, in, new int[] {2, 2, 3, 3, 4}, new int[] {4}, false, 2);
        assertEquals(reason(LowBitIgemmKernel.supports(five.op(), in)), KernelSupport.Reason.TOO_MANY_REGIONS);
        Tensor weight = Tensor.uniform(Shape.of(4, 4, 3, 3), -1, 1, 3);
        int[] four = {4, 4, 4, 4};
        WeightQuantization.QuantizedWeights corrected = WeightQuantization.quantize(weight, four, null, true);
        LowBitWeights offsets = LowBitWeights.of(1, 4, 4, 9, new int[] {4}, List.of(corrected));
        if (offsets.hasOffsets()) {
            Op.LowBitConv2d op = new Op.LowBitConv2d(conv, new ActivationCodes.Grid(4, 0.1f, 3), offsets);
            assertEquals(reason(LowBitIgemmKernel.supports(op, in)), KernelSupport.Reason.BIAS_CORRECTION);
        }
        Op.Conv2d huge = new Op.Conv2d(40_000, 4, new Window(3, 3, 1, 1, 1, 1, 1, 1), 1, false);
        Layer deep = regional("deep", huge, Shape.of(1, 40_000, 1, 1), new int[] {8}, new int[] {8}, false, 4);
        KernelSupport s = LowBitIgemmKernel.supports(deep.op(), deep.x().shape());
        assertEquals(reason(s), KernelSupport.Reason.ACCUMULATOR_RANGE);
        assertTrue(s.toString().contains("360000 products"), s.toString());
    }

    private static KernelSupport.Reason reason(KernelSupport s) {
        return s instanceof KernelSupport.Unsupported u ? u.reason() : null;
    }
}
