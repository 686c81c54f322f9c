package dev.silhouette.serve;

import dev.silhouette.api.Model;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Passes;
import dev.silhouette.pipeline.Plans;
import dev.silhouette.pipeline.QuantPlanJson;
import dev.silhouette.pipeline.TestPlans;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** Model repositories: a folder per model, its config read strictly, and no file outside the model's folder. */
public class ModelRepositoryTest {
    static Path model(Path root, String name, String config) throws Exception {
        Path dir = Files.createDirectories(root.resolve(name));
        Files.writeString(dir.resolve(ModelRepository.CONFIG), config);
        return dir;
    }

    @Test
    public void readsEveryModelWithItsSettingsAndPlan() throws Exception {
        Path root = Files.createTempDirectory("repo");
        Model bundled = Model.load(ModelLoader.BUNDLED);
        Path q = model(root, "quantized", "{\"source\": \"bundled\", \"plan\": \"plan.json\", \"max_batch_size\": 4, \"dynamic_batching\": false,"
                + " \"max_queue_delay_ms\": 0, \"queue_size\": 3, \"timeout_ms\": 500, \"instances\": 2, \"backend\": \"cpu\"}");
        var plan = TestPlans.plan(Passes.foldBatchNorm(bundled.graph()), new Plans.Receiving.Uniform(4), (v, b) -> 4f);
        QuantPlanJson.save(plan, q.resolve("plan.json"));
        model(root, "plain", "{\"source\": \"bundled\"}");
        List<Server.ModelSpec> specs = ModelRepository.read(root);
        assertEquals(specs.stream().map(Server.ModelSpec::name).toList(), List.of("plain", "quantized"));
        Server.ModelSpec s = specs.get(1);
        assertEquals(s.batching(), new BatchConfig(4, false, Duration.ZERO, 3, Duration.ofMillis(500), 2));
        assertEquals(s.backend(), "cpu");
        assertEquals(s.model().plan(), plan.label());
        assertEquals(specs.getFirst().batching(), BatchConfig.DEFAULT);
        Tensor x = Tensor.uniform(Shape.of(1, 1, 28, 28), 0, 1, 0);
        try (var a = s.model().session("cpu"); var b = bundled.withPlan(plan).session("cpu")) {
            assertEquals(a.run(Map.of("input", x)).get("fc").data(), b.run(Map.of("input", x)).get("fc").data());
        }
    }

    @Test
    public void aFileOutsideTheModelsFolderOrABadConfigIsRefusedByName() throws Exception {
        Path root = Files.createTempDirectory("repo");
        Files.writeString(root.resolve("secret.safetensors"), "x");
        refused(root, "m", "{\"source\": \"../secret.safetensors\"}", "'source' ../secret.safetensors leaves the model's folder");
        refused(root, "m", "{\"source\": \"/etc/passwd\"}", "is an absolute path");
        refused(root, "m", "{\"source\": \"bundled\", \"max_batch\": 4}", "unknown key 'max_batch'");
        refused(root, "m", "{\"source\": \"bundled\", \"max_batch_size\": 0}", "max_batch_size 0 must be between 1 and 65536");
        refused(root, "m", "{\"source\": \"bundled\", \"queue_size\": \"ten\"}", "'queue_size' must be a whole number");
        refused(root, "m", "{\"plan\": \"p.json\"}", "'source' is missing");
        refused(root, "m", "{\"source\": ", "not a JSON object");
        refused(root, "m", "{\"source\": \"missing.onnx\"}", "'source' missing.onnx does not exist");
        Path link = Files.createTempDirectory("repo");
        Path dir = model(link, "m", "{\"source\": \"model.safetensors\"}");
        Files.createSymbolicLink(dir.resolve("model.safetensors"), root.resolve("secret.safetensors"));
        IllegalArgumentException e = expectThrows(IllegalArgumentException.class, () -> ModelRepository.read(link));
        assertTrue(e.getMessage().contains("links out of the model's folder"), e.getMessage());
        Path empty = Files.createTempDirectory("repo");
        Files.createDirectories(empty.resolve("noconfig"));
        e = expectThrows(IllegalArgumentException.class, () -> ModelRepository.read(empty));
        assertTrue(e.getMessage().contains("config.json is missing"), e.getMessage());
    }

    static void refused(Path root, String name, String config, String message) throws Exception {
        Path repo = Files.createTempDirectory(root, "r");
        model(repo, name, config);
        IllegalArgumentException e = expectThrows(IllegalArgumentException.class, () -> ModelRepository.read(repo));
        assertTrue(e.getMessage().contains(message) && e.getMessage().contains("repository model " + name), "'" + message + "' missing from: " + e.getMessage());
    }
}
