package dev.silhouette.serve;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import dev.silhouette.api.Model;
import dev.silhouette.graph.ModelLoader;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A model repository: one folder per model, named as the model is served, holding {@value #CONFIG}:
 *
 * <pre>
 * {"source": "model.onnx", "plan": "plan.json", "backend": "cpu", "device": 0, "max_batch_size": 32,
 *  "dynamic_batching": true, "max_queue_delay_ms": 2, "queue_size": 256, "timeout_ms": 10000, "instances": 1}
 * </pre>
 *
 * Only {@code source} is required: a file in the model's folder (ONNX or a Silhouette model file), or
 * {@code bundled} or a catalog name. Files are resolved inside the model's folder and may not leave it
 * (no absolute paths, no {@code ..}, no links out). Anything else in the file is refused by name.
 */
public final class ModelRepository {
    public static final String CONFIG = "config.json";
    private static final Set<String> KEYS = Set.of("source", "plan", "backend", "device", "max_batch_size", "dynamic_batching", "max_queue_delay_ms",
            "queue_size", "timeout_ms", "instances");

    private ModelRepository() {}

    /** Every model of the repository, in name order; a folder without a config, or a bad config, is refused naming it. */
    public static List<Server.ModelSpec> read(Path root) {
        if (!Files.isDirectory(root)) throw new IllegalArgumentException("--repository " + root + " is not a folder");
        List<Path> folders;
        try (Stream<Path> s = Files.list(root)) {
            folders = s.filter(Files::isDirectory).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list the repository " + root + ": " + e.getMessage(), e);
        }
        if (folders.isEmpty()) throw new IllegalArgumentException("repository " + root + " holds no model folders (one folder per model, each with " + CONFIG + ")");
        List<Server.ModelSpec> specs = new ArrayList<>();
        for (Path folder : folders) specs.add(model(folder));
        return specs;
    }

    static Server.ModelSpec model(Path folder) {
        String name = folder.getFileName().toString();
        Path file = folder.resolve(CONFIG);
        String where = "repository model " + name + " (" + file + ")";
        if (!ServedModel.NAME.matcher(name).matches() || name.contains("..")) {
            throw new IllegalArgumentException(where + ": the folder name is not a model name (letters, digits, '_', '.', '-')");
        }
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException(where + ": " + CONFIG + " is missing");
        JsonObject c;
        try {
            c = JsonParser.parseString(Files.readString(file)).getAsJsonObject();
        } catch (IOException e) {
            throw new UncheckedIOException(where + ": cannot be read: " + e.getMessage(), e);
        } catch (JsonParseException | IllegalStateException e) {
            throw new IllegalArgumentException(where + ": not a JSON object: " + e.getMessage());
        }
        for (String key : c.keySet()) {
            if (!KEYS.contains(key)) throw new IllegalArgumentException(where + ": unknown key '" + key + "'; keys are " + new java.util.TreeSet<>(KEYS));
        }
        String source = string(c, "source", null, where);
        if (source == null) throw new IllegalArgumentException(where + ": 'source' is missing: a model file in the folder, bundled or a catalog name");
        Model model = ModelLoader.isBuiltIn(source) ? Model.load(source) : Model.load(inside(folder, source, "source", where));
        String plan = string(c, "plan", null, where);
        if (plan != null) model = model.withPlan(inside(folder, plan, "plan", where));
        BatchConfig d = BatchConfig.DEFAULT;
        BatchConfig batching;
        try {
            batching = new BatchConfig(integer(c, "max_batch_size", d.maxBatchSize(), where), bool(c, "dynamic_batching", d.dynamicBatching(), where),
                    Duration.ofMillis(integer(c, "max_queue_delay_ms", (int) d.maxQueueDelay().toMillis(), where)),
                    integer(c, "queue_size", d.queueSize(), where), Duration.ofMillis(integer(c, "timeout_ms", (int) d.timeout().toMillis(), where)),
                    integer(c, "instances", d.instances(), where));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage());
        }
        return new Server.ModelSpec(name, model, string(c, "backend", "auto", where), integer(c, "device", 0, where), batching);
    }

    /** {@code relative} inside {@code folder}, links resolved; anything that leaves the folder is refused. */
    static Path inside(Path folder, String relative, String key, String where) {
        Path p = Path.of(relative);
        if (p.isAbsolute()) throw new IllegalArgumentException(where + ": '" + key + "' " + relative + " is an absolute path; name a file in the model's folder");
        try {
            Path base = folder.toRealPath();
            Path resolved = base.resolve(p).normalize();
            if (!resolved.startsWith(base)) throw new IllegalArgumentException(where + ": '" + key + "' " + relative + " leaves the model's folder");
            if (!Files.exists(resolved)) throw new IllegalArgumentException(where + ": '" + key + "' " + relative + " does not exist in " + folder);
            if (!resolved.toRealPath().startsWith(base)) throw new IllegalArgumentException(where + ": '" + key + "' " + relative + " links out of the model's folder");
            return resolved;
        } catch (IOException e) {
            throw new UncheckedIOException(where + ": cannot resolve '" + key + "' " + relative + ": " + e.getMessage(), e);
        }
    }

    private static String string(JsonObject c, String key, String fallback, String where) {
        JsonElement e = c.get(key);
        if (e == null) return fallback;
        if (!(e instanceof JsonPrimitive p) || !p.isString()) throw new IllegalArgumentException(where + ": '" + key + "' must be a string");
        return p.getAsString();
    }

    private static int integer(JsonObject c, String key, int fallback, String where) {
        JsonElement e = c.get(key);
        if (e == null) return fallback;
        if (!(e instanceof JsonPrimitive p) || !p.isNumber() || p.getAsDouble() != Math.rint(p.getAsDouble()) || Math.abs(p.getAsDouble()) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(where + ": '" + key + "' must be a whole number");
        }
        return p.getAsInt();
    }

    private static boolean bool(JsonObject c, String key, boolean fallback, String where) {
        JsonElement e = c.get(key);
        if (e == null) return fallback;
        if (!(e instanceof JsonPrimitive p) || !p.isBoolean()) throw new IllegalArgumentException(where + ": '" + key + "' must be true or false");
        return p.getAsBoolean();
    }
}
