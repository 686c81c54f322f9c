package dev.silhouette.gpu;

import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.backend.cuda.KernelLauncher;
import dev.silhouette.backend.cuda.RegionMaskKernel;
import dev.silhouette.backend.cuda.RegionWidths;
import dev.silhouette.graph.Op;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.Arrays;
import java.util.function.Predicate;

import static org.testng.Assert.fail;

/**
 * The gpu group's conformance checks, run on the CPU through the host emulation of the kernels
 * (native-build/emulate: the kernels' own source compiled by g++, each warp's lanes as threads): the
 * same CPU answers, the same glue launching, the problem lists without the cases too large to emulate
 * quickly. This runs the kernels' code, not a GPU: it catches wrong indices, layouts, grids and
 * arithmetic, not what only a device shows (memory model, scheduling, the compiler's device code).
 */
public class EmulatedKernelsTest {
    /** Largest convolution emulated: multiply-accumulates, and warps launched. */
    static final long MAX_MACS = 20_000_000, MAX_WARPS = 3_000;

    private HostEmulator emu;
    private LowBitDevice device;

    @BeforeClass(alwaysRun = true)
    public void open() {
        emu = new HostEmulator();
        device = new LowBitDevice.Emulated(emu);
    }

    @AfterClass(alwaysRun = true)
    public void close() {
        if (emu != null) emu.close();
    }

    static boolean small(PackedConvKernelTest.Conv c) {
        Shape in = c.input();
        long oh = c.window().outH(in.h()), ow = c.window().outW(in.w());
        long macs = in.n() * c.outChannels() * oh * ow * in.c() * c.window().kernelH() * c.window().kernelW();
        long warps = in.n() * oh * ow * 2L * ((c.outChannels() + 63) / 64);
        return macs <= MAX_MACS && warps <= MAX_WARPS;
    }

    private static Object[][] where(Object[][] cases, Predicate<Object[]> keep) {
        return Arrays.stream(cases).filter(keep).toArray(Object[][]::new);
    }

    @DataProvider
    public Object[][] quantizePackProblems() {
        return where(new QuantizePackKernelTest().problems(), c -> ((Shape) c[1]).size() <= 200_000);
    }

    @Test(dataProvider = "quantizePackProblems")
    public void quantizePack(String name, Shape s, RegionWidths widths, byte[] map, long seed) {
        QuantizePackKernelTest.check(device, name, s, widths, map, seed);
    }

    @DataProvider
    public Object[][] accumulatorProblems() {
        return where(new PackedConvKernelTest().accumulatorProblems(), c -> small((PackedConvKernelTest.Conv) c[0]));
    }

    @Test(dataProvider = "accumulatorProblems")
    public void packedConvAccumulators(PackedConvKernelTest.Conv c, RegionWidths widths, String map, int wBits, boolean signed, boolean extremes, long seed) {
        PackedConvKernelTest.checkAccumulators(device, c, widths, map, wBits, signed, extremes, seed);
    }

    @DataProvider
    public Object[][] gdrqProblems() {
        return where(new PackedConvKernelTest().gdrqProblems(), c -> small((PackedConvKernelTest.Conv) c[0]));
    }

    @Test(dataProvider = "gdrqProblems")
    public void packedConvGdrqEpilogue(PackedConvKernelTest.Conv c, int wBits, int aBits, long seed) {
        PackedConvKernelTest.checkGdrq(device, c, wBits, aBits, seed);
    }

    @DataProvider
    public Object[][] regionProblems() {
        return where(new PackedConvKernelTest().regionProblems(), c -> small((PackedConvKernelTest.Conv) c[0]));
    }

    @Test(dataProvider = "regionProblems")
    public void packedConvRegionCombinationAndRequantization(PackedConvKernelTest.Conv c, String map, boolean withBias, long seed) {
        PackedConvKernelTest.checkRegion(device, c, map, withBias, seed);
    }

    @DataProvider
    public Object[][] binaryProblems() {
        return where(new BinaryConvKernelTest().problems(), c -> small((PackedConvKernelTest.Conv) c[0]));
    }

    @Test(dataProvider = "binaryProblems")
    public void binaryConv(PackedConvKernelTest.Conv c, long seed) {
        BinaryConvKernelTest.check(device, c, seed);
    }

    @DataProvider
    public Object[][] maskProblems() {
        // At equal sizes the glue uses silhouette_region_map (silhouette_threshold.cu), not the fused kernel.
        return where(new RegionMaskKernelTest().problems(), c -> c[5] == Op.RegionQuantize.MaskOrder.THRESHOLD_THEN_RESIZE
                && (((Tensor) c[1]).shape().h() != (int) c[2] || ((Tensor) c[1]).shape().w() != (int) c[3]));
    }

    /**
     * The fused THRESHOLD_THEN_RESIZE kernel, launched by RegionMaskKernel. The select kernel before it
     * uses shared memory and block barriers, which the emulation does not model, so its launch is
     * answered by its CPU specification (SilhouetteThresholds.thresholds) on the same memory.
     */
    @Test(dataProvider = "maskProblems")
    public void regionMapThresholdThenResize(String name, Tensor silhouette, int outH, int outW, Op.Interpolate.Mode mode, Op.RegionQuantize.MaskOrder order,
                                             RegionPolicy policy) {
        double[] fractions = policy.cumulativeFractions();
        KernelLauncher launcher = emu.withCpuThresholds();
        RegionMaskKernel kernel = new RegionMaskKernel(launcher, (x, y, planes, h, w, oh, ow, bilinear, s) -> fail("THRESHOLD_THEN_RESIZE resized the silhouette"));
        Shape s = silhouette.shape();
        int pixels = s.n() * outH * outW;
        long region = emu.allocate(pixels + LowBitDevice.Emulated.GUARD);
        kernel.launch(s, emu.put(silhouette.data()), fractions, emu.put(fractions), outH, outW, mode, order, 0,
                emu.allocate((long) s.n() * Math.max(1, fractions.length) * Float.BYTES), region, null);
        byte[] actual = emu.bytes(region, pixels), expected = RegionOps.regionMap(silhouette, policy, outH, outW, mode, order);
        int i = Arrays.mismatch(expected, actual);
        if (i >= 0) fail(name + " " + s + " -> " + outH + "x" + outW + " " + mode + " " + policy + ": pixel " + i + " is region " + actual[i]
                + ", the CPU says " + expected[i]);
        byte[] guard = emu.bytes(region + pixels, LowBitDevice.Emulated.GUARD);
        for (byte b : guard) if (b != (byte) 0xA5) fail(name + ": the region map was written past its end");
    }
}
