package dev.silhouette.train;

import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Window;
import dev.silhouette.io.Idx;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertThrows;
import static org.testng.Assert.assertTrue;

public class TrainerTest {

    /** conv-bn-relu, a residual conv, global pooling, linear: every trainable op kind of the zoo's ResNets. */
    static Graph tinyNet(long seed, int classes) {
        GraphBuilder b = new GraphBuilder(seed);
        String x = b.input("input", 1, 8, 8);
        String h = b.relu("relu1", b.batchNorm("bn1", b.conv("conv1", x, 8, Window.square(3, 1, 1), 1, false)));
        String r = b.batchNorm("bn2", b.conv("conv2", h, 8, Window.square(3, 1, 1), 1, false));
        h = b.relu("relu2", b.add("add", new Op.Add(), h, r));
        h = b.add("flatten", new Op.Flatten(), b.add("gap", new Op.GlobalAvgPool(), h));
        b.output(b.linear("fc", h, classes));
        return b.build();
    }

    static Idx.Dataset randomData(int n, int classes, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) labels[i] = rnd.nextInt(classes);
        return new Idx.Dataset(Tensor.uniform(Shape.of(n, 1, 8, 8), 0, 1, seed), labels);
    }

    @Test
    public void tinyNetworkOverfitsASmallBatchWithEitherOptimizer() {
        for (Optimizer opt : new Optimizer[] {new Optimizer.Sgd(0.9, true, 5e-4), new Optimizer.AdamW(0.9, 0.999, 1e-8, 1e-2)}) {
            Idx.Dataset data = randomData(16, 4, 3);
            Network net = new Network(tinyNet(1, 4));
            Trainer t = new Trainer(net, opt, new Schedule.Constant(opt instanceof Optimizer.Sgd ? 0.05 : 0.01),
                    data, new Trainer.Config(1, 16, 0, Batches.Augmentation.NONE, "fc"));
            double first = t.trainStep(data.images(), data.labels()).loss();
            Loss.Result last = null;
            for (int i = 0; i < 300; i++) last = t.trainStep(data.images(), data.labels());
            assertEquals(last.correct(), 16, opt.name() + " should fit 16 random labels exactly; loss " + first + " -> " + last.loss());
            assertTrue(last.loss() < first / 10, opt.name() + ": loss " + first + " -> " + last.loss());
        }
    }

    /** With the whole loss on distillation, a student learns its teacher's predictions, not the labels. */
    @Test
    public void aDistilledStudentLearnsItsTeachersPredictions() {
        Idx.Dataset data = randomData(16, 4, 3);
        Network teacher = new Network(tinyNet(7, 4));
        Tensor teacherLogits = teacher.forward(Map.of("input", data.images()), false).value("fc");
        int[] teacherSays = argmax(teacherLogits);
        int disagree = 0;
        for (int i = 0; i < teacherSays.length; i++) if (teacherSays[i] != data.labels()[i]) disagree++;
        assertTrue(disagree >= 8, "the teacher should disagree with the random labels often, not " + disagree + " times in 16");

        Network student = new Network(tinyNet(1, 4));
        Trainer t = new Trainer(student, new Optimizer.Sgd(0.9, true, 0), new Schedule.Constant(0.05), data,
                new Trainer.Config(1, 16, 0, Batches.Augmentation.NONE, "fc"),
                new Trainer.Distillation(images -> teacher.forward(Map.of("input", images), false).value("fc"), 1f, 2f));
        for (int i = 0; i < 300; i++) t.trainStep(data.images(), data.labels());
        assertEquals(argmax(student.forward(Map.of("input", data.images()), false).value("fc")), teacherSays);
        assertThrows(IllegalArgumentException.class, () -> new Trainer.Distillation(images -> images, 0f, 1f));
        assertThrows(IllegalArgumentException.class, () -> new Trainer.Distillation(images -> images, 0.5f, Float.NaN));
    }

    static int[] argmax(Tensor logits) {
        int n = logits.shape().dim(0), classes = logits.shape().dim(1);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            for (int c = 1; c < classes; c++) if (logits.data()[i * classes + c] > logits.data()[i * classes + out[i]]) out[i] = c;
        }
        return out;
    }

    private static Trainer trainer(Idx.Dataset data, long seed) {
        return trainer(data, seed, new QuantMode.Fp32());
    }

    private static Trainer trainer(Idx.Dataset data, long seed, QuantMode quant) {
        Graph model = tinyNet(seed, 3);
        Network net = QuantMode.network(model, quant.plan(model, "tiny"));
        Trainer.Config c = new Trainer.Config(2, 8, seed, Batches.Augmentation.CROP_FLIP, "fc");
        return new Trainer(net, new Optimizer.Sgd(0.9, true, 5e-4), Schedule.OneCycle.of(0.1, Trainer.totalSteps(data.labels().length, c), 0.15), data, c);
    }

    /** Under PACT, whose learned clip levels are parameters of the checkpoint too (train's float resume is in TrainCommandTest). */
    @Test
    public void resumingFromACheckpointGivesTheWeightsOfAnUninterruptedRun() throws Exception {
        Idx.Dataset data = randomData(36, 3, 5), test = randomData(10, 3, 6);
        QuantMode pact = new QuantMode.PactMode(4, 3);
        Trainer straight = trainer(data, 9, pact);
        assertTrue(straight.network().trainable().stream().anyMatch(n -> n.endsWith(".alpha")), straight.network().trainable().toString());
        while (!straight.finished()) straight.runEpoch(test, null, s -> {});

        Path dir = Files.createTempDirectory("resume");
        for (long stopAt : new long[] {4, 6}) {   // 4 steps per epoch: at an epoch boundary and mid-epoch
            Path ckpt = dir.resolve("ckpt-" + stopAt + ".safetensors");
            Trainer first = trainer(data, 9, pact);
            try {
                first.runEpoch(test, null, s -> {
                    if (s == stopAt) {
                        first.save(ckpt, Map.of());
                        throw new IllegalStateException("simulated interruption");
                    }
                });
                first.runEpoch(test, null, s -> {
                    if (s == stopAt) {
                        first.save(ckpt, Map.of());
                        throw new IllegalStateException("simulated interruption");
                    }
                });
            } catch (IllegalStateException expected) {
                assertEquals(expected.getMessage(), "simulated interruption");
            }
            Trainer resumed = trainer(data, 9, pact);
            resumed.resume(ckpt);
            assertEquals(resumed.step(), stopAt);
            while (!resumed.finished()) resumed.runEpoch(test, null, s -> {});
            for (var e : straight.network().parameters().entrySet()) {
                assertEquals(resumed.network().parameters().get(e.getKey()).data(), e.getValue().data(), "parameter " + e.getKey() + " after resuming at step " + stopAt);
            }
            assertEquals(resumed.history().size(), straight.history().size());
            for (int i = 0; i < straight.history().size(); i++) {
                Trainer.EpochRecord a = straight.history().get(i), b = resumed.history().get(i);
                assertEquals(new double[] {a.epoch(), a.trainLoss(), a.trainAccuracy(), a.testLoss(), a.testAccuracy()},
                        new double[] {b.epoch(), b.trainLoss(), b.trainAccuracy(), b.testLoss(), b.testAccuracy()}, "epoch record " + i + " after resuming at step " + stopAt);
            }
        }
    }

    @Test
    public void resumeRefusesOtherSettingsAndNonCheckpoints() throws Exception {
        Idx.Dataset data = randomData(36, 3, 5);
        Path dir = Files.createTempDirectory("resume");
        Trainer a = trainer(data, 9);
        a.save(dir.resolve("a.safetensors"), Map.of());
        Trainer other = trainer(data, 10);
        IllegalArgumentException e = expectThrows(() -> other.resume(dir.resolve("a.safetensors")));
        assertTrue(e.getMessage().contains("same settings"), e.getMessage());
        e = expectThrows(() -> trainer(data, 9, new QuantMode.PactMode(4, 3)).resume(dir.resolve("a.safetensors")));
        assertTrue(e.getMessage().contains("PactQuantize") && e.getMessage().contains("same settings"), e.getMessage());
        Trainer otherLr = new Trainer(new Network(tinyNet(9, 3)), new Optimizer.Sgd(0.9, true, 5e-4), new Schedule.Constant(0.1), data,
                new Trainer.Config(2, 8, 9, Batches.Augmentation.CROP_FLIP, "fc"));
        e = expectThrows(() -> otherLr.resume(dir.resolve("a.safetensors")));
        assertTrue(e.getMessage().contains("Constant[lr=0.1]") && e.getMessage().contains("same settings"), e.getMessage());
        assertTrue(expectThrows(() -> a.resume(dir.resolve("missing.safetensors"))).getMessage().contains("does not exist"));
        Trainer.saveModel(a.network(), dir.resolve("model.safetensors"), Map.of());
        assertTrue(expectThrows(() -> a.resume(dir.resolve("model.safetensors"))).getMessage().contains("not a training checkpoint"));
    }

    private static IllegalArgumentException expectThrows(Runnable r) {
        try {
            r.run();
        } catch (IllegalArgumentException e) {
            return e;
        }
        throw new AssertionError("expected an IllegalArgumentException");
    }

    @Test
    public void nanLossStopsWithAClearMessage() {
        Idx.Dataset data = randomData(8, 3, 1);
        Network net = new Network(tinyNet(1, 3));
        net.parameters().get("fc.bias").data()[0] = Float.NaN;
        Trainer t = new Trainer(net, new Optimizer.Sgd(0, false, 0), new Schedule.Constant(0.1), data, new Trainer.Config(1, 8, 0, Batches.Augmentation.NONE, "fc"));
        IllegalStateException e = org.testng.Assert.expectThrows(IllegalStateException.class, () -> t.trainStep(data.images(), data.labels()));
        assertTrue(e.getMessage().contains("NaN") && e.getMessage().contains("learning rate"), e.getMessage());
    }

    @Test
    public void configRejectsNonsense() {
        assertThrows(IllegalArgumentException.class, () -> new Trainer.Config(0, 8, 0, Batches.Augmentation.NONE, "fc"));
        Idx.Dataset data = randomData(8, 3, 1);
        assertThrows(IllegalArgumentException.class, () -> new Trainer(new Network(tinyNet(1, 3)), new Optimizer.Sgd(0, false, 0),
                new Schedule.Constant(0.1), data, new Trainer.Config(1, 9, 0, Batches.Augmentation.NONE, "fc")));
    }
}
