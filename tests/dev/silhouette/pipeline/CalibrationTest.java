package dev.silhouette.pipeline;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.quant.ActivationStats;
import dev.silhouette.quant.ClipCalibration;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.tensor.Window;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

public class CalibrationTest {

    static Graph smallNet(long seed) {
        GraphBuilder b = new GraphBuilder(seed);
        String x = b.input("image", 2, 9, 7);
        String c = b.conv("conv", x, 5, Window.square(3, 1, 1), 1, true);
        String r = b.relu("relu", c);
        b.output(r);
        return b.build();
    }

    @Test
    public void statisticsMatchAnIndependentComputationAndSurviveTheFile() throws Exception {
        Graph g = smallNet(1);
        Tensor images = Tensor.uniform(Shape.of(13, 2, 9, 7), -1, 1, 2);
        Calibration cal;
        try (CpuBackend cpu = new CpuBackend()) {
            cal = Calibration.collect(cpu, g, "small", images, 4, List.of("conv", "relu"), java.util.Set.of("relu"), 2, dev.silhouette.io.Progress.none());
            for (String value : List.of("conv", "relu")) {
                float[] all = cpu.run(g, Map.of("image", images), List.of(value)).get(value).data();
                ActivationStats s = cal.layer(value);
                double[] sorted = new double[all.length];
                for (int i = 0; i < all.length; i++) sorted[i] = all[i];
                Arrays.sort(sorted);
                double mean = Arrays.stream(sorted).average().orElseThrow();
                double mad = Arrays.stream(sorted).map(v -> Math.abs(v - mean)).average().orElseThrow();
                double std = Math.sqrt(Arrays.stream(sorted).map(v -> (v - mean) * (v - mean)).average().orElseThrow());
                assertEquals(s.count(), all.length);
                assertEquals(s.min(), sorted[0]);
                assertEquals(s.max(), sorted[sorted.length - 1]);
                assertEquals(s.mean(), mean, 1e-9);
                assertEquals(s.meanAbsDeviation(), mad, 1e-9);
                assertEquals(s.std(), std, 1e-6);
                assertEquals(Arrays.stream(s.histogram()).sum(), all.length);
                double binWidth = (s.max() - s.min()) / ActivationStats.HISTOGRAM_BINS;
                for (double level : new double[] {1, 50, 99}) {
                    double exact = sorted[(int) Math.min(sorted.length - 1, Math.ceil(level / 100 * sorted.length) - 1)];
                    assertEquals(s.percentile(level), exact, binWidth * 1.01 + 1e-12, value + " percentile " + level);
                }
            }
        }
        assertTrue(cal.layer("relu").min() >= 0);
        try (CpuBackend cpu = new CpuBackend()) {
            Tensor conv = cpu.run(g, Map.of("image", images), List.of("conv")).get("conv");
            int plane = 9 * 7;
            assertEquals(cal.layer("conv").channels().size(), 5);
            for (int c = 0; c < 5; c++) {
                double min = Double.MAX_VALUE, max = -Double.MAX_VALUE, sum = 0;
                for (int n = 0; n < 13; n++) {
                    for (int i = 0; i < plane; i++) {
                        float v = conv.data()[(n * 5 + c) * plane + i];
                        min = Math.min(min, v);
                        max = Math.max(max, v);
                        sum += v;
                    }
                }
                ActivationStats.ChannelStats cs = cal.layer("conv").channels().get(c);
                assertEquals(cs.min(), min, "channel " + c);
                assertEquals(cs.max(), max, "channel " + c);
                assertEquals(cs.mean(), sum / (13 * plane), 1e-9, "channel " + c);
            }
        }
        // The PACT clip levels and DRQ block means, against the same quantities computed over the whole set at once.
        try (CpuBackend cpu = new CpuBackend()) {
            Tensor relu = cpu.run(g, Map.of("image", images), List.of("relu")).get("relu");
            float max = 0;
            for (float v : relu.data()) max = Math.max(max, v);
            ClipCalibration whole = new ClipCalibration(max);
            whole.add(relu.data(), 0, relu.size());
            for (int bits : new int[] {2, 4, 8}) assertEquals(cal.alpha("relu", bits), whole.alpha(bits), "PACT clip at " + bits + " bits");
            float[] means = RegionOps.drqBlockMeans(relu, 2);
            Arrays.sort(means);
            assertEquals(cal.blockMeans("relu"), means);
            expectThrows(IllegalArgumentException.class, () -> cal.blockMeans("conv"));
        }
        // A fine-tuned level replaces the calibrated one for its width only.
        cal.adopt(Map.of("relu", Map.of(4, 0.125f)));
        assertEquals(cal.alpha("relu", 4), 0.125f);
        expectThrows(IllegalArgumentException.class, () -> cal.adopt(Map.of("elsewhere", Map.of(4, 1f))));
        Path file = Files.createTempDirectory("calib").resolve("stats.json");
        cal.save(file);
        Calibration back = Calibration.load(file, g);
        // The file keeps the statistics, not the PACT histograms: asking a loaded calibration for a clip level says so.
        assertTrue(expectThrows(IllegalArgumentException.class, () -> back.alpha("relu", 4)).getMessage().contains("collect them again"));
        assertEquals(back.fingerprint(), cal.fingerprint());
        assertEquals(back.layer("conv").std(), cal.layer("conv").std());
        assertEquals(back.layer("relu").histogram(), cal.layer("relu").histogram());
    }

    @Test
    public void statisticsOfAnotherModelAreRefused() throws Exception {
        Graph g = smallNet(1);
        Path file = Files.createTempDirectory("calib").resolve("stats.json");
        try (CpuBackend cpu = new CpuBackend()) {
            Calibration.collect(cpu, g, "small", Tensor.uniform(Shape.of(2, 2, 9, 7), 0, 1, 3), 8, List.of("relu"), java.util.Set.of(), 1, dev.silhouette.io.Progress.none()).save(file);
        }
        Map<String, Tensor> params = new HashMap<>(g.parameters());
        Tensor w = params.get("conv.weight").copy();
        w.data()[0] += 1e-3f;
        params.put("conv.weight", w);
        Graph retrained = g.withParameters(params);
        var e = expectThrows(IllegalArgumentException.class, () -> Calibration.load(file, retrained));
        assertTrue(e.getMessage().contains("were collected on another model ('small'"), e.getMessage());
        Path garbage = file.resolveSibling("garbage.json");
        Files.writeString(garbage, "{\"format\": \"something else\"}");
        e = expectThrows(IllegalArgumentException.class, () -> Calibration.load(garbage, g));
        assertTrue(e.getMessage().contains("not a silhouette-calibration-1 file"), e.getMessage());
    }

    @Test
    public void anEmptyCalibrationSetFails() {
        Graph g = smallNet(1);
        var e = expectThrows(IllegalArgumentException.class,
                () -> Calibration.collect(new CpuBackend(), g, "small", Tensor.zeros(0, 2, 9, 7), 8, List.of("relu"), java.util.Set.of(), 1, dev.silhouette.io.Progress.none()));
        assertEquals(e.getMessage(), "the calibration set is empty: statistics need at least one image");
    }
}
