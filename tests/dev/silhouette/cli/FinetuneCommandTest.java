package dev.silhouette.cli;

import dev.silhouette.graph.ModelLoader;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;

/** `silhouette finetune` end to end on small synthetic IDX data, the main job reading its file, and its messages for bad input. */
public class FinetuneCommandTest {

    @Test
    public void finetunesTheReceivingWeightsAndWritesAModelTheMainJobEvaluates() throws Exception {
        Path data = TrainCommandTest.dataset(28, 128, 32), dir = Files.createTempDirectory("finetune");
        Path model = dir.resolve("ft.safetensors");
        CliTest.Result r = CliTest.run("finetune", "--data", data.toString(), "--epochs", "1", "--batch", "32", "--lr", "0.05", "--calibration", "64",
                "--policy", "2:50,3:30,4:20", "--out", model.toString());
        assertEquals(r.exitCode(), 0, r.err());
        assertTrue(r.out().contains("epoch 1/1 loss") && r.out().contains("wrote " + model), r.out());

        ModelLoader.Loaded tuned = ModelLoader.load(model.toString()), bundled = ModelLoader.load(ModelLoader.BUNDLED);
        assertEquals(tuned.architecture(), "fmnist-resnet");
        assertTrue(tuned.metadata().get("silhouette.finetune").contains("2:50,3:30,4:20"), tuned.metadata().toString());
        Map<String, Tensor> after = tuned.graph().parameters(), before = bundled.graph().parameters();
        assertEquals(after.keySet(), before.keySet());
        // A receiving convolution moved, and so did the silhouette branch (its importance loss, by default).
        assertFalse(java.util.Arrays.equals(after.get("layer3.0.conv2.weight").data(), before.get("layer3.0.conv2.weight").data()));
        assertFalse(java.util.Arrays.equals(after.get("silhouette.conv.weight").data(), before.get("silhouette.conv.weight").data()));
        // Learned clip levels travel in the metadata: the policy's three widths after the branch, 8 bits before it.
        Map<String, Map<Integer, Float>> learned = LearnedClipLevels.read(tuned.metadata(), model.toString());
        assertEquals(learned.get("layer1.0.relu").keySet(), java.util.Set.of(2, 3, 4), learned.toString());
        assertEquals(learned.get("relu").keySet(), java.util.Set.of(8), learned.toString());

        CliTest.Result run = CliTest.run("run", "--model", model.toString(), "--data", data.toString(), "--limit", "16", "--calibration", "32",
                "--policy", "2:50,3:30,4:20", "--backend", "cpu", "--json", "--out", dir.resolve("results").toString());
        assertEquals(run.exitCode(), 0, run.err());
        assertTrue(run.out().contains("\"2:50,3:30,4:20 W4\""), run.out());
        // The main job quantizes with the learned levels, not recalibrated ones.
        com.google.gson.JsonObject used = com.google.gson.JsonParser.parseString(run.out()).getAsJsonObject().getAsJsonObject("clipLevels");
        assertEquals(used.getAsJsonObject("layer1.0.relu").get("2").getAsFloat(), learned.get("layer1.0.relu").get(2), run.out());
    }

    @Test
    public void aValidationSplitIsHeldOutOfTrainingAndDistillationIsReported() throws Exception {
        Path data = TrainCommandTest.dataset(28, 128, 32), dir = Files.createTempDirectory("finetune");
        Path model = dir.resolve("ft.safetensors");
        CliTest.Result r = CliTest.run("finetune", "--data", data.toString(), "--epochs", "1", "--batch", "32", "--calibration", "64",
                "--validation", "32", "--distill", "0.5", "--distill-temperature", "2", "--out", model.toString());
        assertEquals(r.exitCode(), 0, r.err());
        assertTrue(r.out().contains("on 96 training images") && r.out().contains("validation accuracy"), r.out());
        assertTrue(r.out().contains("distillation weight 0.5 temperature 2.0"), r.out());
        assertTrue(ModelLoader.load(model.toString()).metadata().get("silhouette.finetune").contains("validation_accuracy_in_loop"));

        CliTest.Result all = CliTest.run("finetune", "--data", data.toString(), "--validation", "128", "--out", dir.resolve("x.safetensors").toString());
        assertEquals(all.exitCode(), 2, all.err());
        assertTrue(all.err().contains("--validation 128") && all.err().contains("holds 128"), all.err());
        CliTest.Result distill = CliTest.run("finetune", "--data", data.toString(), "--distill", "1.5", "--out", dir.resolve("x.safetensors").toString());
        assertTrue(distill.err().contains("--distill 1.5 must be between 0 and 1"), distill.err());
        assertFalse(Files.exists(dir.resolve("x.safetensors")), "nothing written");
    }

