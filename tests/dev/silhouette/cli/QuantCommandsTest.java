package dev.silhouette.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/** calibrate, quantize and eval on the bundled model over a slice of the test split (1000 images). */
public class QuantCommandsTest {

    private static double accuracy(CliTest.Result r) {
        assertEquals(r.exitCode(), 0, r.err());
        return JsonParser.parseString(r.out()).getAsJsonObject().get("accuracy").getAsDouble();
    }

    @Test
    public void eightBitsKeepAndFourBitsWithAciqAndBiasCorrectionNearlyKeepAccuracy() throws Exception {
        Path dir = Files.createTempDirectory("quant-cli");
        Path stats = dir.resolve("stats.json");
        CliTest.Result c = CliTest.run("calibrate", "--images", "128", "--out", stats.toString(), "--json");
        assertEquals(c.exitCode(), 0, c.err());
        double fp = accuracy(CliTest.run("eval", "--limit", "1000", "--json"));
        assertTrue(fp > 0.88, "FP32 accuracy " + fp);

        CliTest.Result q8 = CliTest.run("quantize", "--stats", stats.toString(), "--weight-bits", "8", "--activation-bits", "8",
                "--out", dir.resolve("w8a8.json").toString(), "--json");
        assertEquals(q8.exitCode(), 0, q8.err());
        JsonObject config = JsonParser.parseString(q8.out()).getAsJsonObject();
        assertEquals(config.getAsJsonArray("layers").size(), 11, "weighted layers of the bundled model");
        double w8a8 = accuracy(CliTest.run("eval", "--limit", "1000", "--quantized", dir.resolve("w8a8.json").toString(), "--json"));
        assertEquals(w8a8, fp, 0.005, "W8A8 vs FP32");

        CliTest.Result q4 = CliTest.run("quantize", "--stats", stats.toString(), "--weight-bits", "4", "--activation-bits", "4",
                "--per-channel", "--aciq", "laplace", "--bias-correction", "--out", dir.resolve("w4a4.json").toString(),
                "--out-model", dir.resolve("w4a4.safetensors").toString(), "--png", dir.resolve("ranges.png").toString());
        assertEquals(q4.exitCode(), 0, q4.err());
        assertTrue(q4.out().contains("W4A4 per-channel ACIQ-A(laplace) bias-corrected"), q4.out());
        CliTest.Result e4 = CliTest.run("eval", "--limit", "1000", "--quantized", dir.resolve("w4a4.json").toString(), "--json");
        double w4a4 = accuracy(e4);
        assertTrue(w4a4 > fp - 0.03, "W4A4 " + w4a4 + " vs FP32 " + fp);
        java.awt.image.BufferedImage chart = javax.imageio.ImageIO.read(dir.resolve("ranges.png").toFile());
        assertEquals(chart.getWidth(), 960, "three 320-pixel panels per row");
        // The model file carries its configuration: evaluating it alone gives the same result.
        assertEquals(accuracy(CliTest.run("eval", "--limit", "1000", "--model", dir.resolve("w4a4.safetensors").toString(), "--json")), w4a4);
        JsonObject report = JsonParser.parseString(e4.out()).getAsJsonObject();
        assertEquals(report.getAsJsonArray("layers").size(), 11);
        assertTrue(report.get("averageWeightBits").getAsDouble() < 4.1);
        assertTrue(report.getAsJsonArray("activationEntropy").size() > 0);
    }

    @Test
    public void badConfigurationsGiveOneLineAndExitCode2() throws Exception {
        Path dir = Files.createTempDirectory("quant-cli-bad");
        String[][] cases = {
                {"quantize", "--weight-bits", "9"},
                {"quantize", "--activation-bits", "0"},
                {"quantize", "--calibration-images", "0"},
                {"quantize", "--channel-bits", "--weight-bits", "4"},
                {"quantize", "--aciq", "cauchy"},
        };
        String[] messages = {
                "silhouette: weight bits 9 outside the supported 1..8",
                "silhouette: activation bits 0 outside the supported 1..8",
                "silhouette: the calibration set is empty: statistics need at least one image (got 0)",
                "silhouette: per-channel bit allocation needs per-channel weight scales (--per-channel)",
                "silhouette: --aciq 'cauchy' is not one of off, laplace, gaussian",
        };
        for (int i = 0; i < cases.length; i++) {
            CliTest.Result r = CliTest.run(cases[i]);
            assertEquals(r.exitCode(), 2, String.join(" ", cases[i]) + ": " + r.err());
            assertEquals(r.err().strip(), messages[i], String.join(" ", cases[i]));
        }
        // Statistics of the bundled model refused for the same architecture with other (random) weights.
        Path stats = dir.resolve("stats.json");
        assertEquals(CliTest.run("calibrate", "--images", "8", "--out", stats.toString()).exitCode(), 0);
        CliTest.Result r = CliTest.run("quantize", "--model", "fmnist-resnet", "--stats", stats.toString());
        assertEquals(r.exitCode(), 2, r.err());
        assertTrue(r.err().strip().startsWith("silhouette: calibration statistics " + stats + " were collected on another model ('fmnist-resnet'"), r.err());
        assertEquals(r.err().strip().lines().count(), 1L);
    }
}
