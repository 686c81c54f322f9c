package dev.silhouette.cli;

import dev.silhouette.graph.ModelLoader;
import dev.silhouette.io.SafeTensors;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlanJson;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/** `silhouette train` end to end on small synthetic IDX data, and its messages for bad input. */
public class TrainCommandTest {

    /** Writes train/t10k IDX files of random images whose label is their brightest quadrant. */
    static Path dataset(int size, int train, int test) throws IOException {
        Path dir = Files.createTempDirectory("idx");
        SplittableRandom rnd = new SplittableRandom(1);
        for (String split : new String[] {"train", "t10k"}) {
            int n = split.equals("train") ? train : test;
            byte[] images = new byte[n * size * size], labels = new byte[n];
            for (int i = 0; i < n; i++) {
                int label = rnd.nextInt(4);
                labels[i] = (byte) label;
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++) {
                        boolean bright = (y < size / 2 ? 0 : 2) + (x < size / 2 ? 0 : 1) == label;
                        images[i * size * size + y * size + x] = (byte) (rnd.nextInt(bright ? 256 : 64));
                    }
            }
            try (DataOutputStream out = new DataOutputStream(Files.newOutputStream(dir.resolve(split + "-images-idx3-ubyte")))) {
                out.writeInt(0x803);
                out.writeInt(n);
                out.writeInt(size);
                out.writeInt(size);
                out.write(images);
            }
            try (DataOutputStream out = new DataOutputStream(Files.newOutputStream(dir.resolve(split + "-labels-idx1-ubyte")))) {
                out.writeInt(0x801);
                out.writeInt(n);
                out.write(labels);
            }
        }
        return dir;
    }

    @Test
    public void trainsWritesALoadableModelAndACurveAndResumes() throws Exception {
        Path data = dataset(28, 256, 64), dir = Files.createTempDirectory("train");
        Path model = dir.resolve("m.safetensors"), ckpt = dir.resolve("ck.safetensors");
        String[] args = {"train", "--data", data.toString(), "--epochs", "2", "--batch", "64", "--seed", "3", "--checkpoint", ckpt.toString(),
                "--checkpoint-every", "3", "--out", model.toString()};
        CliTest.Result r = CliTest.run(args);
        assertEquals(r.exitCode(), 0, r.err());
        assertTrue(r.out().contains("epoch 2/2 loss") && r.out().contains("images/s"), r.out());
        ModelLoader.Loaded loaded = ModelLoader.load(model.toString());
        assertEquals(loaded.architecture(), "fmnist-resnet");
        assertTrue(loaded.metadata().get("silhouette.training").contains("\"seed\":3"), loaded.metadata().toString());
        BufferedImage png = ImageIO.read(dir.resolve("m.png").toFile());
        assertEquals(png.getWidth(), 1000);

        // Resuming a finished run's checkpoint trains no further and reproduces the weights exactly.
        Path again = dir.resolve("again.safetensors");
        args[args.length - 1] = again.toString();
        String[] resumed = java.util.Arrays.copyOf(args, args.length + 1);
        resumed[args.length] = "--resume";
        r = CliTest.run(resumed);
        assertEquals(r.exitCode(), 0, r.err());
        assertTrue(r.err().contains("resumed from " + ckpt + " at epoch 3, step 8"), r.err());
        Map<String, Tensor> a = SafeTensors.read(model), b = SafeTensors.read(again);
        assertEquals(b.keySet(), a.keySet());
        a.forEach((name, t) -> assertEquals(b.get(name).data(), t.data(), name));
    }

    /** The trained model's plan, in its metadata and beside it, is what eval and run --plan evaluate: the training run's own test accuracy. */
    @Test
    public void pactTrainingWritesThePlanEvalAndRunReproduce() throws Exception {
        Path data = dataset(28, 64, 48), dir = Files.createTempDirectory("train");
        Path model = dir.resolve("q.safetensors"), planFile = dir.resolve("q.plan.json");
        CliTest.Result r = CliTest.run("train", "--data", data.toString(), "--epochs", "1", "--batch", "32", "--quant", "pact:4/4", "--out", model.toString());
        assertEquals(r.exitCode(), 0, r.err());
        assertTrue(r.out().contains("plan 'trained pact:4/4' in its metadata and in " + planFile), r.out());
        Map<String, String> meta = SafeTensors.readMetadata(model);
        assertTrue(!meta.containsKey("silhouette.pact_alpha"), meta.keySet().toString());
        QuantPlan plan = QuantPlanJson.read(meta.get(QuantCommands.PLAN_METADATA_KEY), model.toString());
        assertEquals(QuantPlanJson.write(QuantPlanJson.load(planFile)), QuantPlanJson.write(plan));
        QuantPlan.LayerPlan first = plan.layer("layer1.0.conv1");
        assertEquals(first.input(), "relu");
        float alpha = ((QuantPlan.Activations.Pact) first.activations()).alpha();
        assertTrue(alpha != 10f, "the clip level learned: " + alpha);
        assertTrue(plan.layer("conv1") == null && plan.layer("fc") == null, "first conv and classifier stay in float");
        double trainedAccuracy = com.google.gson.JsonParser.parseString(meta.get("silhouette.training")).getAsJsonObject().get("test_accuracy").getAsDouble();

        CliTest.Result eval = CliTest.run("eval", "--model", model.toString(), "--data", data.toString(), "--json");
        assertEquals(eval.exitCode(), 0, eval.err());
        var report = com.google.gson.JsonParser.parseString(eval.out()).getAsJsonObject();
        assertEquals(report.get("recipe").getAsString(), "trained pact:4/4");
        assertEquals(report.get("correct").getAsInt(), (int) Math.round(trainedAccuracy * 48), eval.out());
        CliTest.Result run = CliTest.run("run", "--model", model.toString(), "--plan", planFile.toString(), "--data", data.toString(), "--json");
        assertEquals(run.exitCode(), 0, run.err());
        assertEquals(com.google.gson.JsonParser.parseString(run.out()).getAsJsonObject().get("correct").getAsInt(), report.get("correct").getAsInt(), run.out());
    }

    private static void assertOneLineError(CliTest.Result r, String... fragments) {
        assertEquals(r.exitCode(), 2, r.out() + r.err());
        String msg = r.err().strip();
        assertTrue(!msg.contains("\n") && msg.startsWith("silhouette: "), "one line expected: " + msg);
        for (String f : fragments) assertTrue(msg.contains(f), "'" + f + "' missing from: " + msg);
    }

    @Test
    public void badInputStopsWithOneClearMessage() throws Exception {
        Path dir = Files.createTempDirectory("bad"), out = dir.resolve("m.safetensors");
        assertOneLineError(CliTest.run("train", "--data", dir.resolve("nowhere").toString(), "--out", out.toString()), "nowhere", "does not exist");
        assertOneLineError(CliTest.run("train", "--data", dir.toString(), "--out", out.toString()), "train-images-idx3-ubyte");
        Path small = dataset(32, 64, 16);
        assertOneLineError(CliTest.run("train", "--data", small.toString(), "--batch", "32", "--out", out.toString()), "[1, 28, 28]", "[1, 32, 32]");
        Path data = dataset(28, 128, 16);
        assertOneLineError(CliTest.run("train", "--data", data.toString(), "--batch", "64", "--lr", "1e38", "--schedule", "constant", "--out", out.toString()),
                "training loss became");
        assertOneLineError(CliTest.run("train", "--data", data.toString(), "--resume", "--out", out.toString()), "--resume needs --checkpoint");
        assertOneLineError(CliTest.run("train", "--data", data.toString(), "--quant", "int3", "--out", out.toString()), "--quant int3");
        assertOneLineError(CliTest.run("train", "--data", data.toString(), "--batch", "1000", "--out", out.toString()), "batch size 1000", "128 training samples");
        assertTrue(!Files.exists(out), "nothing written on failure");
    }
}