    @Test
    public void withoutTheSilhouetteLossAndClipLearningTheBranchAndClipLevelsStay() throws Exception {
        Path data = TrainCommandTest.dataset(28, 64, 32), dir = Files.createTempDirectory("finetune");
        Path model = dir.resolve("ft.safetensors");
        CliTest.Result r = CliTest.run("finetune", "--data", data.toString(), "--epochs", "1", "--batch", "32", "--calibration", "64",
                "--silhouette-weight", "0", "--no-learn-clip-levels", "--out", model.toString());
        assertEquals(r.exitCode(), 0, r.err());
        ModelLoader.Loaded tuned = ModelLoader.load(model.toString()), bundled = ModelLoader.load(ModelLoader.BUNDLED);
        assertEquals(tuned.graph().parameters().get("silhouette.conv.weight").data(), bundled.graph().parameters().get("silhouette.conv.weight").data());
        assertFalse(tuned.metadata().containsKey(LearnedClipLevels.KEY), tuned.metadata().toString());
    }

    @Test
    public void branchOnlyTrainsTheSilhouetteAndLeavesEveryOtherTensorBitForBit() throws Exception {
        Path data = TrainCommandTest.dataset(28, 64, 32), dir = Files.createTempDirectory("finetune");
        Path model = dir.resolve("branch.safetensors");
        CliTest.Result r = CliTest.run("finetune", "--data", data.toString(), "--epochs", "1", "--batch", "32", "--lr", "0.05", "--calibration", "64",
                "--branch-only", "--out", model.toString());
        assertEquals(r.exitCode(), 0, r.err());
        ModelLoader.Loaded tuned = ModelLoader.load(model.toString()), bundled = ModelLoader.load(ModelLoader.BUNDLED);
        Map<String, Tensor> after = tuned.graph().parameters(), before = bundled.graph().parameters();
        int moved = 0;
        for (String name : before.keySet()) {
            boolean same = java.util.Arrays.equals(after.get(name).data(), before.get(name).data());
            if (name.startsWith("silhouette.")) moved += same ? 0 : 1;
            else assertTrue(same, name + " changed");
        }
        assertTrue(moved > 0, "the branch moved");
        assertFalse(tuned.metadata().containsKey(LearnedClipLevels.KEY), "clip levels stay calibrated");
        r = CliTest.run("finetune", "--branch-only", "--silhouette-weight", "0", "--out", "x.safetensors");
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().contains("--silhouette-weight"), r.err());
    }

    @Test
    public void malformedLearnedClipLevelsAreRefusedByName() {
        for (String bad : new String[] {"[1]", "{\"v\": 3}", "{\"v\": {\"x\": 1}}", "{\"v\": {\"2\": -1}}", "{\"v\": {\"9\": 1}}"}) {
            IllegalArgumentException e = org.testng.Assert.expectThrows(IllegalArgumentException.class,
                    () -> LearnedClipLevels.read(Map.of(LearnedClipLevels.KEY, bad), "m.safetensors"));
            assertTrue(e.getMessage().contains("m.safetensors") && e.getMessage().contains(LearnedClipLevels.KEY), e.getMessage());
        }
        Map<String, Map<Integer, Float>> levels = Map.of("v", Map.of(2, 0.75f, 4, 1.5f));
        assertEquals(LearnedClipLevels.read(Map.of(LearnedClipLevels.KEY, LearnedClipLevels.json(levels)), "m"), levels);
    }

    @Test
    public void badInputIsOneMessageNamingIt() {
        CliTest.Result r = CliTest.run("finetune", "--policy", "2:50,3:40", "--out", "x.safetensors");
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().contains("2:50,3:40") && r.err().contains("90%"), r.err());
        r = CliTest.run("finetune", "--epochs", "0", "--out", "x.safetensors");
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().contains("--epochs 0"), r.err());
        r = CliTest.run("finetune", "--uniform", "9", "--out", "x.safetensors");
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().contains("--uniform bits 9 outside the supported 1..8"), r.err());
        r = CliTest.run("finetune", "--out", "x.bin");
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().contains("--out x.bin"), r.err());
    }
}
