package dev.silhouette.cli;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertNotNull;
import static org.testng.Assert.assertTrue;

/** The default main job: both bundled datasets, each row on the weights fine-tuned for it, checked against the full table of that model. */
public class HeadlineTest {
    private static final String[] COMMON = {"--limit", "100", "--calibration", "50", "--batch", "50", "--backend", "cpu", "--json", "--quiet"};
    Path out;
    JsonObject report;

    @BeforeClass
    public void runHeadline() throws Exception {
        out = Files.createTempDirectory("silhouette-headline");
        CliTest.Result r = CliTest.run(args("run", "--out", out.toString()));
        assertEquals(r.exitCode(), 0, r.err());
        report = JsonParser.parseString(r.out()).getAsJsonObject();
    }

    private static String[] args(String... first) {
        List<String> all = new ArrayList<>(List.of(first));
        all.addAll(List.of(COMMON));
        return all.toArray(String[]::new);
    }

    private JsonObject section(int i) {
        return report.getAsJsonArray("datasets").get(i).getAsJsonObject();
    }

    private static JsonObject line(JsonObject section, String name, String silhouette) {
        for (var e : section.getAsJsonArray("rows")) {
            JsonObject l = e.getAsJsonObject(), row = l.getAsJsonObject("row");
            if (row.get("name").getAsString().equals(name) && row.get("silhouette").getAsString().equals(silhouette)) return l;
        }
        throw new AssertionError(name + " | " + silhouette + " not in " + section.getAsJsonArray("rows"));
    }

    @Test
    public void bothDatasetsWithTheHeadlineRowsInOrder() {
        JsonArray datasets = report.getAsJsonArray("datasets");
        assertEquals(datasets.size(), 2);
        assertEquals(section(0).get("dataset").getAsString(), "Fashion-MNIST");
        assertTrue(section(1).get("dataset").getAsString().startsWith("cluttered"), section(1).get("dataset").getAsString());
        for (int i = 0; i < 2; i++) {
            JsonObject s = section(i);
            assertEquals(s.get("images").getAsInt(), 100);
            List<String> names = new ArrayList<>();
            for (var e : s.getAsJsonArray("rows")) {
                JsonObject row = e.getAsJsonObject().getAsJsonObject("row");
                names.add(row.get("name").getAsString() + " | " + row.get("silhouette").getAsString());
            }
            assertEquals(names, List.of("FP32 | -", "W8A8 | -", "W4A3 | -", "W4A2 | -", MainJob.PTQ_ROW + " | -", "2:50,3:30,4:20 W4 | learned",
                    "2:50,3:30,4:20 W4 | training-free", "2:50,3:30,4:20 W4 | " + MainJob.NOISE, "DRQ 4/2 (2.7 bits) | input blocks"));
            String base = i == 0 ? "bundled" : "bundled-cluttered";
            assertEquals(line(s, "FP32", "-").get("model").getAsString(), base);
            assertEquals(line(s, "W4A3", "-").get("model").getAsString(), base + "-ft-w4a3");
            assertEquals(line(s, "W4A2", "-").get("model").getAsString(), base + "-ft-w4a2");
            assertEquals(line(s, "2:50,3:30,4:20 W4", "learned").get("model").getAsString(), base + "-ft-region");
            assertEquals(line(s, "W4A3", "-").get("weights").getAsString(), "fine-tuned for W4A3");
        }
        assertNotNull(section(1).get("localisation"), "the cluttered set has boxes: the localisation share");
        assertTrue(section(0).get("localisation") == null || section(0).get("localisation").isJsonNull(), "Fashion-MNIST has no boxes");
        assertTrue(Files.isRegularFile(out.resolve("results.json")));
        for (String d : new String[] {"fashion-mnist", "cluttered"}) {
            for (String picture : new String[] {"silhouettes.png", "masks.png", "accuracy-vs-bits.png"}) assertTrue(Files.isRegularFile(out.resolve(d).resolve(picture)), d + "/" + picture);
        }
    }

    /** Each headline row is the row of the full table of the model it names: the same accuracy and bits on the same images. */
    @Test
    public void eachRowIsTheFullTableRowOfItsModel() throws Exception {
        Path fashion = Files.createTempDirectory("headline-fashion");
        CliTest.Result r = CliTest.run(args("run", "--rows", "all", "--model", "bundled-ft-w4a2", "--out", fashion.toString()));
        assertEquals(r.exitCode(), 0, r.err());
        JsonObject full = JsonParser.parseString(r.out()).getAsJsonObject();
        JsonObject expected = null;
        for (var e : full.getAsJsonArray("rows")) if (e.getAsJsonObject().get("name").getAsString().equals("W4A2")) expected = e.getAsJsonObject();
        assertNotNull(expected);
        JsonObject actual = line(section(0), "W4A2", "-").getAsJsonObject("row");
        assertEquals(actual.get("accuracy").getAsDouble(), expected.get("accuracy").getAsDouble());
        assertEquals(actual.get("activationBits").getAsDouble(), expected.get("activationBits").getAsDouble());
        assertEquals(actual.get("bitOpsVsW8A8").getAsDouble(), expected.get("bitOpsVsW8A8").getAsDouble(), 1e-12, "the same W8A8 reference");
    }

    /** The cluttered rows run on the folder `data cluttered` writes: the full table there gives the same learned row. */
    @Test
    public void theClutteredSectionIsTheGeneratedFolder() throws Exception {
        Path dir = Files.createTempDirectory("headline-cluttered").resolve("c60");
        CliTest.Result g = CliTest.run("data", "cluttered", "--size", "60", "--pieces", "4", "--seed", "0", "--out", dir.toString(), "--quiet");
        assertEquals(g.exitCode(), 0, g.err());
        CliTest.Result r = CliTest.run(args("run", "--rows", "all", "--model", "bundled-cluttered-ft-region", "--data", dir.toString(), "--policy", "2:50,3:30,4:20",
                "--out", dir.resolveSibling("out").toString()));
        assertEquals(r.exitCode(), 0, r.err());
        JsonObject full = JsonParser.parseString(r.out()).getAsJsonObject();
        for (String silhouette : new String[] {"learned", "training-free", MainJob.NOISE}) {
            JsonObject expected = null;
            for (var e : full.getAsJsonArray("rows")) {
                JsonObject row = e.getAsJsonObject();
                if (row.get("name").getAsString().equals("2:50,3:30,4:20 W4") && row.get("silhouette").getAsString().equals(silhouette)) expected = row;
            }
            assertNotNull(expected, silhouette);
            assertEquals(line(section(1), "2:50,3:30,4:20 W4", silhouette).getAsJsonObject("row").get("accuracy").getAsDouble(), expected.get("accuracy").getAsDouble(),
                    silhouette);
        }
        JsonObject loc = full.getAsJsonObject("localisation"), headline = section(1).getAsJsonObject("localisation");
        assertEquals(headline.get("learned").getAsDouble(), loc.get("learned").getAsDouble(), 1e-12);
    }

    @Test
    public void headlineRefusesACustomModel() {
        CliTest.Result r = CliTest.run("run", "--rows", "headline", "--model", "bundled-cluttered", "--limit", "5");
        assertEquals(r.exitCode(), 2, r.out() + r.err());
        assertTrue(r.err().contains("--rows headline") && r.err().contains("--rows all"), r.err());
        r = CliTest.run("run", "--plain", "--rows", "all", "--limit", "5");
        assertEquals(r.exitCode(), 2, r.out() + r.err());
        assertTrue(r.err().contains("--rows"), r.err());
    }
}
