package dev.silhouette.quant;

import dev.silhouette.io.AtomicFiles;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonParseException;
import dev.silhouette.backend.Backend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Per-layer activation statistics over a calibration set, collected once and reused (collect / use
 * modes, like TensorRT's calibration cache). The file is JSON and carries a fingerprint of the graph
 * (structure and weights), so statistics of another model are refused instead of silently misused.
 */
public record Calibration(String format, String fingerprint, String model, int images, Map<String, ActivationStats> layers) {
    public static final String FORMAT = "silhouette-calibration-1";
    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create();

    public ActivationStats layer(String name) {
        ActivationStats s = layers.get(name);
        if (s == null) throw new IllegalArgumentException("calibration statistics have no value '" + name + "'; they cover " + layers.keySet());
        return s;
    }

    /**
     * Runs {@code graph} over {@code images} (N x sample shape) on {@code backend} in batches, twice: the
     * first pass finds min, max, sums and sums of squares, the second the mean absolute deviation about
     * the final mean and a histogram over [min, max].
     */
    public static Calibration collect(Backend backend, Graph graph, String model, Tensor images, int batch, List<String> values) {
        int n = images.shape().rank() == 0 ? 0 : images.shape().dim(0);
        if (n == 0) throw new IllegalArgumentException("the calibration set is empty: statistics need at least one image");
        if (batch < 1) throw new IllegalArgumentException("calibration batch " + batch + " must be at least 1");
        if (values.isEmpty()) throw new IllegalArgumentException("no values to collect statistics for");
        String input = graph.inputs().getFirst().name();
        Map<String, Moments> moments = new LinkedHashMap<>();
        for (String v : values) moments.put(v, new Moments());
        try (dev.silhouette.io.Progress bar = dev.silhouette.io.Progress.start("calibrating", 2L * n, "img")) {
            for (int pass = 0; pass < 2; pass++) {
                for (int from = 0; from < n; from += batch) {
                    int to = Math.min(n, from + batch);
                    Map<String, Tensor> out = backend.run(graph, Map.of(input, images.slice(from, to)), values);
                    for (String v : values) {
                        if (pass == 0) moments.get(v).first(out.get(v));
                        else moments.get(v).second(out.get(v));
                    }
                    bar.stepBy(to - from);
                }
            }
        }
        Map<String, ActivationStats> layers = new LinkedHashMap<>();
        moments.forEach((v, m) -> layers.put(v, m.stats()));
        return new Calibration(FORMAT, fingerprint(graph), model, n, layers);
    }

    /** Every graph input and node of the graph, the default set of values to calibrate. */
    public static List<String> allValues(Graph graph) {
        List<String> values = new java.util.ArrayList<>();
        graph.inputs().forEach(in -> values.add(in.name()));
        graph.nodes().forEach(n -> values.add(n.name()));
        return values;
    }

    public void save(Path file) {
        try {
            AtomicFiles.write(file, tmp -> {
                try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                    GSON.toJson(this, w);
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write calibration statistics " + file + ": " + e.getMessage(), e);
        }
    }

    /** Reads statistics and refuses them unless they were collected on this very graph. */
    public static Calibration load(Path file, Graph graph) {
        Calibration c;
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            c = GSON.fromJson(r, Calibration.class);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read calibration statistics " + file + ": " + e.getMessage(), e);
        } catch (JsonParseException e) {
            throw new IllegalArgumentException("calibration statistics " + file + " are not valid JSON: " + e.getMessage());
        }
        if (c == null || !FORMAT.equals(c.format()) || c.layers() == null) {
            throw new IllegalArgumentException("calibration statistics " + file + " are not a " + FORMAT + " file");
        }
        String expected = fingerprint(graph);
        if (!expected.equals(c.fingerprint())) {
            throw new IllegalArgumentException("calibration statistics " + file + " were collected on another model ('" + c.model()
                    + "', fingerprint " + abbreviate(c.fingerprint()) + "); this model's fingerprint is " + abbreviate(expected));
        }
        return c;
    }

    private static String abbreviate(String fingerprint) {
        return fingerprint == null ? "none" : fingerprint.substring(0, Math.min(12, fingerprint.length()));
    }

    /** SHA-256 over the graph's inputs, nodes (name, op, inputs), outputs and every parameter's name, shape and bits. */
    public static String fingerprint(Graph graph) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            StringBuilder s = new StringBuilder();
            for (Graph.Input in : graph.inputs()) s.append("input ").append(in.name()).append(in.sampleShape()).append('\n');
            for (Node node : graph.nodes()) s.append("node ").append(node.name()).append(' ').append(node.op()).append(node.inputs()).append('\n');
            s.append("outputs ").append(graph.outputs()).append('\n');
            md.update(s.toString().getBytes(StandardCharsets.UTF_8));
            for (Map.Entry<String, Tensor> p : graph.parameters().entrySet()) {
                md.update((p.getKey() + p.getValue().shape()).getBytes(StandardCharsets.UTF_8));
                ByteBuffer b = ByteBuffer.allocate(4 * p.getValue().size());
                b.asFloatBuffer().put(p.getValue().data());
                md.update(b.array());
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    /** Running sums of one value across batches, and of each channel of an NCHW value. */
    private static final class Moments {
        final Sums all = new Sums();
        Sums[] channels;
        long[] histogram;

        void first(Tensor t) {
            all.first(t.data(), 0, t.size());
            if (t.shape().rank() != 4) return;
            int c = t.shape().c(), plane = t.shape().h() * t.shape().w();
            if (channels == null) {
                channels = new Sums[c];
                for (int i = 0; i < c; i++) channels[i] = new Sums();
            }
            for (int n = 0; n < t.shape().n(); n++) for (int i = 0; i < c; i++) channels[i].first(t.data(), (n * c + i) * plane, (n * c + i + 1) * plane);
        }

        void second(Tensor t) {
            if (histogram == null) histogram = new long[ActivationStats.HISTOGRAM_BINS];
            all.second(t.data(), 0, t.size());
            double width = (all.max - all.min) / histogram.length;
            for (float x : t.data()) histogram[width == 0 ? 0 : (int) Math.min(histogram.length - 1, (x - all.min) / width)]++;
            if (channels == null) return;
            int c = t.shape().c(), plane = t.shape().h() * t.shape().w();
            for (int n = 0; n < t.shape().n(); n++) for (int i = 0; i < c; i++) channels[i].second(t.data(), (n * c + i) * plane, (n * c + i + 1) * plane);
        }

        ActivationStats stats() {
            ActivationStats.ChannelStats s = all.stats();
            long count = all.count;
            double[] levels = ActivationStats.LEVELS.clone();
            double[] values = new double[levels.length];
            double width = (s.max() - s.min()) / histogram.length;
            for (int l = 0; l < levels.length; l++) {
                double target = levels[l] / 100 * count, cumulative = 0;
                values[l] = s.max();
                for (int b = 0; b < histogram.length; b++) {
                    if (cumulative + histogram[b] >= target && histogram[b] > 0) {
                        values[l] = s.min() + width * (b + (target - cumulative) / histogram[b]);
                        break;
                    }
                    cumulative += histogram[b];
                }
            }
            List<ActivationStats.ChannelStats> perChannel = channels == null ? List.of() : java.util.Arrays.stream(channels).map(Sums::stats).toList();
            return new ActivationStats(count, s.min(), s.max(), s.mean(), s.meanAbsDeviation(), s.std(), s.positiveMean(), s.positiveRms(),
                    levels, values, histogram, perChannel);
        }
    }

    /** Sums over a set of values: pass 1 moments, pass 2 absolute deviation about the final mean. */
    private static final class Sums {
        long count, positives;
        double min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY, sum, sumSquares, positiveSum, positiveSquares, absDeviation;

        void first(float[] v, int from, int to) {
            for (int i = from; i < to; i++) {
                float x = v[i];
                min = Math.min(min, x);
                max = Math.max(max, x);
                sum += x;
                sumSquares += (double) x * x;
                if (x > 0) {
                    positives++;
                    positiveSum += x;
                    positiveSquares += (double) x * x;
                }
            }
            count += to - from;
        }

        void second(float[] v, int from, int to) {
            double mean = sum / count;
            for (int i = from; i < to; i++) absDeviation += Math.abs(v[i] - mean);
        }

        ActivationStats.ChannelStats stats() {
            double mean = sum / count;
            return new ActivationStats.ChannelStats(min, max, mean, absDeviation / count, Math.sqrt(Math.max(0, sumSquares / count - mean * mean)),
                    positives == 0 ? 0 : positiveSum / positives, positives == 0 ? 0 : Math.sqrt(positiveSquares / positives));
        }
    }
}
