package dev.silhouette.cli;

import dev.silhouette.io.Machine;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphStats;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Passes;
import dev.silhouette.onnx.OnnxExporter;
import dev.silhouette.onnx.OnnxImporter;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.SkipException;
import org.testng.annotations.Test;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * Throughput of one ONNX model on Silhouette's CPU backend and on ONNX Runtime (CPU, all graph
 * optimizations, one intra-op thread per core), in the same JVM on the same inputs: ResNet-18 with
 * random weights, batch 8, 224x224. Method as the bench command: warm-up runs untimed, then timed runs,
 * median with min and max. Not part of the product (ONNX Runtime is a test dependency), and not a
 * timed test: its name keeps it out of surefire's default includes, so it runs only when named, and then
 * only with an output file, where it writes JSON with the machine:
 *
 * <pre>mvn -B verify -Dtest=OnnxPeerBench "-Dsilhouette.jvm.flags=--add-modules jdk.incubator.vector
 *     --enable-native-access=ALL-UNNAMED -Dsilhouette.bench.out=docs/results/onnx-peer-resnet18-cpu-batch8.json"</pre>
 */
public class OnnxPeerBench {
    static final int BATCH = 8, SIZE = 224, WARMUP = 2, RUNS = 7;

    record Timing(String runtime, double medianMs, double minMs, double maxMs, double imagesPerSecond, double gmacsPerSecond) {}

    record Report(String model, int batch, int inputSize, int warmup, int runs, Timing silhouetteCpu, Timing onnxRuntime,
                  double maxRelativeDifference, String note, Machine machine) {}

    @Test
    public void resnet18Batch8() throws IOException, OrtException {
        String out = System.getProperty("silhouette.bench.out");
        if (out == null) throw new SkipException("benchmark runs only with -Dsilhouette.bench.out=FILE (see the class comment)");
        Path dir = Files.createTempDirectory("onnx-bench");
        Path file = dir.resolve("resnet18.onnx");
        Graph built = Models.build("resnet18", Models.defaults("resnet18"));
        OnnxExporter.write(built, 17, file, false);
        // Silhouette runs the imported graph as its bench command does: BatchNorm folded into the convolutions.
        Graph graph = Passes.foldBatchNorm(OnnxImporter.read(file).graph());
        long macs = GraphStats.of(graph, BATCH).macs();
        Tensor[] inputs = new Tensor[3];
        for (int i = 0; i < inputs.length; i++) inputs[i] = Tensor.uniform(Shape.of(BATCH, 3, SIZE, SIZE), 0, 1, i);

        CpuBackend cpu = new CpuBackend();
        double[] ours = new double[RUNS];
        Tensor oursOut = null;
        for (int i = 0; i < WARMUP + RUNS; i++) {
            long t0 = System.nanoTime();
            Tensor y = cpu.run(graph, Map.of("input", inputs[i % inputs.length])).get(Models.LOGITS);
            if (i >= WARMUP) ours[i - WARMUP] = (System.nanoTime() - t0) / 1e6;
            if (i % inputs.length == 0) oursOut = y;
        }

        OrtEnvironment env = OrtEnvironment.getEnvironment();
        double[] theirs = new double[RUNS];
        float[] theirsOut = null;
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            o.setIntraOpNumThreads(Runtime.getRuntime().availableProcessors());
            try (OrtSession session = env.createSession(file.toString(), o)) {
                for (int i = 0; i < WARMUP + RUNS; i++) {
                    Tensor x = inputs[i % inputs.length];
                    try (OnnxTensor t = OnnxTensor.createTensor(env, FloatBuffer.wrap(x.data()), new long[] {BATCH, 3, SIZE, SIZE})) {
                        long t0 = System.nanoTime();
                        try (OrtSession.Result r = session.run(Map.of("input", t))) {
                            if (i >= WARMUP) theirs[i - WARMUP] = (System.nanoTime() - t0) / 1e6;
                            if (i % inputs.length == 0) {
                                FloatBuffer fb = ((OnnxTensor) r.get(Models.LOGITS).get()).getFloatBuffer();
                                theirsOut = new float[fb.remaining()];
                                fb.get(theirsOut);
                            }
                        }
                    }
                }
            }
        }
        double scale = 1, worst = 0;
        for (float v : theirsOut) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < theirsOut.length; i++) worst = Math.max(worst, Math.abs(oursOut.data()[i] - theirsOut[i]));
        Report report = new Report("resnet18 (random weights, exported to ONNX opset 17)", BATCH, SIZE, WARMUP, RUNS,
                timing("silhouette cpu", ours, macs), timing("onnxruntime cpu", theirs, macs), worst / scale,
                "shared machine (other jobs running); medians are noisy", Machine.current());
        Path target = Path.of(out).toAbsolutePath();
        Files.createDirectories(target.getParent());
        dev.silhouette.io.AtomicFiles.write(target, tmp -> {
            try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(tmp))) {
                Output.json(w, report);
            }
        });
        Files.delete(file);
        Files.delete(dir);
    }

    private static Timing timing(String name, double[] ms, long macs) {
        double[] s = ms.clone();
        Arrays.sort(s);
        double median = s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
        return new Timing(name, median, s[0], s[s.length - 1], BATCH / (median / 1e3), macs / (median / 1e3) / 1e9);
    }
}
