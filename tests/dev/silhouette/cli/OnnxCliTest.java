package dev.silhouette.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.io.SafeTensors;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.AfterClass;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;

/** export, inspect and infer on an ONNX file written from the bundled model. */
public class OnnxCliTest {
    Path dir, onnx;

    @BeforeClass
    public void exportBundled() throws IOException {
        dir = Files.createTempDirectory("onnx-cli");
        onnx = dir.resolve("fmnist.onnx");
        CliTest.Result r = CliTest.run("export", "--model", "bundled", "--output", onnx.toString(), "--opset", "13");
        assertEquals(r.exitCode(), 0, r.err());
        assertTrue(Files.size(onnx) > 100_000, "weights inside the file");
    }

    @AfterClass(alwaysRun = true)
    public void cleanUp() throws IOException {
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) Files.delete(p);
        }
        Files.delete(dir);
    }

    @Test
    public void inspectListsTheImportedLayersAndTheSilhouette() {
        CliTest.Result r = CliTest.run("inspect", "--model", onnx.toString(), "--json");
        assertEquals(r.exitCode(), 0, r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        Graph bundled = ModelLoader.load(ModelLoader.BUNDLED).graph();
        assertEquals(o.getAsJsonArray("layers").size(), bundled.nodes().size());
        assertTrue(o.get("source").getAsString().contains("silhouette branch recognised"), o.get("source").getAsString());
        CliTest.Result positional = CliTest.run("inspect", onnx.toString(), "--json");
        assertEquals(positional.exitCode(), 0, positional.err());
        assertEquals(JsonParser.parseString(positional.out()), o, "silhouette inspect MODEL.onnx is inspect --model MODEL.onnx");
    }

    @Test
    public void inferWritesEveryOutputByName() throws IOException {
        Tensor images = Tensor.uniform(Shape.of(3, 1, 28, 28), 0, 1, 5);
        Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors");
        SafeTensors.write(in, Map.of("input", images), Map.of());
        CliTest.Result r = CliTest.run("infer", "--model", onnx.toString(), "--input", in.toString(), "--output", out.toString(), "--backend", "cpu");
        assertEquals(r.exitCode(), 0, r.err());
        Map<String, Tensor> got = SafeTensors.read(out);
        Graph bundled = ModelLoader.load(ModelLoader.BUNDLED).graph();
        Map<String, Tensor> expected = new CpuBackend().run(bundled, Map.of("input", images));
        assertEquals(got.keySet(), expected.keySet());
        for (String k : expected.keySet()) assertEquals(got.get(k).data(), expected.get(k).data(), k);
        assertEquals(got.get(Models.SILHOUETTE).shape(), Shape.of(3, 1, 28, 28));
    }

    @Test
    public void benchTimesAnOnnxModel() {
        CliTest.Result r = CliTest.run("bench", "--model", onnx.toString(), "--backend", "cpu", "--batch", "2", "--warmup", "0", "--runs", "1", "--json");
        assertEquals(r.exitCode(), 0, r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertEquals(o.get("model").getAsString(), "onnx:fmnist.onnx");
        assertTrue(o.get("imagesPerSecond").getAsDouble() > 0);
    }

    @Test
    public void badRequestsGiveOneLineAndExitCode2() throws IOException {
        Path in = dir.resolve("wrong.safetensors"), out = dir.resolve("never.safetensors");
        SafeTensors.write(in, Map.of("pixels", Tensor.zeros(1, 1, 28, 28)), Map.of());
        CliTest.Result r = CliTest.run("infer", "--model", onnx.toString(), "--input", in.toString(), "--output", out.toString(), "--backend", "cpu");
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().contains("lacks graph input(s) [input"), r.err());
        assertFalse(Files.exists(out), "nothing written on error");

        Path broken = dir.resolve("broken.onnx");
        byte[] bytes = Files.readAllBytes(onnx);
        Files.write(broken, java.util.Arrays.copyOf(bytes, bytes.length / 2));
        r = CliTest.run("inspect", "--model", broken.toString());
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().startsWith("silhouette: ") && r.err().contains("broken.onnx") && r.err().strip().lines().count() == 1, r.err());

        r = CliTest.run("inspect", "--model", "resnet20", "--silhouette-output", "x");
        assertEquals(r.exitCode(), 2);
        assertTrue(r.err().contains("applies to ONNX models"), r.err());
    }
}
