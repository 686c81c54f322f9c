package dev.silhouette.serve;

import dev.silhouette.api.Model;
import dev.silhouette.api.Session;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.function.Function;

/**
 * The Open Inference Protocol v2 server: the models, their batchers and the three endpoints (REST,
 * gRPC, Prometheus metrics). Protocol-neutral work lives here (finding the model, checking the request
 * against it, queueing, counting); the endpoints only translate.
 *
 * <pre>{@code
 * try (Server server = Server.start(new Server.Options(8000, 8001, 8002, Server.Options.BODY_LIMIT),
 *         List.of(new Server.ModelSpec("fmnist", Model.load("bundled"), "cpu", 0, BatchConfig.DEFAULT)))) {
 *     server.awaitTermination();
 * }
 * }</pre>
 */
public final class Server implements AutoCloseable {
    public static final String NAME = "silhouette";
    public static final String VERSION = "0.1.0";
    /** The protocol's health endpoints (REST): live while the process serves, ready once every model is loaded. */
    public static final String HEALTH_LIVE = "/v2/health/live", HEALTH_READY = "/v2/health/ready";
    /** The protocol extensions served: binary tensor data always, the model repository with model control on. */
    List<String> extensions() {
        return repository == null ? List.of("binary_tensor_data") : List.of("binary_tensor_data", "model_repository");
    }

    /** Ports (0: any free one, -1: off) and the request body limit in bytes. */
    public record Options(int httpPort, int grpcPort, int metricsPort, long maxBodyBytes) {
        public static final long BODY_LIMIT = 64L << 20;
        /** Triton's ports, which the protocol's clients expect by default. */
        public static final int HTTP_PORT = 8000, GRPC_PORT = 8001, METRICS_PORT = 8002;

        public Options {
            for (int p : new int[]{httpPort, grpcPort, metricsPort}) {
                if (p < -1 || p > 65_535) throw new IllegalArgumentException("port " + p + " must be between 0 and 65535 (0: any free port, -1: off)");
            }
            if (maxBodyBytes < 1024 || maxBodyBytes > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("body limit " + maxBodyBytes + " must be between 1 KiB and 2 GiB");
            }
        }
    }

    /** A model to serve: its protocol name, the model, where it runs and how its requests are batched. */
    public record ModelSpec(String name, Model model, String backend, int device, BatchConfig batching) {}

    private final Options options;
    private final Map<String, ServedModel> models = new ConcurrentHashMap<>();
    private final Metrics metrics = new Metrics();
    private final ScheduledExecutorService timer;
    private volatile boolean draining;
    private volatile boolean loading = true;
    private final AccessLog log;
    private RestEndpoint rest;
    private GrpcEndpoint grpc;
    private MetricsEndpoint metricsEndpoint;
    private final CompletableFuture<Void> terminated = new CompletableFuture<>();

    private Server(Options options, AccessLog log) {
        this.options = options;
        this.log = log;
        ScheduledThreadPoolExecutor t = new ScheduledThreadPoolExecutor(1, Thread.ofPlatform().daemon().name("silhouette-timeouts").factory());
        t.setRemoveOnCancelPolicy(true);
        this.timer = t;
    }

    /** Opens the endpoints and loads the models: the server is ready when this returns. */
    public static Server start(Options options, List<ModelSpec> specs) {
        return start(options, specs, AccessLog.OFF);
    }

    public static Server start(Options options, List<ModelSpec> specs, AccessLog log) {
        return start(options, specs, log, Server::session);
    }

    /** {@link #start}, with the sessions made by {@code sessions} (tests hold a backend back with it). */
    static Server start(Options options, List<ModelSpec> specs, AccessLog log, Function<ModelSpec, Session> sessions) {
        Server s = open(options, log);
        try {
            s.load(specs, sessions);
        } catch (RuntimeException e) {
            s.close();
            throw e;
        }
        return s;
    }

    /**
     * Opens the endpoints with no model yet: live, not ready (health probes answer while models load,
     * inference requests get UNAVAILABLE) until {@link #load} has loaded them.
     */
    public static Server open(Options options, AccessLog log) {
        Server s = new Server(options, log);
        try {
            if (options.httpPort() >= 0) s.rest = new RestEndpoint(s, options.httpPort(), options.maxBodyBytes());
            if (options.grpcPort() >= 0) s.grpc = new GrpcEndpoint(s, options.grpcPort(), options.maxBodyBytes());
            if (options.metricsPort() >= 0) s.metricsEndpoint = new MetricsEndpoint(s.metrics, options.metricsPort());
            return s;
        } catch (IOException e) {
            s.close();
            throw new UncheckedIOException("cannot open a port: " + e.getMessage(), e);
        }
    }

    /** Loads the models (names checked, each once) and turns ready. */
    public void load(List<ModelSpec> specs) {
        load(specs, Server::session);
    }

    private static Session session(ModelSpec spec) {
        return spec.model().session(spec.backend(), spec.device());
    }

