package dev.silhouette.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.silhouette.io.Idx;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;

/** `silhouette data cluttered` end to end, and the commands that take its folder with --data (or refuse it, naming both sizes). */
public class DataCommandTest {
    private static final int N = 40, SIZE = 60;
    Path parent, dir;
    CliTest.Result generated;

    @BeforeClass
    public void generate() throws Exception {
        parent = Files.createTempDirectory("cluttered");
        dir = parent.resolve("c60");
        generated = CliTest.run("data", "cluttered", "--size", "60", "--pieces", "3", "--seed", "7", "--limit", String.valueOf(N), "--out", dir.toString());
        assertEquals(generated.exitCode(), 0, generated.err());
    }

    /** The main job's headline makes the cluttered set in memory; it must be the folder this command writes, pixel for pixel. */
    @Test
    public void theInMemoryConstructionIsTheWrittenFolder() throws Exception {
        for (String split : new String[] {"train", "t10k"}) {
            FashionMnist source = split.equals("train") ? FashionMnist.trainSplit(null) : FashionMnist.testSplit(null);
            FashionMnist first = new FashionMnist(source.images().slice(0, N), java.util.Arrays.copyOf(source.labels(), N), "first " + N);
            Cluttered.Labelled made = Cluttered.inMemory(first, split.equals("train") ? Cluttered.TRAIN : Cluttered.TEST,
                    new Cluttered.Settings(SIZE, 3, Cluttered.PIECE, 7), N, "test");
            Idx.Dataset d = Idx.Dataset.load(dir.resolve(split + "-images-idx3-ubyte.gz"), dir.resolve(split + "-labels-idx1-ubyte.gz"));
            assertEquals(made.images().images().data(), d.images().data(), split + ": pixels");
            assertEquals(made.images().labels(), d.labels(), split + ": labels");
            assertEquals(made.boxes(), Localisation.read(dir.resolve(split + "-boxes.csv")), split + ": boxes");
        }
        // A prefix of a split is the same canvases as the whole (clutter still drawn from every item).
        FashionMnist test = FashionMnist.testSplit(null);
        FashionMnist first = new FashionMnist(test.images().slice(0, N), java.util.Arrays.copyOf(test.labels(), N), "first " + N);
        Cluttered.Settings s = new Cluttered.Settings(SIZE, 3, Cluttered.PIECE, 7);
        float[] whole = Cluttered.inMemory(first, Cluttered.TEST, s, N, "all").images().images().data();
        float[] prefix = Cluttered.inMemory(first, Cluttered.TEST, s, 5, "five").images().images().data();
        assertEquals(prefix, java.util.Arrays.copyOf(whole, 5 * SIZE * SIZE));
    }

    @Test
    public void writesBothSplitsInTheSourcesOrderWithBoxesAndAManifest() throws Exception {
        try (Stream<Path> s = Files.list(parent)) {
            assertEquals(s.map(p -> p.getFileName().toString()).filter(name -> name.startsWith(".")).toList(), List.of(),
                    "no temporary folder is left beside the output");
        }
        for (String split : new String[] {"train", "t10k"}) {
            FashionMnist source = split.equals("train") ? FashionMnist.trainSplit(null) : FashionMnist.testSplit(null);
            Idx.Dataset d = Idx.Dataset.load(dir.resolve(split + "-images-idx3-ubyte.gz"), dir.resolve(split + "-labels-idx1-ubyte.gz"));
            assertEquals(d.images().shape().toString(), "[" + N + ", 1, 60, 60]");
            assertEquals(d.labels(), java.util.Arrays.copyOf(source.labels(), N), split + ": the source's labels in its order");
            List<String> csv = Files.readAllLines(dir.resolve(split + "-boxes.csv"));
            assertEquals(csv.getFirst(), "index,label,x,y,width,height,frame_x,frame_y");
            assertEquals(csv.size(), N + 1);
            for (int i = 0; i < N; i++) {
                String[] f = csv.get(i + 1).split(",");
                assertEquals(Integer.parseInt(f[0]), i);
                assertEquals(Integer.parseInt(f[1]), d.labels()[i]);
                int x = Integer.parseInt(f[2]), y = Integer.parseInt(f[3]), w = Integer.parseInt(f[4]), h = Integer.parseInt(f[5]);
                int fx = Integer.parseInt(f[6]), fy = Integer.parseInt(f[7]);
                // Every nonzero pixel of the source item, put at the frame, lies in the box, and the canvas there is at least as bright.
                for (int yy = 0; yy < 28; yy++)
                    for (int xx = 0; xx < 28; xx++) {
                        float item = source.images().get(i, 0, yy, xx);
                        assertTrue(d.images().get(i, 0, fy + yy, fx + xx) >= item, split + " " + i);
                        if (item > 0) assertTrue(fx + xx >= x && fx + xx < x + w && fy + yy >= y && fy + yy < y + h, split + " " + i + ": outside the box");
                    }
            }
        }
        JsonObject manifest = JsonParser.parseString(Files.readString(dir.resolve("cluttered.json"))).getAsJsonObject();
        assertEquals(manifest.get("seed").getAsLong(), 7);
        assertEquals(manifest.get("pieces").getAsInt(), 3);
        assertTrue(manifest.get("construction").getAsString().contains("Mnih"));
        assertTrue(generated.out().contains("wrote " + dir), generated.out());
    }

