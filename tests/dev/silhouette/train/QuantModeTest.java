package dev.silhouette.train;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.io.Idx;
import dev.silhouette.pipeline.PlanRewrite;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlan.Activations;
import dev.silhouette.pipeline.QuantPlan.LayerPlan;
import dev.silhouette.pipeline.QuantPlan.Weights;
import dev.silhouette.pipeline.QuantPlanJson;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;
import org.testng.annotations.Test;

import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertNotEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** {@code --quant} as a plan: where its quantizers sit, and that the trained model's plan is the network that was trained. */
public class QuantModeTest {

    /** TrainerTest's tiny net: conv1 (first, full precision), conv2 (receiving, reads relu1), a residual add of relu1, fc (classifier). */
    @Test
    public void pactQuantizesTheInputsOfTheReceivingLayersOnly() {
        Graph model = TrainerTest.tinyNet(1, 4);
        QuantPlan plan = new QuantMode.PactMode(4, 3).plan(model, "tiny");
        assertEquals(plan.layers().size(), 1, plan.toString());
        LayerPlan conv2 = plan.layer("conv2");
        assertEquals(conv2.input(), "relu1");
        assertEquals(conv2.activations(), new Activations.Pact(3, QuantMode.PACT_INITIAL_ALPHA));
        Weights.Symmetric w = (Weights.Symmetric) conv2.weights();
        assertEquals(w.bits(), new int[] {4, 4, 4, 4, 4, 4, 4, 4}, "per output channel");
        assertEquals(plan.fingerprint(), Passes.foldBatchNorm(model).fingerprint());

        Network net = QuantMode.network(model, plan);
        Node quantizer = net.graph().nodes().stream().filter(n -> n.op() instanceof Op.PactQuantize).findFirst().orElseThrow();
        assertEquals(quantizer.inputs(), List.of("relu1"));
        assertEquals(net.graph().node("conv2").inputs(), List.of(quantizer.name()));
        // The residual shortcut and the classifier's pooling read float values.
        assertEquals(net.graph().node("add").inputs().get(0), "relu1");
        assertEquals(net.graph().node("gap").inputs(), List.of("relu2"));
        assertEquals(net.graph().nodes().stream().filter(n -> n.op() instanceof Op.PactQuantize).count(), 1L);
        assertTrue(net.trainable().contains(quantizer.name() + ".alpha"), net.trainable().toString());
        String q = net.quantization();
        assertTrue(q.contains("conv2=SymmetricWeights[bits=4]") && !q.contains("conv1=") && !q.contains("fc="), q);

        QuantPlan binary = new QuantMode.BinaryWeights().plan(model, "tiny");
        assertEquals(((Weights.Symmetric) binary.layer("conv2").weights()).bits(), new int[] {1, 1, 1, 1, 1, 1, 1, 1});
        assertEquals(binary.layer("conv2").activations(), new Activations.Float());
        assertTrue(QuantMode.network(model, binary).quantization().contains("conv2=SignWeights[]"));
        assertTrue(new QuantMode.Fp32().plan(model, "tiny").layers().isEmpty());
    }

