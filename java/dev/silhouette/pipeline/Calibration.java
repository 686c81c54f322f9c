package dev.silhouette.pipeline;

import dev.silhouette.io.AtomicFiles;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonParseException;
import dev.silhouette.backend.Backend;
import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.graph.Graph;
import dev.silhouette.io.Progress;
import dev.silhouette.quant.ActivationStats;
import dev.silhouette.quant.ClipCalibration;
import dev.silhouette.tensor.Tensor;

import java.io.IOException;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Set;
import java.util.TreeMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What calibration images tell about a model's values, collected once per model and reused (collect /
 * use modes, like TensorRT's calibration cache): per value, moments, percentiles and a histogram over
 * [min, max] (ACIQ, min/max ranges, per-channel bit allocation); a histogram over [0, max] giving the
 * PACT clip level at any width ({@link ClipCalibration}); and, for the values DRQ quantizes, the sorted
 * block means its thresholds are chosen from. The saved file holds the statistics only, as JSON with
 * the graph's fingerprint, so statistics of another model are refused instead of silently misused.
 */
public final class Calibration {
    public static final String FORMAT = "silhouette-calibration-1";
    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create();

    /** The saved part. */
    private record Stats(String format, String fingerprint, String model, int images, Map<String, ActivationStats> layers) {}

    private final Stats stats;
    private final Map<String, ClipCalibration> pactHistograms;
    private final Map<String, float[]> blockMeans;
    private final Map<String, Map<Integer, Float>> clipLevels = new LinkedHashMap<>();

    private Calibration(Stats stats, Map<String, ClipCalibration> pactHistograms, Map<String, float[]> blockMeans) {
        this.stats = stats;
        this.pactHistograms = pactHistograms;
        this.blockMeans = blockMeans;
    }

    public String fingerprint() {
        return stats.fingerprint();
    }

    public String model() {
        return stats.model();
    }

    public int images() {
        return stats.images();
    }

    public Map<String, ActivationStats> layers() {
        return stats.layers();
    }

    public ActivationStats layer(String name) {
        ActivationStats s = stats.layers().get(name);
        if (s == null) throw new IllegalArgumentException("calibration statistics have no value '" + name + "'; they cover " + stats.layers().keySet());
        return s;
    }

    /**
     * The PACT clip level of {@code value} at {@code bits}: a level learned by fine-tuning ({@link #adopt}) where
     * there is one, else the least-squares level over the calibration images, chosen once and remembered.
     */
    public float alpha(String value, int bits) {
        Map<Integer, Float> known = clipLevels.get(value);
        if (known != null && known.containsKey(bits)) return known.get(bits);
        ClipCalibration h = pactHistograms.get(value);
        if (h == null) {
            throw new IllegalArgumentException(pactHistograms.isEmpty()
                    ? "these calibration statistics were read from a file, which keeps no PACT histograms; collect them again to choose PACT clip levels"
                    : "no calibration of '" + value + "' to choose its clip level from; calibrated: " + pactHistograms.keySet());
        }
        return clipLevels.computeIfAbsent(value, k -> new TreeMap<>()).computeIfAbsent(bits, h::alpha);
    }

    /**
     * Uses clip levels learned by fine-tuning for these values and widths instead of calibrating them; a value
     * this calibration does not cover is refused (the levels belong to another model).
     */
    public void adopt(Map<String, Map<Integer, Float>> learned) {
        learned.forEach((value, byBits) -> {
            if (!pactHistograms.containsKey(value)) {
                throw new IllegalArgumentException("learned clip levels name '" + value + "', which no quantized convolution of this model reads; "
                        + "they belong to another model");
            }
            clipLevels.computeIfAbsent(value, k -> new TreeMap<>()).putAll(byBits);
        });
    }

    /** The clip levels asked for or adopted so far, by value and width. */
    public Map<String, Map<Integer, Float>> clipLevels() {
        return clipLevels;
    }

    /** Sorted DRQ block means of a value over the calibration images. */
    public float[] blockMeans(String value) {
        float[] m = blockMeans.get(value);
        if (m == null) throw new IllegalArgumentException("no DRQ block means of '" + value + "' were collected; collected: " + blockMeans.keySet());
        return m;
    }

    /** The values whose DRQ block means were collected, in graph order. */
    public Set<String> blockMeanValues() {
        return blockMeans.keySet();
    }

