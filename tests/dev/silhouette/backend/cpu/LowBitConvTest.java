package dev.silhouette.backend.cpu;

import dev.silhouette.conformance.CaseResult;
import dev.silhouette.conformance.ConformanceCase;
import dev.silhouette.conformance.Problems;
import dev.silhouette.conformance.Target;
import dev.silhouette.conformance.Verdict;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Op.LowBitConv2d.ActivationCodes;
import dev.silhouette.quant.LowBitWeights;
import dev.silhouette.quant.WeightQuantization;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import static dev.silhouette.conformance.ConformanceAssert.assertConforms;
import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/**
 * The packed path's integer accumulators ({@link LowBitConv}, every formulation) against two plain-loop
 * specifications, through the conformance suite's case runner: {@link Reference#lowBitAccumulators} (the
 * op's own grid and codes) and, independently, {@link Reference#regionConv2d} (which quantizes float weights
 * and activations itself), on {@link Problems#lowBits()}: the convolution list's shapes with width pairs
 * walking all of 1..8 x 1..8 and region maps all-low, all-high, one pixel, checkerboard and random; then
 * affine grids with a zero point and DRQ classes.
 */
public class LowBitConvTest {

    @DataProvider
    public Object[][] conformance() {
        return Problems.lowBits().stream().map(c -> new Object[] {c}).toArray(Object[][]::new);
    }

    @Test(dataProvider = "conformance")
    public void everyFormulationEqualsTheIntegerReferences(ConformanceCase.LowBit c) {
        List<CaseResult> results = assertConforms(c, Target.cpu());
        for (CaseResult r : results) assertEquals(r.verdict(), Verdict.PASS, r.line());
        // Both Java formulations where 16-bit lanes hold the layer, and each native instruction set that loaded, where it takes the layer.
        Set<String> variants = results.stream().map(CaseResult::backend).collect(Collectors.toSet());
        assertTrue(variants.contains("cpu/int_lanes"), c + ": INT_LANES unchecked: " + variants);
        if (NativeLowBitConv.isa() != NativeLowBitConv.Isa.NONE) {
            assertTrue(variants.stream().anyMatch(v -> v.startsWith("cpu/native")), c + ": native kernels unchecked: " + variants);
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

    @Test
    public void nativeKernelsLoadOnX86WithGcc() {
        // The build compiles them wherever gcc runs on x86-64 (CI and these machines); elsewhere they are optional.
        boolean x86 = System.getProperty("os.arch").equals("amd64");
        if (x86) assertTrue(NativeLowBitConv.isa() != NativeLowBitConv.Isa.NONE, "native CPU kernels did not load: " + NativeLowBitConv.unavailable());
    }
}
