package dev.silhouette.pipeline;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.CpuOps;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Op;
import dev.silhouette.quant.Aciq;
import dev.silhouette.quant.ActivationStats;
import dev.silhouette.quant.BiasCorrection;
import dev.silhouette.quant.PtqRecipe;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlanJson;
import dev.silhouette.quant.Quantizers;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

public class PostTrainingTest {

    @Test
    public void fakeQuantizedRunEqualsQuantizersComposedByHand() throws Exception {
        Graph g = CalibrationTest.smallNet(3);
        Tensor images = Tensor.normal(Shape.of(6, 2, 9, 7), 1, 4);
        try (CpuBackend cpu = new CpuBackend()) {
            Calibration cal = Calibration.collect(cpu, g, "small", images, 3, Calibration.allValues(g), java.util.Set.of(), 1, dev.silhouette.io.Progress.none());
            PtqRecipe recipe = new PtqRecipe(4, 2, true, Aciq.Prior.LAPLACE, null, true, false, false, 0);
            QuantPlan q = PostTraining.plan(g, "small", recipe, cal).plan();
            Path file = Files.createTempDirectory("qm").resolve("q.json");
            QuantPlanJson.save(q, file);
            QuantPlan loaded = QuantPlanJson.load(file);
            Tensor got = cpu.run(PlanRewrite.apply(g, loaded), Map.of("image", images), List.of("relu")).get("relu");

            // By hand: the input on its ACIQ range (two-sided, it has negative values), per-channel max-clipped
            // 4-bit weights with bias correction, float conv, ReLU (not quantized: no weighted layer reads it).
            ActivationStats s = cal.layer("image");
            float[] range = s.aciqRange(Aciq.Prior.LAPLACE, 2);
            assertTrue(range[0] < 0 && range[0] > s.min() && range[1] < s.max(), "ACIQ clips inside the observed range");
            Tensor x = Quantizers.affine(images, 2, new float[] {range[0]}, new float[] {range[1]}).dequantize();
            Tensor w = g.parameters().get("conv.weight");
            Tensor wq = BiasCorrection.correct(w, Quantizers.symmetric(w, 4, Quantizers.maxAbs(w, 5))).dequantize();
            Op.Conv2d conv = (Op.Conv2d) g.node("conv").op();
            Tensor expected = CpuOps.relu(CpuOps.conv2d(x, wq, g.parameters().get("conv.bias"), conv));
            assertEquals(got.shape(), expected.shape());
            for (int i = 0; i < got.size(); i++) assertEquals(got.data()[i], expected.data()[i], 1e-5f, "output " + i);
            assertEquals(loaded.layers().size(), 1);
            assertEquals(((QuantPlan.Weights.Symmetric) loaded.layers().getFirst().weights()).bits(), new int[] {4, 4, 4, 4, 4});
        }
    }

    @Test
    public void eightBitsStayCloseToFullPrecision() {
        Graph g = CalibrationTest.smallNet(5);
        Tensor images = Tensor.uniform(Shape.of(4, 2, 9, 7), 0, 1, 6);
        try (CpuBackend cpu = new CpuBackend()) {
            Calibration cal = Calibration.collect(cpu, g, "small", images, 4, Calibration.allValues(g), java.util.Set.of(), 1, dev.silhouette.io.Progress.none());
            QuantPlan q = PostTraining.plan(g, "small", new PtqRecipe(8, 8, false, null, null, false, false, false, 0), cal).plan();
            Tensor fq = cpu.run(PlanRewrite.apply(g, q), Map.of("image", images), List.of("relu")).get("relu");
            Tensor fp = cpu.run(g, Map.of("image", images)).get("relu");
            double maxOut = 0, maxErr = 0;
            for (int i = 0; i < fp.size(); i++) {
                maxOut = Math.max(maxOut, Math.abs(fp.data()[i]));
                maxErr = Math.max(maxErr, Math.abs(fp.data()[i] - fq.data()[i]));
            }
            assertTrue(maxErr < 0.02 * maxOut, "8-bit error " + maxErr + " vs outputs up to " + maxOut);
        }
    }