    /**
     * The oracle is the inference path: the trained model folded and rewritten by its plan (as eval and run load it)
     * on the CPU backend must predict what the training network predicts, image by image, and differ from the float model.
     */
    @Test
    public void theTrainedPlanRunsWhatWasTrained() {
        Idx.Dataset data = TrainerTest.randomData(32, 4, 5);
        for (QuantMode mode : new QuantMode[] {new QuantMode.PactMode(3, 2), new QuantMode.BinaryWeights()}) {
            Graph model = TrainerTest.tinyNet(2, 4);
            QuantPlan plan = mode.plan(model, "tiny");
            Network net = QuantMode.network(model, plan);
            Trainer t = new Trainer(net, new Optimizer.Sgd(0.9, true, 5e-4), new Schedule.Constant(0.05), data,
                    new Trainer.Config(1, 16, 0, Batches.Augmentation.NONE, "fc"));
            for (int i = 0; i < 30; i++) t.trainStep(data.images(), data.labels());
            QuantPlan trained = QuantMode.trained(net, model, plan);

            Graph trainedModel = model.withParameters(net.toGraph().parameters());
            Graph folded = Passes.foldBatchNorm(trainedModel);
            assertEquals(trained.fingerprint(), folded.fingerprint(), mode + ": keyed to the trained model");
            if (mode instanceof QuantMode.PactMode) {
                float alpha = ((Activations.Pact) trained.layer("conv2").activations()).alpha();
                assertEquals(alpha, net.clipLevels().get("relu1").get(2), mode + ": the learned clip level");
                assertNotEquals(alpha, QuantMode.PACT_INITIAL_ALPHA, mode + ": alpha never moved");
            }
            // Saved and read back unchanged.
            QuantPlan reread = QuantPlanJson.read(QuantPlanJson.write(trained), "test");
            assertEquals(QuantPlanJson.write(reread), QuantPlanJson.write(trained));

            Tensor expected = net.forward(Map.of("input", data.images()), false).value("fc");
            Tensor actual = new CpuBackend().run(PlanRewrite.apply(folded, reread), Map.of("input", data.images()), List.of("fc")).get("fc");
            Tensor floatModel = new CpuBackend().run(folded, Map.of("input", data.images()), List.of("fc")).get("fc");
            double maxDiff = 0, quantizationEffect = 0;
            for (int i = 0; i < expected.size(); i++) {
                maxDiff = Math.max(maxDiff, Math.abs(actual.data()[i] - expected.data()[i]));
                quantizationEffect = Math.max(quantizationEffect, Math.abs(floatModel.data()[i] - expected.data()[i]));
            }
            assertTrue(maxDiff < 1e-4, mode + ": max logit difference " + maxDiff);
            assertTrue(quantizationEffect > 1e-2, mode + ": the plan changes the float model's logits by only " + quantizationEffect);
            assertEquals(TrainerTest.argmax(actual), TrainerTest.argmax(expected), mode + ": predictions");
        }
    }

    @Test
    public void initStartsFromTheClipLevelsOfTheSameLayerInputAndWidth() {
        Graph model = TrainerTest.tinyNet(1, 4);
        QuantPlan plan = new QuantMode.PactMode(4, 3).plan(model, "tiny");
        QuantPlan before = new QuantPlan("tiny", "f", "before", new QuantPlan.SilhouetteSource.Learned(),
                List.of(new LayerPlan("conv2", "relu1", Weights.Symmetric.uniform(4, 8), new Activations.Pact(3, 1.25f))));
        assertEquals(QuantMode.startingFrom(plan, before).layer("conv2").activations(), new Activations.Pact(3, 1.25f));
        assertEquals(QuantMode.startingFrom(plan, before).fingerprint(), plan.fingerprint());
        QuantPlan otherWidth = new QuantPlan("tiny", "f", "before", new QuantPlan.SilhouetteSource.Learned(),
                List.of(new LayerPlan("conv2", "relu1", Weights.Symmetric.uniform(4, 8), new Activations.Pact(4, 1.25f))));
        assertEquals(QuantMode.startingFrom(plan, otherWidth).layer("conv2").activations(), new Activations.Pact(3, QuantMode.PACT_INITIAL_ALPHA));
    }

    @Test
    public void pactRefusesALayerReadingSignedValues() {
        GraphBuilder b = new GraphBuilder(1);
        String x = b.input("input", 1, 6, 6);
        String h = b.relu("relu1", b.conv("conv1", x, 4, Window.square(3, 1, 1), 1, false));
        String bn = b.batchNorm("bn2", b.conv("conv2", h, 4, Window.square(3, 1, 1), 1, false));
        String c3 = b.conv("conv3", bn, 4, Window.square(3, 1, 1), 1, false);
        b.output(b.linear("fc", b.add("flatten", new Op.Flatten(), b.add("gap", new Op.GlobalAvgPool(), c3)), 2));
        Graph g = b.build();
        String message = expectThrows(IllegalArgumentException.class, () -> new QuantMode.PactMode(4, 4).plan(g, "signed")).getMessage();
        assertTrue(message.contains("'conv3' reads 'bn2', which is not a ReLU output"), message);
        assertEquals(new QuantMode.BinaryWeights().plan(g, "signed").layers().size(), 2, "binary weights need no unsigned input");
    }
}