    /**
     * Runs {@code graph} over {@code images} (N x sample shape) on {@code backend} in batches, twice: the
     * first pass finds min, max, sums and sums of squares, the second the mean absolute deviation about
     * the final mean, the histograms and, for {@code drqValues}, the DRQ block means of {@code drqBlock}; {@code progress}
     * counts 2 steps per image and is closed at the end.
     */
    public static Calibration collect(Backend backend, Graph graph, String model, Tensor images, int batch, List<String> values,
                                      Set<String> drqValues, int drqBlock, Progress progress) {
        int n = images.shape().rank() == 0 ? 0 : images.shape().dim(0);
        if (n == 0) throw new IllegalArgumentException("the calibration set is empty: statistics need at least one image");
        if (batch < 1) throw new IllegalArgumentException("calibration batch " + batch + " must be at least 1");
        if (values.isEmpty()) throw new IllegalArgumentException("no values to collect statistics for");
        if (!values.containsAll(drqValues)) throw new IllegalArgumentException("DRQ values " + drqValues + " are not all among the calibrated " + values);
        String input = graph.inputs().getFirst().name();
        Map<String, Moments> moments = new LinkedHashMap<>();
        for (String v : values) moments.put(v, new Moments());
        Map<String, ClipCalibration> pact = new LinkedHashMap<>();
        Map<String, List<float[]>> means = new HashMap<>();
        try (Progress bar = progress) {
            for (int pass = 0; pass < 2; pass++) {
                if (pass == 1) {
                    // PACT clips [0, max]: a value that is never positive gets the unit range, whose levels are never used.
                    moments.forEach((v, m) -> pact.put(v, new ClipCalibration(m.all.max > 0 ? (float) m.all.max : 1f)));
                }
                for (int from = 0; from < n; from += batch) {
                    int to = Math.min(n, from + batch);
                    Map<String, Tensor> out = backend.run(graph, Map.of(input, images.slice(from, to)), values);
                    for (String v : values) {
                        Tensor t = out.get(v);
                        if (pass == 0) {
                            moments.get(v).first(t);
                            continue;
                        }
                        moments.get(v).second(t);
                        pact.get(v).add(t.data(), 0, t.size());
                        if (drqValues.contains(v)) means.computeIfAbsent(v, k -> new ArrayList<>()).add(RegionOps.drqBlockMeans(t, drqBlock));
                    }
                    bar.stepBy(to - from);
                }
            }
        }
        Map<String, ActivationStats> layers = new LinkedHashMap<>();
        moments.forEach((v, m) -> layers.put(v, m.stats()));
        Map<String, float[]> sortedMeans = new LinkedHashMap<>();
        for (String v : values) if (means.containsKey(v)) sortedMeans.put(v, concatSorted(means.get(v)));
        return new Calibration(new Stats(FORMAT, graph.fingerprint(), model, n, layers), pact, sortedMeans);
    }

    private static float[] concatSorted(List<float[]> parts) {
        int count = parts.stream().mapToInt(a -> a.length).sum();
        float[] all = new float[count];
        int at = 0;
        for (float[] a : parts) {
            System.arraycopy(a, 0, all, at, a.length);
            at += a.length;
        }
        Arrays.sort(all);
        return all;
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
                    GSON.toJson(stats, w);
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write calibration statistics " + file + ": " + e.getMessage(), e);
        }
    }

    /** Reads statistics and refuses them unless they were collected on this very graph. */
    public static Calibration load(Path file, Graph graph) {
        Stats c;
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            c = GSON.fromJson(r, Stats.class);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read calibration statistics " + file + ": " + e.getMessage(), e);
        } catch (JsonParseException e) {
            throw new IllegalArgumentException("calibration statistics " + file + " are not valid JSON: " + e.getMessage());
        }
        if (c == null || !FORMAT.equals(c.format()) || c.layers() == null) {
            throw new IllegalArgumentException("calibration statistics " + file + " are not a " + FORMAT + " file");
        }
        String expected = graph.fingerprint();
        if (!expected.equals(c.fingerprint())) {
            throw new IllegalArgumentException("calibration statistics " + file + " were collected on another model ('" + c.model()
                    + "', fingerprint " + abbreviate(c.fingerprint()) + "); this model's fingerprint is " + abbreviate(expected));
        }
        return new Calibration(c, Map.of(), Map.of());
    }

    /** The first 12 hex digits of a fingerprint, for messages. */
    static String abbreviate(String fingerprint) {
        return fingerprint == null ? "none" : fingerprint.substring(0, Math.min(12, fingerprint.length()));
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