    @Test
    public void aConfigurationOfAnotherModelIsRefused() throws Exception {
        Graph g = CalibrationTest.smallNet(3), other = CalibrationTest.smallNet(4);
        Tensor images = Tensor.uniform(Shape.of(2, 2, 9, 7), 0, 1, 4);
        try (CpuBackend cpu = new CpuBackend()) {
            Calibration cal = Calibration.collect(cpu, g, "small", images, 2, Calibration.allValues(g), java.util.Set.of(), 1, dev.silhouette.io.Progress.none());
            var e = expectThrows(IllegalArgumentException.class,
                    () -> PostTraining.plan(other, "other", new PtqRecipe(4, 4, false, null, null, false, false, false, 0), cal));
            assertTrue(e.getMessage().contains("collected on another model ('small')"), e.getMessage());
            Path file = Files.createTempDirectory("qm").resolve("q.json");
            QuantPlanJson.save(PostTraining.plan(g, "small", new PtqRecipe(4, 4, false, null, null, false, false, false, 0), cal).plan(), file);
            QuantPlan loaded = QuantPlanJson.load(file);
            e = expectThrows(IllegalArgumentException.class, () -> PlanRewrite.apply(other, loaded));
            assertTrue(e.getMessage().contains("made for another model ('small'"), e.getMessage());
            Path tampered = file.resolveSibling("tampered.json");
            Files.writeString(tampered, Files.readString(file).replaceFirst("\"bits\": \\[\\s*4\\s*\\]", "\"bits\": [9]"));
            e = expectThrows(IllegalArgumentException.class, () -> QuantPlanJson.load(tampered));
            assertEquals(e.getMessage(), "quantization plan " + tampered + ": layers[0].weights is not valid: weight bits 9 outside the supported 1..8");
        }
    }

    @Test
    public void badRecipesFailWithOneMessage() {
        var e = expectThrows(IllegalArgumentException.class, () -> new PtqRecipe(0, 4, false, null, null, false, false, false, 0));
        assertEquals(e.getMessage(), "weight bits 0 outside the supported 1..8");
        e = expectThrows(IllegalArgumentException.class, () -> new PtqRecipe(4, 9, false, null, null, false, false, false, 0));
        assertEquals(e.getMessage(), "activation bits 9 outside the supported 1..8");
        e = expectThrows(IllegalArgumentException.class, () -> new PtqRecipe(4, 4, false, null, null, false, true, false, 0));
        assertTrue(e.getMessage().contains("needs per-channel weight scales"), e.getMessage());
    }

    @Test
    public void activationChannelBitsFollowChannelRangesUnderTheBudget() {
        Graph g = CalibrationTest.smallNet(7);
        Tensor images = Tensor.uniform(Shape.of(5, 2, 9, 7), 0, 1, 8);
        int plane = 9 * 7;
        for (int i = 0; i < images.size(); i++) if (i / plane % 2 == 0) images.data()[i] *= 40;
        try (CpuBackend cpu = new CpuBackend()) {
            Calibration cal = Calibration.collect(cpu, g, "small", images, 5, Calibration.allValues(g), java.util.Set.of(), 1, dev.silhouette.io.Progress.none());
            QuantPlan q = PostTraining.plan(g, "small", new PtqRecipe(8, 3, false, null, null, false, false, true, 0), cal).plan();
            assertEquals(q.layers().getFirst().input(), "image");
            QuantPlan.Activations.Affine a = (QuantPlan.Activations.Affine) q.layers().getFirst().activations();
            assertEquals(a.channelBits()[0] + a.channelBits()[1], 6, "budget of 3 bits over 2 channels");
            assertTrue(a.channelBits()[0] > a.channelBits()[1], "the 40x wider channel gets more bits: " + java.util.Arrays.toString(a.channelBits()));
            Tensor got = cpu.run(PlanRewrite.apply(g, q), Map.of("image", images), List.of("image.q3")).get("image.q3");
            for (int i = 0; i < images.size(); i++) {
                int c = i / plane % 2;
                Tensor one = new Tensor(Shape.of(1), new float[] {images.data()[i]});
                float expected = Quantizers.affine(one, a.channelBits()[c], new float[] {a.channelLo()[c]}, new float[] {a.channelHi()[c]}).dequantize().data()[0];
                assertEquals(got.data()[i], expected, 0f, "value " + i + " of channel " + c);
            }
        }
    }
}
