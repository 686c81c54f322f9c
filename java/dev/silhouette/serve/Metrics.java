package dev.silhouette.serve;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.IntSupplier;

/**
 * The server's Prometheus metrics, written in the text exposition format (version 0.0.4): per model,
 * requests that succeeded and that failed by reason, samples inferred, batches executed, queue, compute
 * and request durations, pending requests and the batch size distribution. Kept by hand: a handful of
 * counters and fixed-bucket histograms, no registry to configure.
 */
public final class Metrics {
    /** The scrape path, and the gauge an autoscaler reads (deploy/kubernetes/scaledobject.yaml). */
    public static final String PATH = "/metrics", PENDING_REQUESTS = "silhouette_pending_requests";
    static final double[] SECONDS = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10};

    /** One model's counters. */
    static final class Model {
        final LongAdder success = new LongAdder();
        final Map<InferenceError.Reason, LongAdder> failure = new EnumMap<>(InferenceError.Reason.class);
        final LongAdder inferences = new LongAdder();
        final LongAdder executions = new LongAdder();
        final Histogram queue = new Histogram(SECONDS), compute = new Histogram(SECONDS), request = new Histogram(SECONDS);
        final Histogram batchSize;
        volatile IntSupplier pending = () -> 0;

        Model(int maxBatch) {
            for (InferenceError.Reason r : InferenceError.Reason.values()) failure.put(r, new LongAdder());
            List<Double> bounds = new ArrayList<>();
            for (int b = 1; b < maxBatch; b *= 2) bounds.add((double) b);
            bounds.add((double) maxBatch);
            batchSize = new Histogram(bounds.stream().mapToDouble(Double::doubleValue).toArray());
        }

        void failed(InferenceError.Reason reason) {
            failure.get(reason).increment();
        }
    }

    /** Cumulative buckets, a sum and a count. */
    static final class Histogram {
        private final double[] bounds;
        private final long[] counts;
        private double sum;
        private long count;

        Histogram(double[] bounds) {
            this.bounds = bounds.clone();
            this.counts = new long[bounds.length];
        }

        synchronized void observe(double v) {
            for (int i = 0; i < bounds.length; i++) if (v <= bounds[i]) counts[i]++;
            sum += v;
            count++;
        }

        synchronized void write(StringBuilder out, String name, String labels) {
            for (int i = 0; i < bounds.length; i++) {
                out.append(name).append("_bucket{").append(labels).append(",le=\"").append(number(bounds[i])).append("\"} ").append(counts[i]).append('\n');
            }
            out.append(name).append("_bucket{").append(labels).append(",le=\"+Inf\"} ").append(count).append('\n');
            out.append(name).append("_sum{").append(labels).append("} ").append(number(sum)).append('\n');
            out.append(name).append("_count{").append(labels).append("} ").append(count).append('\n');
        }
    }

    private final Map<String, Model> models = new ConcurrentHashMap<>();

    Model model(String name, int maxBatch) {
        return models.computeIfAbsent(name, n -> new Model(maxBatch));
    }

    /** Requests refused before any model was found (unknown model, malformed path). */
    final LongAdder unroutable = new LongAdder();

    /** The exposition text. */
    public String render() {
        StringBuilder out = new StringBuilder();
        List<String> names = new ArrayList<>(models.keySet());
        names.sort(null);
        header(out, "silhouette_request_success_total", "counter", "inference requests answered with a result");
        for (String n : names) out.append("silhouette_request_success_total{model=\"").append(n).append("\"} ").append(models.get(n).success.sum()).append('\n');
        header(out, "silhouette_request_failure_total", "counter", "inference requests answered with an error, by reason");
        for (String n : names) {
            for (Map.Entry<InferenceError.Reason, LongAdder> e : models.get(n).failure.entrySet()) {
                out.append("silhouette_request_failure_total{model=\"").append(n).append("\",reason=\"").append(e.getKey().label()).append("\"} ")
                        .append(e.getValue().sum()).append('\n');
            }
        }
        header(out, "silhouette_request_unroutable_total", "counter", "requests naming no served model or a malformed path");
        out.append("silhouette_request_unroutable_total ").append(unroutable.sum()).append('\n');
        header(out, "silhouette_inference_count_total", "counter", "samples inferred (a request of batch N counts N)");
        for (String n : names) out.append("silhouette_inference_count_total{model=\"").append(n).append("\"} ").append(models.get(n).inferences.sum()).append('\n');
        header(out, "silhouette_execution_count_total", "counter", "batches executed by the model");
        for (String n : names) out.append("silhouette_execution_count_total{model=\"").append(n).append("\"} ").append(models.get(n).executions.sum()).append('\n');
        header(out, PENDING_REQUESTS, "gauge", "requests waiting in the model's queue");
        for (String n : names) out.append(PENDING_REQUESTS).append("{model=\"").append(n).append("\"} ").append(models.get(n).pending.getAsInt()).append('\n');
        histograms(out, names, "silhouette_queue_duration_seconds", "time requests waited in the queue", m -> m.queue);
        histograms(out, names, "silhouette_compute_duration_seconds", "time a batch took to run", m -> m.compute);
        histograms(out, names, "silhouette_request_duration_seconds", "time from a request's arrival in the queue to its answer", m -> m.request);
        histograms(out, names, "silhouette_batch_size", "samples per executed batch", m -> m.batchSize);
        return out.toString();
    }

    private void histograms(StringBuilder out, List<String> names, String metric, String help, java.util.function.Function<Model, Histogram> pick) {
        header(out, metric, "histogram", help);
        for (String n : names) pick.apply(models.get(n)).write(out, metric, "model=\"" + n + "\"");
    }

    private static void header(StringBuilder out, String name, String type, String help) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }

    private static String number(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : String.format(Locale.ROOT, "%s", v);
    }
}
