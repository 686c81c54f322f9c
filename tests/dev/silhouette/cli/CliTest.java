package dev.silhouette.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.testng.annotations.Test;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

public class CliTest {

    record Result(int exitCode, String out, String err) {}

    static Result run(String... args) {
        CommandLine cl = Main.commandLine();
        StringWriter out = new StringWriter(), err = new StringWriter();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    @Test
    public void inspectReportsPublishedResNetFigures() {
        Result r = run("inspect", "--model", "resnet18", "--json");
        assertEquals(r.exitCode(), 0, r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertEquals(o.get("parameters").getAsLong(), 11_689_512L);
        assertEquals(o.get("macs").getAsLong() / 1e9, 1.82, 0.01);
        assertEquals(o.getAsJsonArray("layers").size(), 69, "ResNet-18 nodes");
        JsonObject last = o.getAsJsonArray("layers").get(68).getAsJsonObject();
        assertEquals(last.get("name").getAsString(), "fc");
        assertEquals(last.getAsJsonArray("output").toString(), "[1,1000]");
    }

    @Test
    public void inspectTextListsLayers() {
        Result r = run("inspect", "--model", "resnet50", "--input-size", "128");
        assertEquals(r.exitCode(), 0, r.err());
        assertTrue(r.out().contains("layer4.2.conv3") && r.out().contains("25,557,032 parameters"), r.out());
    }

    @Test
    public void runEvaluatesBundledModel() {
        Result r = run("run", "--plain", "--limit", "1000", "--batch", "250", "--backend", "cpu", "--json");
        assertEquals(r.exitCode(), 0, r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertEquals(o.get("images").getAsInt(), 1000);
        assertEquals(o.get("model").getAsString(), "fmnist-resnet");
        // The bundled model reaches 92.7% on the full split; 1000 images leave a few points of noise.
        assertTrue(o.get("accuracy").getAsDouble() > 0.88, "accuracy " + o.get("accuracy"));
        assertTrue(o.get("imagesPerSecond").getAsDouble() > 0);
    }

    /** Runs a command as bin/silhouette does, on the process's own System.out and System.err, both captured. */
    static Result runOnStandardStreams(String... args) {
        PrintStream savedOut = System.out, savedErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int code = Main.commandLine().execute(args);
            System.out.flush();
            System.err.flush();
            return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(savedOut);
            System.setErr(savedErr);
        }
    }

    @Test
    public void threadsSetsTheCpuPoolAndAnImpossibleCountIsRefusedByName() {
        int before = dev.silhouette.backend.cpu.Workers.threads();
        try {
            Result one = runOnStandardStreams("run", "--plain", "--limit", "20", "--batch", "10", "--backend", "cpu", "--json", "--quiet", "--threads", "1");
            assertEquals(one.exitCode(), 0, one.err());
            assertEquals(JsonParser.parseString(one.out()).getAsJsonObject().get("images").getAsInt(), 20);
            assertEquals(dev.silhouette.backend.cpu.Workers.threads(), 1, "--threads 1");
            Result none = runOnStandardStreams("--threads", "0", "run", "--plain", "--limit", "20", "--backend", "cpu", "--quiet");
            assertEquals(none.exitCode(), 2, none.err());
            assertTrue(none.err().contains("threads: 0 is not between 1 and 1024"), none.err());
        } finally {
            dev.silhouette.backend.cpu.Workers.setThreads(before);
        }
    }

    @Test
    public void jsonOnStdoutProgressAsPlainLinesOnStderrQuietSilencesIt() {
        // Quiet first: the next command must not inherit it.
        Result quiet = runOnStandardStreams("run", "--plain", "--limit", "50", "--batch", "25", "--backend", "cpu", "--json", "--quiet");
        assertEquals(quiet.exitCode(), 0, quiet.err());
        assertEquals(JsonParser.parseString(quiet.out()).getAsJsonObject().get("images").getAsInt(), 50);
        assertTrue(!quiet.err().contains("evaluating"), "--quiet: " + quiet.err());

        Result r = runOnStandardStreams("run", "--plain", "--limit", "50", "--batch", "25", "--backend", "cpu", "--json");
        assertEquals(r.exitCode(), 0, r.err());
        // The whole of stdout is one JSON document: no progress and no notes in it.
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertEquals(o.get("images").getAsInt(), 50);
        // Under the tests stderr is a pipe, not a terminal: a final plain line, no carriage-return frames.
        assertTrue(r.err().contains("evaluating: 50/50 img in "), r.err());
        assertTrue(!r.err().contains("\r"), r.err());
    }

    @Test
    public void badInputGivesOneMessage() {
        Result r = run("inspect", "--model", "resnet19");
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().contains("unknown model") || r.err().contains("neither a file nor a known model"), r.err());
        assertTrue(r.err().contains("resnet18"), r.err());
        assertTrue(!r.err().contains("Exception"), "no stack trace: " + r.err());
        r = run("run", "--batch", "0");
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().contains("--batch 0"), r.err());
        r = run("run", "--plain", "--data", "/nonexistent/folder", "--limit", "10");
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().contains("/nonexistent/folder"), r.err());
        r = run("inspect", "--model", "resnet18", "--silhouette-after", "layer7");
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().contains("layer7"), r.err());
    }
}
