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

    @Test
    public void modelControlLoadsUnloadsAndIndexesOnlyInsideTheRepository() throws Exception {
        Path root = Files.createTempDirectory("repo");
        model(root, "a", "{\"source\": \"bundled\", \"backend\": \"cpu\"}");
        model(root, "b", "{\"source\": \"bundled\", \"backend\": \"cpu\", \"max_batch_size\": 2}");
        model(root, "broken", "{\"source\": \"bundled\", \"max_batch_size\": -1}");
        java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
        try (Server off = Server.start(new Server.Options(0, -1, -1, 1 << 20), List.of(ModelRepository.model(root.resolve("a"))));
             Server on = Server.start(new Server.Options(0, -1, -1, 1 << 20), List.of(ModelRepository.model(root.resolve("a"))))) {
            on.enableModelControl(root);
            String[] refusedOff = post(http, off, "/v2/repository/index");
            assertEquals(refusedOff[0], "400");
            assertTrue(refusedOff[1].contains("model control is off"), refusedOff[1]);
            String[] index = post(http, on, "/v2/repository/index");
            assertEquals(index[0], "200");
            assertTrue(index[1].contains("{\"name\":\"a\",\"version\":\"1\",\"state\":\"READY\"}") && index[1].contains("{\"name\":\"b\",\"version\":\"1\",\"state\":\"UNAVAILABLE\"}"), index[1]);
            assertEquals(post(http, on, "/v2/repository/models/b/load")[0], "200");
            assertEquals(on.modelNames(), List.of("a", "b"));
            assertEquals(on.find("b", null, "test").batcher.config().maxBatchSize(), 2);
            assertEquals(post(http, on, "/v2/repository/models/a/unload")[0], "200");
            assertEquals(on.modelNames(), List.of("b"));
            String[] gone = post(http, on, "/v2/repository/models/a/unload");
            assertEquals(gone[0], "404", gone[1]);
            String[] broken = post(http, on, "/v2/repository/models/broken/load");
            assertEquals(broken[0], "400");
            assertTrue(broken[1].contains("max_batch_size -1"), broken[1]);
            for (String name : List.of("..%2F" + root.getFileName(), "%2E%2E", "..%2F..%2Fetc")) {
                String[] r = post(http, on, "/v2/repository/models/" + name + "/load");
                assertEquals(r[0], "400", name + ": " + r[1]);
                assertTrue(r[1].contains("is not a model name"), r[1]);
            }
            assertEquals(post(http, on, "/v2/repository/models/nothere/load")[0], "404");
        }
    }

    static String[] post(java.net.http.HttpClient http, Server s, String path) throws Exception {
        var r = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://localhost:" + s.httpPort() + path))
                .POST(java.net.http.HttpRequest.BodyPublishers.noBody()).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
        return new String[]{Integer.toString(r.statusCode()), r.body()};
    }

    static void refused(Path root, String name, String config, String message) throws Exception {
        Path repo = Files.createTempDirectory(root, "r");
        model(repo, name, config);
        IllegalArgumentException e = expectThrows(IllegalArgumentException.class, () -> ModelRepository.read(repo));
        assertTrue(e.getMessage().contains(message) && e.getMessage().contains("repository model " + name), "'" + message + "' missing from: " + e.getMessage());
    }
}
