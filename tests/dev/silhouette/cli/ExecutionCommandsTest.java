package dev.silhouette.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/** {@code --execution} in eval and bench: packed by default, simulated on request, the same counts, and a clear refusal of anything else. */
public class ExecutionCommandsTest {
    private Path plan;

    @BeforeClass
    public void quantize() throws Exception {
        Path dir = Files.createTempDirectory("execution");
        Path stats = dir.resolve("stats.json");
        assertEquals(CliTest.run("calibrate", "--images", "64", "--out", stats.toString(), "--json").exitCode(), 0);
        plan = dir.resolve("w4a4.json");
        CliTest.Result q = CliTest.run("quantize", "--stats", stats.toString(), "--weight-bits", "4", "--activation-bits", "4", "--out", plan.toString(), "--json");
        assertEquals(q.exitCode(), 0, q.err());
    }

    @Test
    public void evalRunsPackedByDefaultAndSaysSo() {
        CliTest.Result packed = CliTest.run("eval", "--plan", plan.toString(), "--limit", "200", "--json");
        CliTest.Result simulated = CliTest.run("eval", "--plan", plan.toString(), "--limit", "200", "--execution", "simulated", "--json");
        assertEquals(packed.exitCode(), 0, packed.err());
        assertEquals(simulated.exitCode(), 0, simulated.err());
        JsonObject p = JsonParser.parseString(packed.out()).getAsJsonObject(), s = JsonParser.parseString(simulated.out()).getAsJsonObject();
        assertTrue(p.get("execution").getAsString().startsWith("packed {"), p.get("execution").getAsString());
        // The classifier (a Linear layer) stays simulated, and the label counts it.
        assertTrue(p.get("execution").getAsString().endsWith("1 of 11 layers simulated"), p.get("execution").getAsString());
        assertEquals(s.get("execution").getAsString(), "simulated");
        assertEquals(Math.abs(p.get("correct").getAsInt() - s.get("correct").getAsInt()) <= 1, true, "packed " + p.get("correct") + ", simulated " + s.get("correct"));
    }

    @Test
    public void benchTimesAPlanOnThePackedPath() {
        CliTest.Result r = CliTest.run("bench", "--model", "bundled", "--plan", plan.toString(), "--batch", "4", "--warmup", "0", "--runs", "1", "--json");
        assertEquals(r.exitCode(), 0, r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertTrue(o.get("execution").getAsString().startsWith("packed {"), o.toString());
        assertEquals(o.get("plan").getAsString(), "W4A4 per-tensor first/last 8b");
    }

    @Test
    public void anUnknownExecutionIsRefusedByName() {
        CliTest.Result r = CliTest.run("eval", "--plan", plan.toString(), "--limit", "10", "--execution", "fast");
        assertEquals(r.exitCode() != 0, true);
        assertTrue(r.err().contains("--execution fast: expected packed or simulated"), r.err());
    }
}
