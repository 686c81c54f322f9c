package dev.silhouette.serve;

import dev.silhouette.api.Model;
import dev.silhouette.api.Session;
import dev.silhouette.api.TensorInfo;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/** A model as the server serves it: its protocol name and version, its session and its batcher. */
final class ServedModel {
    /** Model names the server accepts: no path separators, no dot-only names, so a name never leaves the repository. */
    static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,127}");
    static final String VERSION = "1";

    final String name;
    final Model model;
    final Session session;
    final Batcher batcher;
    final Map<String, TensorInfo> inputs = new LinkedHashMap<>(), outputs = new LinkedHashMap<>();

    ServedModel(String name, Model model, Session session, Batcher batcher) {
        this.name = name;
        this.model = model;
        this.session = session;
        this.batcher = batcher;
        for (TensorInfo t : session.inputs()) inputs.put(t.name(), t);
        for (TensorInfo t : session.outputs()) outputs.put(t.name(), t);
    }

    /** The protocol's platform field: what runs the model. */
    String platform() {
        return "silhouette_" + session.backend().replaceAll("[^A-Za-z0-9]", "_");
    }

    /** Properties for the gRPC metadata: where the model came from and how it is quantized and batched. */
    Map<String, String> properties() {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("source", model.source());
        p.put("plan", model.plan());
        p.put("backend", session.backend());
        p.put("max_batch_size", Integer.toString(batcher.config().maxBatchSize()));
        p.put("dynamic_batching", Boolean.toString(batcher.config().dynamicBatching()));
        return p;
    }

    static void checkName(String name, String field) {
        if (name == null || name.isEmpty()) throw InferenceError.invalid(field + " is missing: name the model");
        if (!NAME.matcher(name).matches() || name.contains("..")) {
            throw InferenceError.invalid(field + " '" + abbreviate(name) + "' is not a model name: letters, digits, '_', '.' and '-', at most 128, no '..' or '/'");
        }
    }

    /**
     * Checks an input's name and shape against the model before any data is decoded: returns the number
     * of values the shape holds, which is bounded by the model's sample size times its max batch size.
     */
    int checkInput(String field, String inputName, List<Long> shape) {
        if (inputName == null) throw InferenceError.invalid(field + ".name is missing");
        TensorInfo info = inputs.get(inputName);
        if (info == null) throw InferenceError.invalid(field + ".name '" + abbreviate(inputName) + "' is not an input of model " + name + "; inputs are " + inputs.keySet());
        if (shape == null) throw InferenceError.invalid(field + ".shape is missing; input '" + inputName + "' takes " + info.shape());
        boolean ok = shape.size() == info.shape().size();
        for (int d = 1; ok && d < shape.size(); d++) ok = shape.get(d).equals(info.shape().get(d));
        if (!ok) throw InferenceError.invalid(field + ".shape " + abbreviate(shape.toString()) + " does not fit input '" + inputName + "', which takes " + info.shape());
        long n = shape.getFirst();
        int max = batcher.config().maxBatchSize();
        if (n < 1 || n > max) throw InferenceError.invalid(field + ".shape " + shape + ": batch " + n + " is outside 1 to model " + name + "'s max_batch_size " + max);
        long count = n;
        for (int d = 1; d < shape.size(); d++) count *= shape.get(d);
        return Math.toIntExact(count);
    }

    static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }
}
