package dev.silhouette.cli;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.RegionQuantization;
import dev.silhouette.quant.ClipCalibration;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * What the main job and fine-tuning learn from the calibration images (training split only) about the
 * FP32 model's convolution inputs: their histograms, giving the PACT clip level at any width, and for
 * the receiving convolutions the sorted DRQ block means.
 */
final class ActivationCalibration implements RegionQuantization.ClipLevels {
    private final Map<String, ClipCalibration> histograms = new LinkedHashMap<>();
    private final Map<String, Map<Integer, Float>> clips = new LinkedHashMap<>();
    private final Map<String, float[]> blockMeans = new HashMap<>();

    /** Runs {@code fp32} over the calibration images twice: once for each input's maximum, once to fill the histograms. */
    ActivationCalibration(Graph fp32, RegionQuantization.Layers layers, FashionMnist calibration, int batch, int drqBlock) {
        List<Node> convs = new ArrayList<>(layers.preBranch());
        convs.addAll(layers.receiving());
        Set<String> values = convInputs(convs);
        List<String> requested = new ArrayList<>(values);
        Map<String, Float> max = new HashMap<>();
        CpuBackend cpu = new CpuBackend();
        String input = fp32.inputs().getFirst().name();
        int total = calibration.labels().length;
        for (int from = 0; from < total; from += batch) {
            Map<String, Tensor> out = cpu.run(fp32, Map.of(input, calibration.images().slice(from, Math.min(total, from + batch))), requested);
            for (String v : values) {
                float m = 0f;
                for (float x : out.get(v).data()) m = Math.max(m, x);
                max.merge(v, m, Math::max);
            }
        }
        Set<String> receivingInputs = convInputs(layers.receiving());
        Map<String, List<float[]>> means = new HashMap<>();
        for (String v : values) histograms.put(v, new ClipCalibration(max.get(v) > 0 ? max.get(v) : 1f));
        for (int from = 0; from < total; from += batch) {
            Map<String, Tensor> out = cpu.run(fp32, Map.of(input, calibration.images().slice(from, Math.min(total, from + batch))), requested);
            for (String v : values) {
                Tensor t = out.get(v);
                histograms.get(v).add(t.data(), 0, t.size());
                if (receivingInputs.contains(v)) means.computeIfAbsent(v, k -> new ArrayList<>()).add(RegionOps.drqBlockMeans(t, drqBlock));
            }
        }
        means.forEach((v, parts) -> {
            int count = parts.stream().mapToInt(a -> a.length).sum();
            float[] all = new float[count];
            int at = 0;
            for (float[] a : parts) {
                System.arraycopy(a, 0, all, at, a.length);
                at += a.length;
            }
            Arrays.sort(all);
            blockMeans.put(v, all);
        });
    }

    static Set<String> convInputs(List<Node> nodes) {
        Set<String> values = new LinkedHashSet<>();
        for (Node n : nodes) values.add(n.inputs().getFirst());
        return values;
    }

    @Override
    public float alpha(String value, int bits) {
        ClipCalibration h = histograms.get(value);
        if (h == null) throw new IllegalStateException("no calibration for '" + value + "'");
        return clips.computeIfAbsent(value, k -> new TreeMap<>()).computeIfAbsent(bits, h::alpha);
    }

    /**
     * Uses clip levels learned by fine-tuning for these values and widths instead of calibrating them; a value
     * this model's convolutions do not read is refused (the levels belong to another model).
     */
    void adopt(Map<String, Map<Integer, Float>> learned) {
        learned.forEach((value, byBits) -> {
            if (!histograms.containsKey(value)) {
                throw new IllegalArgumentException("learned clip levels name '" + value + "', which no quantized convolution of this model reads; "
                        + "they belong to another model");
            }
            clips.computeIfAbsent(value, k -> new TreeMap<>()).putAll(byBits);
        });
    }

    /** The clip levels asked for so far, by value and width. */
    Map<String, Map<Integer, Float>> clipLevels() {
        return clips;
    }

    /** Sorted block means of each receiving convolution's input over the calibration images. */
    Map<String, float[]> blockMeans() {
        return blockMeans;
    }
}
