package dev.silhouette.onnx;

import ai.onnxruntime.OrtSession;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.pipeline.PlanRewrite;
import dev.silhouette.pipeline.Plans;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/**
 * Quantized models as standard ONNX QDQ, run by ONNX Runtime against Silhouette's float simulation of the
 * same plan. Tolerance: ONNX Runtime computes the same codes (round half to even on x / scale) but may
 * fuse QDQ pairs into integer kernels and requantize in its own order, so a code on a rounding edge can
 * flip, by one step of the grid: logits agree within 2% of their mean magnitude at 8 bits, 6% at 4 bits (steps
 * 16 times coarser; measured 4.4%), and predictions on at least 95% of the images.
 */
public class QdqExportTest {
    static final Graph MODEL = Passes.foldBatchNorm(ModelLoader.load(ModelLoader.BUNDLED).graph());
    static final Plans.ClipLevels CLIPS = (value, bits) -> 2f + bits * 0.25f;

    static QuantPlan plan(Plans.Receiving receiving) {
        return Plans.of(MODEL, "test", receiving.toString(), new QuantPlan.SilhouetteSource.Learned(), receiving, Plans.PRE_BRANCH_BITS, CLIPS);
    }

    @DataProvider
    public Object[][] uniform() {
        return new Object[][] {{8}, {4}};
    }

    @Test(dataProvider = "uniform")
    public void onnxRuntimeRunsTheExportedQdqModelAsSilhouetteSimulatesIt(int bits) throws Exception {
        QuantPlan plan = plan(new Plans.Receiving.Uniform(bits));
        Graph lowered = PlanRewrite.apply(MODEL, plan, PlanRewrite.Execution.PACKED);
        Path file = Files.createTempFile("qdq", ".onnx");
        try {
            OnnxExporter.write(lowered, 17, file, false);
            var proto = dev.silhouette.onnx.proto.Onnx.ModelProto.parseFrom(Files.readAllBytes(file));
            long quantizeLinear = proto.getGraph().getNodeList().stream().filter(n -> n.getOpType().equals("QuantizeLinear")).count();
            assertEquals(quantizeLinear, plan.layers().size(), "one QuantizeLinear per quantized layer");
            Tensor images = Tensor.uniform(Shape.of(64, 1, 28, 28), 0f, 1f, 3);
            Tensor ours = new CpuBackend().run(PlanRewrite.apply(MODEL, plan, PlanRewrite.Execution.SIMULATED), Map.of("input", images),
                    List.of(Models.LOGITS)).get(Models.LOGITS);
            Tensor theirs;
            try (OrtPeer ort = OrtPeer.open(file, OrtSession.SessionOptions.OptLevel.ALL_OPT)) {
                theirs = ort.run(Map.of("input", images)).get(Models.LOGITS);
            }
            double spread = 0, diff = 0;
            int agree = 0;
            for (int i = 0; i < 64; i++) {
                int a = 0, b = 0;
                for (int k = 0; k < 10; k++) {
                    spread += Math.abs(ours.data()[i * 10 + k]);
                    diff += Math.abs(ours.data()[i * 10 + k] - theirs.data()[i * 10 + k]);
                    if (ours.data()[i * 10 + k] > ours.data()[i * 10 + a]) a = k;
                    if (theirs.data()[i * 10 + k] > theirs.data()[i * 10 + b]) b = k;
                }
                if (a == b) agree++;
            }
            assertTrue(diff <= (bits == 8 ? 0.02 : 0.06) * spread, "mean |logit difference| " + diff / 640 + " against mean |logit| " + spread / 640);
            assertTrue(agree >= 61, agree + " of 64 predictions agree");
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    public void regionLayersAreRefusedWithTheReason() {
        QuantPlan plan = plan(new Plans.Receiving.Region(RegionPolicy.parse("2:50,3:30,4:20"), false, 4, Op.Interpolate.Mode.NEAREST,
                Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD));
        Graph lowered = PlanRewrite.apply(MODEL, plan, PlanRewrite.Execution.PACKED);
        var e = expectThrows(IllegalArgumentException.class, () -> OnnxExporter.toModel(lowered, 17, "region"));
        assertTrue(e.getMessage().contains("ONNX cannot express") || e.getMessage().contains("cannot express"), e.getMessage());
    }
}