    @Test
    public void theSameSeedWritesTheSameBytesAndAnExistingFolderIsLeftAlone() throws Exception {
        Path again = parent.resolve("again");
        CliTest.Result r = CliTest.run("data", "cluttered", "--size", "60", "--pieces", "3", "--seed", "7", "--limit", String.valueOf(N), "--out", again.toString());
        assertEquals(r.exitCode(), 0, r.err());
        for (String f : new String[] {"train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-boxes.csv"}) {
            assertEquals(Idx.read(again.resolve(f.replace("boxes.csv", "images-idx3-ubyte.gz"))).data(), Idx.read(dir.resolve(f.replace("boxes.csv", "images-idx3-ubyte.gz"))).data(), f);
        }
        assertEquals(Files.readString(again.resolve("t10k-boxes.csv")), Files.readString(dir.resolve("t10k-boxes.csv")));
        byte[] before = Files.readAllBytes(dir.resolve("t10k-images-idx3-ubyte.gz"));
        r = CliTest.run("data", "cluttered", "--seed", "8", "--limit", "5", "--out", dir.toString());
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().contains("--out " + dir + " already exists"), r.err());
        assertEquals(Files.readAllBytes(dir.resolve("t10k-images-idx3-ubyte.gz")), before);
        r = CliTest.run("data", "cluttered", "--size", "20", "--limit", "5", "--out", parent.resolve("small").toString());
        assertEquals(r.exitCode(), 2);
        assertEquals(r.err().strip(), "silhouette: --size 20 is smaller than the 28x28 items");
        assertFalse(Files.exists(parent.resolve("small")));
        try (Stream<Path> s = Files.list(parent)) {
            assertEquals(s.filter(p -> p.getFileName().toString().startsWith(".")).toList(), List.of(), "no temporary folder left by a refusal");
        }
        Files.walk(again).sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }

    /** The bundled cluttered model was trained on seed 0 with 4 pieces; this folder is seed 7 with 3. Untrained, it would score about 10%. */
    @Test
    public void theBundledClutteredModelRecognisesItemsOnAFolderOfAnotherSeedAndPieceCount() {
        CliTest.Result r = CliTest.run("run", "--plain", "--model", "bundled-cluttered", "--data", dir.toString(), "--backend", "cpu", "--json");
        assertEquals(r.exitCode(), 0, r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertEquals(o.get("images").getAsInt(), N);
        assertTrue(o.get("accuracy").getAsDouble() > 0.6, "accuracy " + o.get("accuracy") + " on " + N + " images");
        // Without --data the 28x28 default cannot feed it: the message says how to make a folder that can.
        CliTest.Result none = CliTest.run("run", "--plain", "--model", "bundled-cluttered", "--limit", "5");
        assertEquals(none.exitCode(), 2, none.err());
        assertTrue(none.err().contains("takes input [1, 60, 60]") && none.err().contains("silhouette data cluttered --size 60 --out DIR"), none.err());
    }

    @Test
    public void runsAModelOfItsSizeOnTheFolder() {
        CliTest.Result r = CliTest.run("run", "--plain", "--model", "cluttered-resnet", "--data", dir.toString(), "--backend", "cpu", "--json");
        assertEquals(r.exitCode(), 0, r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertEquals(o.get("images").getAsInt(), N);
        assertEquals(o.get("data").getAsString(), dir.toString());
        int confused = 0;
        for (var row : o.getAsJsonArray("confusion")) for (var c : row.getAsJsonArray()) confused += c.getAsInt();
        assertEquals(confused, N, "every image is counted once");
    }

    @Test
    public void theMainJobRunsOnTheFolderAndCalibratesOnItsTrainingSplit() throws Exception {
        Path out = Files.createTempDirectory("cluttered-main-job");
        CliTest.Result r = CliTest.run("run", "--model", "cluttered-resnet", "--data", dir.toString(), "--limit", "20", "--calibration", "20",
                "--backend", "cpu", "--json", "--out", out.toString());
        assertEquals(r.exitCode(), 0, r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertEquals(o.get("images").getAsInt(), 20);
        assertTrue(o.get("calibration").getAsString().contains("training split in " + dir), o.get("calibration").getAsString());
        assertTrue(o.getAsJsonArray("rows").size() > 20);
        assertEquals(javax.imageio.ImageIO.read(out.resolve("masks.png").toFile()).getHeight() > 4 * 60, true, "mask cells at the 60x60 images' scale");
        // The folder lists each item's box, so the job says how much of each silhouette's top 20% lies in it.
        JsonObject loc = o.getAsJsonObject("localisation");
        assertEquals(loc.get("images").getAsInt(), 20);
        for (String s : new String[] {"learned", "trainingFree", "noise"}) {
            double v = loc.get(s).getAsDouble();
            assertTrue(v >= 0 && v <= 1, s + " " + v);
        }
        double chance = 0;
        List<String> csv = Files.readAllLines(dir.resolve("t10k-boxes.csv"));
        for (int i = 1; i <= 20; i++) {
            String[] f = csv.get(i).split(",");
            chance += Integer.parseInt(f[4]) * Integer.parseInt(f[5]) / 3600.0 / 20;
        }
        assertEquals(loc.get("chance").getAsDouble(), chance, 1e-12);
    }

    @Test
    public void everyCommandRefusesAFolderOfAnotherSizeNamingBoth() throws Exception {
        String[][] commands = {
                {"run", "--plain", "--data", dir.toString()},
                {"run", "--data", dir.toString(), "--limit", "5"},
                {"eval", "--data", dir.toString()},
                {"calibrate", "--data", dir.toString(), "--images", "10", "--out", parent.resolve("stats.json").toString()},
                {"train", "--data", dir.toString(), "--epochs", "1", "--out", parent.resolve("m.safetensors").toString()},
                {"finetune", "--data", dir.toString(), "--epochs", "1", "--out", parent.resolve("f.safetensors").toString()},
        };
        for (String[] c : commands) {
            CliTest.Result r = CliTest.run(c);
            assertEquals(r.exitCode(), 2, String.join(" ", c) + ": " + r.err());
            String err = r.err().strip();
            assertTrue(err.startsWith("silhouette: model 'fmnist-resnet' takes input [1, 28, 28]") && err.contains("[1, 60, 60]") && err.contains(dir.toString()),
                    String.join(" ", c) + ": " + err);
            assertEquals(err.lines().count(), 1L, "one message");
        }
        assertFalse(Files.exists(parent.resolve("stats.json")) || Files.exists(parent.resolve("m.safetensors")) || Files.exists(parent.resolve("f.safetensors")));

        // A 60x60 folder without a training split: calibration would fall back to 28x28 Fashion-MNIST, which the message names.
        Path testOnly = Files.createDirectories(parent.resolve("test-only"));
        for (String f : new String[] {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) Files.copy(dir.resolve(f), testOnly.resolve(f));
        CliTest.Result r = CliTest.run("run", "--model", "cluttered-resnet", "--data", testOnly.toString(), "--limit", "5", "--calibration", "5");
        assertEquals(r.exitCode(), 2, r.err());
        assertTrue(r.err().contains("takes input [1, 60, 60], the calibration images") && r.err().contains("[1, 28, 28]")
                && r.err().contains("train-images-idx3-ubyte"), r.err());
        CliTest.Result plain = CliTest.run("run", "--plain", "--model", "cluttered-resnet", "--data", testOnly.toString(), "--limit", "5");
        assertEquals(plain.exitCode(), 0, "the plain evaluation needs the test split alone: " + plain.err());
    }
}
