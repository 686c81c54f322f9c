package dev.silhouette.backend.cpu;

import dev.silhouette.graph.Op;
import dev.silhouette.graph.Op.LowBitConv2d.ActivationCodes;
import dev.silhouette.quant.LowBitWeights;
import dev.silhouette.quant.RegionQuantizer;
import dev.silhouette.quant.WeightQuantization;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;
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
 * The packed path's integer accumulators ({@link LowBitConv}, both formulations) against two plain-loop
 * specifications: {@link Reference#lowBitAccumulators} (the op's own grid and codes) and, independently,
 * {@link Reference#regionConv2d} (which quantizes float weights and activations itself). Shapes are the
 * convolution conformance list (awkward shapes, 220 random ones with groups, stride, dilation and padding,
 * real ResNet layers); width pairs cycle through all of 1..8 x 1..8, region maps through all-low,
 * all-high, one pixel, checkerboard and random.
 */
public class LowBitConvTest {

    enum MapKind { ALL_LOW, ALL_HIGH, ONE_PIXEL, CHECKERBOARD, RANDOM }

    record Case(ConvolutionConformanceTest.Problem problem, int activationBits, int weightBits, MapKind map, boolean perRegionWeights) {
        @Override
        public String toString() {
            return problem + " a" + activationBits + " w" + weightBits + " " + map + (perRegionWeights ? " per-region weights" : "");
        }
    }

    private static final int REGIONS = 3;

    @DataProvider
    public Object[][] conformance() {
        List<Object[]> cases = new ArrayList<>();
        Object[][] problems = new ConvolutionConformanceTest().problems();
        int i = 0;
        for (Object[] p : problems) {
            var problem = (ConvolutionConformanceTest.Problem) p[0];
            int pair = i * 29 % 64;   // 29 is coprime with 64: consecutive problems walk every width pair
            cases.add(new Object[] {new Case(problem, 1 + pair / 8, 1 + pair % 8, MapKind.values()[i % MapKind.values().length], i % 3 == 0)});
            i++;
        }
        // Every width pair on every map kind, on one small awkward shape.
        var small = new ConvolutionConformanceTest.Problem("every width pair", 2, 6, 7, 5, new Op.Conv2d(6, 4, new Window(3, 2, 2, 1, 1, 1, 1, 2), 2, true));
        for (int a = 1; a <= 8; a++)
            for (int w = 1; w <= 8; w++)
                for (MapKind m : MapKind.values()) cases.add(new Object[] {new Case(small, a, w, m, (a + w) % 2 == 0)});
        return cases.toArray(Object[][]::new);
    }

    @Test(dataProvider = "conformance")
    public void accumulatorsEqualTheIntegerReferences(Case c) {
        var p = c.problem();
        long seed = c.toString().hashCode();
        SplittableRandom rnd = new SplittableRandom(seed);
        int[] bits = new int[REGIONS];
        float[] alphas = new float[REGIONS];
        for (int r = 0; r < REGIONS; r++) {
            bits[r] = Math.max(1, c.activationBits() - r);   // region widths differ, region 0 at the pair's width
            alphas[r] = (float) (0.5 + rnd.nextDouble());
        }
        // Values below 0 and above alpha exercise both clamps of the grid.
        Tensor x = Tensor.uniform(Shape.of(p.n(), p.c(), p.h(), p.w()), -0.3f, 1.7f, seed + 1);
        Tensor weight = Tensor.uniform(Shape.of(p.op().parameters().getFirst().dims()), -1, 1, seed + 2);
        Tensor bias = p.op().bias() ? Tensor.uniform(Shape.of(p.op().outChannels()), -1, 1, seed + 3) : null;
        byte[] regionBytes = map(c.map(), p.n(), p.h(), p.w(), rnd);
        float[] mapValues = new float[regionBytes.length];
        for (int i = 0; i < regionBytes.length; i++) mapValues[i] = regionBytes[i];
        Tensor map = new Tensor(Shape.of(p.n(), 1, p.h(), p.w()), mapValues);

        int sets = c.perRegionWeights() ? REGIONS : 1;
        int[] weightBits = new int[sets];
        List<WeightQuantization.QuantizedWeights> q = new ArrayList<>();
        for (int r = 0; r < sets; r++) {
            weightBits[r] = c.perRegionWeights() ? Math.max(1, c.weightBits() - r) : c.weightBits();
            int[] perChannel = new int[p.op().outChannels()];
            Arrays.fill(perChannel, weightBits[r]);
            q.add(WeightQuantization.quantize(weight, perChannel, null, false));
        }
        LowBitWeights w = LowBitWeights.of(p.op().groups(), p.op().outChannels(), p.op().inPerGroup(), p.op().window().taps(), weightBits, q);
        List<Integer> bitList = new ArrayList<>();
        List<Float> steps = new ArrayList<>();
        for (int r = 0; r < REGIONS; r++) {
            bitList.add(bits[r]);
            steps.add(RegionQuantizer.pactStep(alphas[r], bits[r]));
        }
        Op.LowBitConv2d op = new Op.LowBitConv2d(p.op(), new ActivationCodes.Regions(bitList, steps), w);

        int[] spec = Reference.lowBitAccumulators(x, map, op);
        for (LowBitConv.Formulation f : formulations(op)) {
            int[] actual = LowBitConv.accumulate(x, map, op, f).products();
            compare(c + " " + f + " against lowBitAccumulators", spec, actual);
        }
        // The independent oracle quantizes float weights itself, on the symmetric grid of 2 bits and more.
        // Its per-MAC weight quantization is slow: the largest real layers are checked against the first spec only.
        long macs = (long) p.n() * p.op().outChannels() * p.op().window().outH(p.h()) * p.op().window().outW(p.w()) * p.op().taps();
        if (Arrays.stream(weightBits).min().orElseThrow() >= 2 && macs <= 20_000_000) {
            int[] oracleBits = new int[REGIONS];
            for (int r = 0; r < REGIONS; r++) oracleBits[r] = weightBits[c.perRegionWeights() ? r : 0];
            Reference.RegionConv oracle = Reference.regionConv2d(x, regionBytes, bits, alphas, oracleBits, weight, bias, p.op());
            compare(c + " against regionConv2d", oracle.accumulators(), spec);
            Tensor y = LowBitConv.run(x, map, bias, op);
            for (int i = 0; i < y.size(); i++) {
                float e = oracle.output().data()[i], a = y.data()[i];
                if (Math.abs(e - a) > 1e-6 * Math.max(1, Math.abs(e))) fail(c + ": output " + i + " is " + a + ", regionConv2d gives " + e);
            }
        }
    }

    /** Uniform grids with a zero point (affine over a range below 0) and bias-correction offsets, through the whole op. */
    @Test
    public void affineGridWithZeroPointAndOffsetsMatchesTheFloatConvolutionOfDequantizedValues() {
        var op0 = new Op.Conv2d(5, 7, new Window(3, 3, 2, 1, 1, 2, 1, 1), 1, true);
        Tensor x = Tensor.uniform(Shape.of(2, 5, 9, 8), -1f, 2f, 5);
        Tensor weight = Tensor.uniform(Shape.of(7, 5, 3, 3), -1, 1, 6);
        Tensor bias = Tensor.uniform(Shape.of(7), -1, 1, 7);
        int[] perChannel = new int[7];
        Arrays.fill(perChannel, 4);
        var q = WeightQuantization.quantize(weight, perChannel, null, true);
        assertTrue(w(q), "bias correction should give offsets");
        var w = LowBitWeights.of(1, 7, 5, 9, new int[] {4}, List.of(q));
        var grid = new ActivationCodes.Grid(5, 3f / 31, 10);
        var op = new Op.LowBitConv2d(op0, grid, w);
        Tensor actual = LowBitConv.run(x, null, bias, op, LowBitConv.javaFormulation(op));
        // Oracle: the dequantized activations step * (code - zero) through the float reference convolution.
        float[] deq = new float[x.size()];
        for (int i = 0; i < deq.length; i++) {
            deq[i] = grid.step() * (dev.silhouette.quant.Quantizers.code(x.data()[i], grid.step(), grid.zeroPoint(), 0, 31) - grid.zeroPoint());
        }
        Tensor expected = Reference.conv2d(new Tensor(x.shape(), deq), q.values(), bias, op0);
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(actual.data()[i], expected.data()[i], 1e-4, "output " + i);
        }
    }

    private static boolean w(WeightQuantization.QuantizedWeights q) {
        for (float v : q.offsets()) if (v != 0) return true;
        return false;
    }

    /** One grid with a zero point (affine over a range below 0): the border holds the zero point, so padding still reads real 0. */
    @Test(dataProvider = "conformance")
    public void gridAccumulatorsWithZeroPointEqualTheReference(Case c) {
        if (c.map() != MapKind.RANDOM) return;   // one fifth of the list: the grid has no regions to vary
        var p = c.problem();
        long seed = c.toString().hashCode() + 17;
        Tensor x = Tensor.uniform(Shape.of(p.n(), p.c(), p.h(), p.w()), -1.2f, 1.7f, seed);
        Tensor weight = Tensor.uniform(Shape.of(p.op().parameters().getFirst().dims()), -1, 1, seed + 2);
        int[] perChannel = new int[p.op().outChannels()];
        Arrays.fill(perChannel, c.weightBits());
        var q = WeightQuantization.quantize(weight, perChannel, null, false);
        var w = LowBitWeights.of(p.op().groups(), p.op().outChannels(), p.op().inPerGroup(), p.op().window().taps(), new int[] {c.weightBits()}, List.of(q));
        int qmax = (1 << c.activationBits()) - 1;
        var op = new Op.LowBitConv2d(p.op(), new ActivationCodes.Grid(c.activationBits(), 2.9f / qmax, Math.max(0, Math.round(1.2f / (2.9f / qmax)) % (qmax + 1))), w);
        int[] spec = Reference.lowBitAccumulators(x, null, op);
        for (LowBitConv.Formulation f : formulations(op)) compare(c + " grid " + op.codes() + " " + f, spec, LowBitConv.accumulate(x, null, op, f).products());
    }

    /** One DRQ sensitivity class: only the activations of that class (by their block means) keep codes. */
    @Test(dataProvider = "conformance")
    public void drqClassAccumulatorsEqualTheReference(Case c) {
        if (c.map() != MapKind.CHECKERBOARD) return;   // one fifth of the list
        var p = c.problem();
        long seed = c.toString().hashCode() + 29;
        Tensor x = Tensor.uniform(Shape.of(p.n(), p.c(), p.h(), p.w()), -0.5f, 1.5f, seed);
        Tensor weight = Tensor.uniform(Shape.of(p.op().parameters().getFirst().dims()), -1, 1, seed + 2);
        int[] perChannel = new int[p.op().outChannels()];
        Arrays.fill(perChannel, c.weightBits());
        var q = WeightQuantization.quantize(weight, perChannel, null, false);
        var w = LowBitWeights.of(p.op().groups(), p.op().outChannels(), p.op().inPerGroup(), p.op().window().taps(), new int[] {c.weightBits()}, List.of(q));
        for (boolean sensitive : new boolean[] {false, true}) {
            var op = new Op.LowBitConv2d(p.op(), new ActivationCodes.DrqClass(2, 0.5f, sensitive, c.activationBits(), 1.3f / ((1 << c.activationBits()) - 1)), w);
            int[] spec = Reference.lowBitAccumulators(x, null, op);
            for (LowBitConv.Formulation f : formulations(op)) compare(c + " " + op.codes() + " " + f, spec, LowBitConv.accumulate(x, null, op, f).products());
        }
    }

    /** Every formulation that can hold this layer exactly; the native one where the library loaded (the report says which ISA). */
    private static List<LowBitConv.Formulation> formulations(Op.LowBitConv2d op) {
        List<LowBitConv.Formulation> all = new ArrayList<>(LowBitConv.javaFormulation(op) == LowBitConv.Formulation.SHORT_LANES
                ? List.of(LowBitConv.Formulation.SHORT_LANES, LowBitConv.Formulation.INT_LANES) : List.of(LowBitConv.Formulation.INT_LANES));
        if (NativeLowBitConv.supports(op)) for (var isa : NativeLowBitConv.isas()) all.add(LowBitConv.Formulation.of(isa));
        return all;
    }

    @Test
    public void nativeKernelsLoadOnX86WithGcc() {
        // The build compiles them wherever gcc runs on x86-64 (CI and these machines); elsewhere they are optional.
        boolean x86 = System.getProperty("os.arch").equals("amd64");
        if (x86) assertTrue(NativeLowBitConv.isa() != NativeLowBitConv.Isa.NONE, "native CPU kernels did not load: " + NativeLowBitConv.unavailable());
    }

    private static void compare(String what, int[] expected, int[] actual) {
        assertEquals(actual.length, expected.length, what + ": accumulator count");
        for (int i = 0; i < expected.length; i++) {
            if (expected[i] != actual[i]) fail(what + ": first difference at accumulator " + i + ": " + actual[i] + ", expected " + expected[i]);
        }
    }

    static byte[] map(MapKind kind, int n, int h, int w, SplittableRandom rnd) {
        byte[] m = new byte[n * h * w];
        for (int i = 0; i < m.length; i++) {
            int y = i / w % h, x = i % w;
            m[i] = (byte) switch (kind) {
                case ALL_LOW -> 0;
                case ALL_HIGH -> REGIONS - 1;
                case ONE_PIXEL -> (y == h / 2 && x == w / 2) ? REGIONS - 1 : 0;
                case CHECKERBOARD -> (x + y) % 2 == 0 ? REGIONS - 1 : 0;
                case RANDOM -> rnd.nextInt(REGIONS);
            };
        }
        return m;
    }
}