    private void load(List<ModelSpec> specs, Function<ModelSpec, Session> sessions) {
        if (specs.isEmpty()) throw new IllegalArgumentException("no models to serve");
        Set<String> seen = new HashSet<>();
        for (ModelSpec spec : specs) {
            try {
                ServedModel.checkName(spec.name(), "model name");
            } catch (InferenceError e) {
                throw new IllegalArgumentException(e.getMessage());
            }
            if (!seen.add(spec.name()) || models.containsKey(spec.name())) throw new IllegalArgumentException("model name '" + spec.name() + "' is given twice");
        }
        for (ModelSpec spec : specs) load(spec, sessions.apply(spec));
        loading = false;
    }

    private void load(ModelSpec spec, Session session) {
        Metrics.Model m = metrics.model(spec.name(), spec.batching().maxBatchSize());
        ServedModel old = models.put(spec.name(), new ServedModel(spec.name(), spec.model(), session, new Batcher(spec.name(), session, spec.batching(), m, timer)));
        if (old != null) retire(old);
    }

    /** Answers what the model had accepted, then frees it. */
    private static void retire(ServedModel m) {
        m.batcher.drain(UNLOAD_DRAIN);
        m.batcher.close();
    }

    static final Duration UNLOAD_DRAIN = Duration.ofSeconds(30);

    // ---- the model repository extension, on with --model-control explicit ----

    private volatile java.nio.file.Path repository;

    /** Turns on load, unload and index over the protocol's repository extension, for the models of {@code root}. */
    public void enableModelControl(java.nio.file.Path root) {
        if (!java.nio.file.Files.isDirectory(root)) throw new IllegalArgumentException("--model-control explicit needs --repository DIR; " + root + " is not a folder");
        repository = root;
    }

    private java.nio.file.Path repository(String call) {
        java.nio.file.Path root = repository;
        if (root == null) throw InferenceError.invalid(call + ": model control is off; start the server with --repository DIR --model-control explicit");
        return root;
    }

    /** The repository's models: name, and READY when served, else UNAVAILABLE. */
    synchronized List<Map<String, String>> index() {
        java.nio.file.Path root = repository("repository index");
        List<Map<String, String>> out = new ArrayList<>();
        try (var folders = java.nio.file.Files.list(root)) {
            for (java.nio.file.Path f : folders.filter(java.nio.file.Files::isDirectory).sorted().toList()) {
                String name = f.getFileName().toString();
                Map<String, String> row = new LinkedHashMap<>();
                row.put("name", name);
                row.put("version", ServedModel.VERSION);
                row.put("state", models.containsKey(name) ? "READY" : "UNAVAILABLE");
                out.add(row);
            }
        } catch (IOException e) {
            throw new InferenceError(InferenceError.Reason.INTERNAL, "cannot list the repository: " + e.getMessage());
        }
        return out;
    }

    /** Loads (or reloads) the repository's folder {@code name}; a bad config is refused naming it. */
    synchronized void loadFromRepository(String name) {
        java.nio.file.Path root = repository("repository load");
        ServedModel.checkName(name, "model name in the URL");
        java.nio.file.Path folder = root.resolve(name);
        if (!folder.getParent().equals(root) || !java.nio.file.Files.isDirectory(folder)) {
            throw InferenceError.notFound("the repository has no model '" + name + "'");
        }
        ModelSpec spec;
        try {
            spec = ModelRepository.model(folder);
        } catch (IllegalArgumentException | java.io.UncheckedIOException e) {
            throw InferenceError.invalid(e.getMessage());
        }
        load(spec, session(spec));
    }

    /** Stops serving {@code name} once what it accepted is answered. */
    synchronized void unload(String name) {
        repository("repository unload");
        ServedModel.checkName(name, "model name in the URL");
        ServedModel m = models.remove(name);
        if (m == null) throw InferenceError.notFound("model '" + name + "' is not loaded; models: " + modelNames());
        retire(m);
    }

    /** The port the REST endpoint listens on (useful with port 0), or -1 when off. */
    public int httpPort() { return rest == null ? -1 : rest.port(); }

    public int grpcPort() { return grpc == null ? -1 : grpc.port(); }

    public int metricsPort() { return metricsEndpoint == null ? -1 : metricsEndpoint.port(); }

    /** Names of the served models, sorted. */
    public List<String> modelNames() {
        List<String> names = new ArrayList<>(models.keySet());
        names.sort(null);
        return names;
    }

    boolean live() {
        return true;
    }

    /** Ready: every model loaded, and not draining. */
    boolean ready() {
        return !draining && !loading;
    }

    boolean modelReady(String name, String version) {
        return ready() && find(name, version, "model name") != null;
    }

    Metrics metrics() {
        return metrics;
    }

    AccessLog log() {
        return log;
    }

