package dev.silhouette.gpu;

import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.backend.cuda.RegionMaskKernel;
import dev.silhouette.backend.cuda.SilhouetteThresholdKernel;
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
 * (native-build/emulate: the kernels' own source compiled by g++, a block's threads as coroutines): the
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
    public Object[][] cutKeyProblems() {
        // Up to one 512x512 image: n > 65536 takes the index digit at bit 16 too.
        return where(new SilhouetteThresholdKernelTest().images(), c -> ((Tensor) c[1]).size() <= 512 * 512);
    }

    /**
     * The block-wide radix select (silhouette_cut_keys, every thread of a block at once with real block
     * barriers, shared memory and atomics) and the region map after it, at the glue's block of
     * SilhouetteThresholdKernel.SELECT_BLOCK threads and at one warp, with the block's threads swept in
     * both orders so that a missing barrier shows whichever side writes.
     */
    @Test(dataProvider = "cutKeyProblems")
    public void cutKeysAndRegionMap(String name, Tensor silhouette, int[] shares) {
        for (int run = 0; run < 4; run++) {
            int block = run % 2 == 0 ? SilhouetteThresholdKernel.SELECT_BLOCK : 32;
            boolean ascending = run >= 2;
            emu.sweepAscending(ascending);
            Shape s = silhouette.shape();
            int batch = s.n(), pixels = s.h() * s.w(), count = shares.length - 1;
            long input = emu.put(silhouette.data());
            long keys = emu.allocate((long) batch * count * Long.BYTES + LowBitDevice.Emulated.GUARD);
            long region = emu.allocate((long) batch * pixels + LowBitDevice.Emulated.GUARD);
            try {
                if (batch > 0 && count > 0) {
                    emu.launch(SilhouetteThresholdKernel.CUT_KEYS, batch, 1, block, 0, null, input, batch, pixels, emu.put(shares), shares.length, keys);
                }
                if (batch > 0) {
                    emu.launch(SilhouetteThresholdKernel.REGION_MAP, 4, 1, SilhouetteThresholdKernel.BLOCK, 0, null, input, batch, pixels, keys, count, region);
                }
            } finally {
                emu.sweepAscending(false);
            }
            SilhouetteThresholdKernelTest.compare(name + " (block " + block + (ascending ? ", ascending" : "") + ")", silhouette, shares,
                    new SilhouetteThresholdKernel.Result(emu.longs(keys, batch * count), emu.bytes(region, batch * pixels)));
            for (byte b : emu.bytes(keys + (long) batch * count * Long.BYTES, LowBitDevice.Emulated.GUARD)) {
                if (b != (byte) 0xA5) fail(name + ": the cut keys were written past their end");
            }
        }
    }

    @DataProvider
    public Object[][] maskProblems() {
        return where(new RegionMaskKernelTest().problems(), c -> ((Tensor) c[1]).size() <= 4 * 28 * 28);
    }

    /** RegionMaskKernel's launches, both orders, all emulated: resize, cut keys, and the region map or the fused mask resize. */
    @Test(dataProvider = "maskProblems")
    public void regionMap(String name, Tensor silhouette, int outH, int outW, Op.Interpolate.Mode mode, Op.RegionQuantize.MaskOrder order,
                          RegionPolicy policy) {
        int[] shares = policy.percents();
        RegionMaskKernel kernel = new RegionMaskKernel(emu, emu::interpolate);
        Shape s = silhouette.shape();
        int pixels = s.n() * outH * outW;
        long region = emu.allocate(pixels + LowBitDevice.Emulated.GUARD);
        long work = emu.allocate(Math.max(1, RegionMaskKernel.workFloats(s, outH, outW, order)) * Float.BYTES);
        kernel.launch(s, emu.put(silhouette.data()), shares, emu.put(shares), outH, outW, mode, order, work,
                emu.allocate((long) s.n() * Math.max(1, shares.length - 1) * Long.BYTES), region, null);
        byte[] actual = emu.bytes(region, pixels), expected = RegionOps.regionMap(silhouette, policy, outH, outW, mode, order);
        int i = Arrays.mismatch(expected, actual);
        if (i >= 0) fail(name + " " + s + " -> " + outH + "x" + outW + " " + mode + " " + order + " " + policy + ": pixel " + i + " is region " + actual[i]
                + ", the CPU says " + expected[i]);
        byte[] guard = emu.bytes(region + pixels, LowBitDevice.Emulated.GUARD);
        for (byte b : guard) if (b != (byte) 0xA5) fail(name + ": the region map was written past its end");
    }
}
