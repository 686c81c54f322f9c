package dev.silhouette.cli;

import dev.silhouette.io.Machine;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.Workers;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphStats;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Passes;
import dev.silhouette.onnx.OnnxExporter;
import dev.silhouette.onnx.OnnxImporter;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import org.testng.SkipException;
import org.testng.annotations.Test;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Throughput of ONNX models on Silhouette's CPU backend and on ONNX Runtime (CPU, all graph
 * optimizations, one intra-op thread per core), in the same JVM on the same inputs, runs of the two
 * alternating so that load from other jobs falls on both: ResNet-18 (batch 1 and 8) and ResNet-50
 * (batch 1 and 8) with random weights, MobileNetV2 (torchvision's, random weights, batch 1 and 8, when
 * the PyTorch peer's export is present: OnnxPyTorchPeerTest writes it to target/pytorch-onnx), and the
 * bundled model (batch 1 and 256). Method as the bench command: warm-up runs untimed (at least 5 s of both, alternating, so
 * that the JIT has settled), then timed runs,
 * median with min and max. Not part of the product (ONNX Runtime is a test dependency), and not a
 * timed test: its name keeps it out of surefire's default includes, so it runs only when named, and then
 * only with an output file, where it writes JSON with the machine and the vector width:
 *
 * <pre>mvn -B verify -Dtest=OnnxPeerBench "-Dsilhouette.jvm.flags=--add-modules jdk.incubator.vector
 *     --enable-native-access=ALL-UNNAMED -Dsilhouette.bench.out=docs/results/onnx-peer-cpu.json"</pre>
 *
 * -Dsilhouette.bench.only=resnet18 limits it to the cases whose name starts so.
 */
public class OnnxPeerBench {
    record Timing(String runtime, double medianMs, double minMs, double maxMs, double imagesPerSecond, double gmacsPerSecond) {}

    /** One model at one batch; {@code speedVsOnnxRuntime} is ONNX Runtime's median over ours (above 1: we are faster). */
    record Result(String model, int batch, int inputSize, int warmup, int runs, Timing silhouetteCpu, Timing onnxRuntime,
                  double speedVsOnnxRuntime, double maxRelativeDifference) {}

    record Report(List<Result> results, List<String> notRun, int threads, int vectorBits, String note, Machine machine) {}

    private record Case(String name, Path onnx, int batch, int warmup, int runs) {}

    /** Least warm-up time per case, both runtimes alternating. */
    private static final int WARMUP_SECONDS = 5;

    @Test
    public void cpuAgainstOnnxRuntime() throws IOException, OrtException {
        String out = System.getProperty("silhouette.bench.out");
        if (out == null) throw new SkipException("benchmark runs only with -Dsilhouette.bench.out=FILE (see the class comment)");
        String only = System.getProperty("silhouette.bench.only", "");
        Path dir = Files.createTempDirectory("onnx-bench");
        List<String> notRun = new ArrayList<>();
        List<Case> cases = new ArrayList<>();
        Path r18 = dir.resolve("resnet18.onnx"), r50 = dir.resolve("resnet50.onnx"), bundled = dir.resolve("bundled.onnx");
        OnnxExporter.write(Models.build("resnet18", Models.defaults("resnet18")), 17, r18, false);
        OnnxExporter.write(Models.build("resnet50", Models.defaults("resnet50")), 17, r50, false);
        OnnxExporter.write(ModelLoader.load(ModelLoader.BUNDLED).graph(), 17, bundled, false);
        cases.add(new Case("resnet18", r18, 1, 5, 15));
        cases.add(new Case("resnet18", r18, 8, 2, 7));
        cases.add(new Case("resnet50", r50, 1, 3, 9));
        cases.add(new Case("resnet50", r50, 8, 2, 5));
        Path mobilenet = Path.of(System.getProperty("silhouette.bench.mobilenet", "target/pytorch-onnx/mobilenet_v2_folded_opset17.onnx"));
        if (Files.exists(mobilenet)) {
            cases.add(new Case("mobilenet_v2", mobilenet, 1, 5, 15));
            cases.add(new Case("mobilenet_v2", mobilenet, 8, 2, 7));
        } else {
            notRun.add("mobilenet_v2: " + mobilenet + " is missing (OnnxPyTorchPeerTest exports it with Debian's PyTorch)");
        }
        cases.add(new Case("bundled (fmnist-resnet)", bundled, 1, 50, 101));
        cases.add(new Case("bundled (fmnist-resnet)", bundled, 256, 3, 9));
        List<Result> results = new ArrayList<>();
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        for (Case c : cases) {
            if (!c.name().startsWith(only)) continue;
            results.add(measure(env, c));
            System.out.println("OnnxPeerBench: " + results.getLast());
        }
        Report report = new Report(results, notRun, Workers.threads(), FloatVector.SPECIES_PREFERRED.vectorBitSize(),
                "shared machine (other jobs running): medians are noisy, the ratio (same run, alternating) less so", Machine.current());
        Path target = Path.of(out).toAbsolutePath();
        Files.createDirectories(target.getParent());
        dev.silhouette.io.AtomicFiles.write(target, tmp -> {
            try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(tmp))) {
                Output.json(w, report);
            }
        });
        for (Path p : List.of(r18, r50, bundled)) Files.delete(p);
        Files.delete(dir);
    }

    private static Result measure(OrtEnvironment env, Case c) throws OrtException {
        // Silhouette runs the imported graph as its bench command does: BatchNorm folded into the convolutions.
        Graph graph = Passes.foldBatchNorm(OnnxImporter.read(c.onnx()).graph());
        Graph.Input input = graph.inputs().getFirst();
        int[] dims = new int[input.sampleShape().rank() + 1];
        dims[0] = c.batch();
        System.arraycopy(input.sampleShape().dims(), 0, dims, 1, dims.length - 1);
        long[] ortDims = Arrays.stream(dims).asLongStream().toArray();
        long macs = GraphStats.of(graph, c.batch()).macs();
        Tensor[] inputs = new Tensor[3];
        for (int i = 0; i < inputs.length; i++) inputs[i] = Tensor.uniform(Shape.of(dims), 0, 1, i);
        CpuBackend cpu = new CpuBackend();
        double[] ours = new double[c.runs()], theirs = new double[c.runs()];
        float[] oursOut = null, theirsOut = null;
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            o.setIntraOpNumThreads(Runtime.getRuntime().availableProcessors());
            // ONNX Runtime's pool spins after each run by default; alternating with Silhouette on every core, the spinning
            // threads would take the cores from the run after. Off, each runtime has the machine to itself while it runs.
            o.addConfigEntry("session.intra_op.allow_spinning", "0");
            try (OrtSession session = env.createSession(c.onnx().toString(), o)) {
                String inName = session.getInputNames().iterator().next(), outName = session.getOutputNames().iterator().next();
                // Warm-up: at least the case's count and WARMUP_SECONDS, so that the JIT has compiled every convolution shape's
                // kernels (a few runs left C2 still compiling: medians 2-4x above the steady state on the bundled model).
                long warmStart = System.nanoTime();
                int warmup = c.warmup();
                for (int i = 0; i < warmup || System.nanoTime() - warmStart < WARMUP_SECONDS * 1_000_000_000L; i++) {
                    Tensor x = inputs[i % inputs.length];
                    cpu.run(graph, Map.of(input.name(), x), List.of(outName));
                    try (OnnxTensor t = OnnxTensor.createTensor(env, FloatBuffer.wrap(x.data()), ortDims); OrtSession.Result r = session.run(Map.of(inName, t))) {
                        r.get(outName);
                    }
                }
                for (int i = 0; i < c.runs(); i++) {
                    Tensor x = inputs[i % inputs.length];
                    long t0 = System.nanoTime();
                    Tensor y = cpu.run(graph, Map.of(input.name(), x), List.of(outName)).get(outName);
                    ours[i] = (System.nanoTime() - t0) / 1e6;
                    if (i % inputs.length == 0) oursOut = y.data();
                    try (OnnxTensor t = OnnxTensor.createTensor(env, FloatBuffer.wrap(x.data()), ortDims)) {
                        t0 = System.nanoTime();
                        try (OrtSession.Result r = session.run(Map.of(inName, t))) {
                            theirs[i] = (System.nanoTime() - t0) / 1e6;
                            if (i % inputs.length == 0) {
                                FloatBuffer fb = ((OnnxTensor) r.get(outName).get()).getFloatBuffer();
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
        for (int i = 0; i < theirsOut.length; i++) worst = Math.max(worst, Math.abs(oursOut[i] - theirsOut[i]));
        Timing a = timing("silhouette cpu", ours, macs, c.batch()), b = timing("onnxruntime cpu", theirs, macs, c.batch());
        return new Result(c.name(), c.batch(), dims[dims.length - 1], c.warmup(), c.runs(), a, b, b.medianMs() / a.medianMs(), worst / scale);
    }

    private static Timing timing(String name, double[] ms, long macs, int batch) {
        double[] s = ms.clone();
        Arrays.sort(s);
        double median = s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
        return new Timing(name, median, s[0], s[s.length - 1], batch / (median / 1e3), macs / (median / 1e3) / 1e9);
    }
}