    /** The model by name and version (empty or null: the one version), or NOT_FOUND naming what is served. */
    ServedModel find(String name, String version, String field) {
        ServedModel.checkName(name, field);
        ServedModel m = models.get(name);
        if (m == null) {
            metrics.unroutable.increment();
            if (loading) throw InferenceError.unavailable("model '" + name + "' is not loaded yet: the server is loading its models");
            throw InferenceError.notFound("model '" + name + "' is not served; models: " + modelNames());
        }
        if (version != null && !version.isEmpty() && !version.equals(ServedModel.VERSION)) {
            throw InferenceError.notFound("model '" + name + "' has no version '" + ServedModel.abbreviate(version) + "'; its only version is " + ServedModel.VERSION);
        }
        return m;
    }

    /** The result of an inference: outputs by name, in the order asked (or declared). */
    record Result(ServedModel model, String id, Map<String, Tensor> outputs) {}

    /**
     * Checks what the codecs could not check alone (every input given once, one batch size, known outputs),
     * queues the request and counts its outcome. A refusal is thrown or completes the future with an
     * {@link InferenceError}; the future never completes otherwise than with a result or such an error.
     */
    CompletableFuture<Result> infer(ServedModel model, InferRequest request) {
        Metrics.Model m = metrics.model(model.name, model.batcher.config().maxBatchSize());
        try {
            if (draining) throw InferenceError.unavailable("the server is shutting down and takes no new requests");
            Map<String, Tensor> feed = new LinkedHashMap<>();
            int samples = -1;
            for (int i = 0; i < request.inputs().size(); i++) {
                InferRequest.Input in = request.inputs().get(i);
                if (feed.containsKey(in.name())) throw InferenceError.invalid("inputs[" + i + "].name '" + in.name() + "' is given twice");
                int n = Math.toIntExact(in.shape().getFirst());
                if (samples >= 0 && n != samples) {
                    throw InferenceError.invalid("inputs[" + i + "].shape " + in.shape() + ": batch " + n + " differs from the other inputs' " + samples);
                }
                samples = n;
                int[] dims = in.shape().stream().mapToInt(Long::intValue).toArray();
                feed.put(in.name(), new Tensor(Shape.of(dims), in.data()));
            }
            List<String> missing = model.inputs.keySet().stream().filter(k -> !feed.containsKey(k)).toList();
            if (!missing.isEmpty()) throw InferenceError.invalid("inputs lacks " + missing + " of model " + model.name + "; inputs are " + model.inputs.keySet());
            List<String> outputs = new ArrayList<>();
            for (int i = 0; i < request.outputs().size(); i++) {
                String o = request.outputs().get(i);
                if (!model.outputs.containsKey(o)) {
                    throw InferenceError.invalid("outputs[" + i + "].name '" + ServedModel.abbreviate(String.valueOf(o)) + "' is not an output of model " + model.name
                            + "; outputs are " + model.outputs.keySet());
                }
                if (!outputs.contains(o)) outputs.add(o);
            }
            if (outputs.isEmpty()) outputs.addAll(model.outputs.keySet());
            return model.batcher.submit(feed, samples, new java.util.LinkedHashSet<>(outputs))
                    .handle((out, error) -> {
                        if (error != null) {
                            InferenceError e = unwrap(error);
                            m.failed(e.reason());
                            throw e;
                        }
                        m.success.increment();
                        return new Result(model, request.id(), out);
                    });
        } catch (InferenceError e) {
            m.failed(e.reason());
            return CompletableFuture.failedFuture(e);
        }
    }

    /** Counts a request refused before it reached {@link #infer} (its body or fields did not decode). */
    void refused(ServedModel model, InferenceError e) {
        metrics.model(model.name, model.batcher.config().maxBatchSize()).failed(e.reason());
    }

    static InferenceError unwrap(Throwable t) {
        while (t instanceof java.util.concurrent.CompletionException && t.getCause() != null) t = t.getCause();
        return t instanceof InferenceError e ? e : new InferenceError(InferenceError.Reason.INTERNAL, String.valueOf(t.getMessage()));
    }

    /**
     * Graceful stop: not ready at once, new requests refused with UNAVAILABLE, queued and running ones
     * answered, then the endpoints close. Waits at most {@code bound} for the queues; true when every
     * accepted request ran.
     */
    public boolean drain(Duration bound) {
        draining = true;
        long end = System.nanoTime() + bound.toNanos();
        boolean all = true;
        for (ServedModel m : models.values()) all &= m.batcher.drain(Duration.ofNanos(Math.max(0, end - System.nanoTime())));
        close();
        return all;
    }

    /** Blocks until {@link #close} (or {@link #drain}) has run. */
    public void awaitTermination() {
        terminated.join();
    }

    @Override
    public void close() {
        draining = true;
        // Batchers first: what is still queued is answered UNAVAILABLE and running batches finish; then the
        // endpoints stop, after a grace period in which those answers go out.
        for (ServedModel m : models.values()) m.batcher.close();
        if (rest != null) rest.close();
        if (grpc != null) grpc.close();
        if (metricsEndpoint != null) metricsEndpoint.close();
        timer.shutdownNow();
        terminated.complete(null);
    }

}
