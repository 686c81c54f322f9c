package dev.silhouette.cli;

import dev.silhouette.io.Machine;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.silhouette.backend.Backend;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.NativeLowBitConv;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphStats;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Node;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.io.Progress;
import dev.silhouette.onnx.OnnxExporter;
import dev.silhouette.pipeline.Calibration;
import dev.silhouette.pipeline.PlanRewrite;
import dev.silhouette.pipeline.Plans;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
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
import java.util.Set;

/**
 * The packed path against FP32 and the float simulation, end to end, in one JVM on the same inputs: the
 * bundled Fashion-MNIST model and ResNet-18 (random weights, a silhouette branch after layer1) at
 * 224x224, each at two batch sizes; FP32, uniform W8A8 and W4A4, region 2:50,3:30,4:20 W4 simulated and
 * packed, a policy sweep at W4, and ONNX Runtime on the exported FP32 model and on the QDQ export of W8A8. Method as the bench
 * command: rotated random inputs (the bundled model: test images), warm-up runs untimed, then timed runs,
 * median with min and max. Clip levels come from calibration (training images; random images for
 * ResNet-18). Not a timed test: it runs only when named, with an output file:
 *
 * <pre>mvn -B verify -Dtest=PackedBench "-Dsilhouette.jvm.flags=--add-modules jdk.incubator.vector
 *     --enable-native-access=ALL-UNNAMED -Dsilhouette.bench.out=docs/results/packed-bench.json"</pre>
 */
public class PackedBench {
    static final int WARMUP = 5, RUNS = 9;
    static final List<String> SWEEP = List.of("2:100", "2:70,4:30", "2:50,3:30,4:20", "3:100", "4:100", "8:100");

    record Timing(String configuration, String execution, double averageActivationBits, double medianMs, double minMs, double maxMs,
                  double imagesPerSecond, double gmacsPerSecond, double floatActivationKiBPerImage, double packedActivationKiBPerImage) {}

    record Model(String model, int batch, long macsPerImage, List<Timing> rows) {}

    record Report(String method, String nativeKernels, List<Model> models, String note, Machine machine) {}

    @Test
    public void packedAgainstFp32() throws IOException, OrtException {
        String out = System.getProperty("silhouette.bench.out");
        if (out == null) throw new SkipException("benchmark runs only with -Dsilhouette.bench.out=FILE (see the class comment)");
        List<Model> models = new ArrayList<>();
        Graph bundled = Passes.foldBatchNorm(ModelLoader.load(ModelLoader.BUNDLED).graph());
        Tensor test = FashionMnist.testSplit(null).images();
        Tensor train = FashionMnist.trainingSubset(null, 256).images();
        for (int batch : new int[] {1, 64}) models.add(model("fmnist-resnet (bundled)", bundled, train, test, batch));
        Graph resnet = Passes.foldBatchNorm(Models.build("resnet18", new Models.Options(1000, 224, "layer1", 0)));
        Tensor random = Tensor.uniform(Shape.of(16, 3, 224, 224), 0, 1, 7);
        for (int batch : new int[] {1, 8}) models.add(model("resnet18 (random weights, silhouette after layer1)", resnet, random.slice(0, 8), random, batch));
        Report report = new Report("median of " + RUNS + " timed runs after " + WARMUP + " untimed, inputs rotated over 3 batches",
                NativeLowBitConv.isa() + (NativeLowBitConv.unavailable() == null ? "" : " (" + NativeLowBitConv.unavailable() + ")"), models,
                "float KiB/img: every tensor a run allocates between layers (the packed path keeps float values between layers and quantizes at "
                        + "each convolution's input); packed KiB/img: the accounting's conv inputs at their widths", Machine.current());
        Path target = Path.of(out).toAbsolutePath();
        Files.createDirectories(target.getParent());
        dev.silhouette.io.AtomicFiles.write(target, tmp -> {
            try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(tmp))) {
                Output.json(w, report);
            }
        });
    }

    private static Model model(String name, Graph fp32, Tensor calibrationImages, Tensor inputs, int batch) throws IOException, OrtException {
        long macs = GraphStats.of(fp32, 1).macs();
        List<Timing> rows = new ArrayList<>();
        QuantPlan w8a8 = null;
        Tensor[] batches = new Tensor[3];
        for (int i = 0; i < 3; i++) {
            int from = i * batch % Math.max(1, inputs.shape().dim(0) - batch + 1);   // three batches, rotated, inside the inputs
            batches[i] = inputs.slice(from, from + batch);
        }
        try (Backend cpu = new CpuBackend()) {
            Calibration calibration = Calibration.collect(cpu, fp32, name, calibrationImages, 8, Plans.convolutionInputs(fp32), Set.of(), 4, Progress.none());
            rows.add(time("FP32", fp32, null, PlanRewrite.Execution.SIMULATED, 32, cpu, batches, batch, macs));
            for (int bits : new int[] {8, 4}) {
                QuantPlan plan = Plans.of(fp32, name, "W" + bits + "A" + bits, new QuantPlan.SilhouetteSource.Learned(), new Plans.Receiving.Uniform(bits, bits),
                        Plans.PRE_BRANCH_BITS, calibration::alpha);
                rows.add(time(plan.label(), fp32, plan, PlanRewrite.Execution.PACKED, bits, cpu, batches, batch, macs));
                if (bits == 8) w8a8 = plan;
            }
            for (String policy : SWEEP) {
                RegionPolicy p = RegionPolicy.parse(policy);
                QuantPlan plan = Plans.of(fp32, name, policy + " W4", new QuantPlan.SilhouetteSource.Learned(),
                        new Plans.Receiving.Region(p, false, 4, Op.Interpolate.Mode.NEAREST, Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD),
                        Plans.PRE_BRANCH_BITS, calibration::alpha);
                double bits = 0;
                for (int r = 0; r < p.regions().size(); r++) bits += p.percents()[r] / 100.0 * p.bits(r);
                if (policy.equals("2:50,3:30,4:20")) rows.add(time(plan.label(), fp32, plan, PlanRewrite.Execution.SIMULATED, bits, cpu, batches, batch, macs));
                rows.add(time(plan.label(), fp32, plan, PlanRewrite.Execution.PACKED, bits, cpu, batches, batch, macs));
            }
            // FP32 once more, last: the first configuration also pays for the JVM's warm-up (heap growth, JIT).
            rows.add(time("FP32 (again, last)", fp32, null, PlanRewrite.Execution.SIMULATED, 32, cpu, batches, batch, macs));
        }
        rows.add(onnxRuntime("ONNX Runtime FP32", fp32, batches, batch, macs));
        rows.add(onnxRuntime("ONNX Runtime INT8 (QDQ W8A8 export)", PlanRewrite.apply(fp32, w8a8, PlanRewrite.Execution.PACKED), batches, batch, macs));
        return new Model(name, batch, macs, rows);
    }

    private static Timing time(String label, Graph fp32, QuantPlan plan, PlanRewrite.Execution execution, double bits, Backend cpu, Tensor[] batches,
                               int batch, long macs) {
        Graph graph = plan == null ? fp32 : PlanRewrite.apply(fp32, plan, execution);
        String input = graph.inputs().getFirst().name();
        List<String> outputs = List.of(Models.logits(graph));
        double[] ms = new double[RUNS];
        for (int i = 0; i < WARMUP + RUNS; i++) {
            long t0 = System.nanoTime();
            cpu.run(graph, Map.of(input, batches[i % batches.length]), outputs);
            if (i >= WARMUP) ms[i - WARMUP] = (System.nanoTime() - t0) / 1e6;
        }
        // Bytes: every value one run produces, per image, against the accounting's codes at their widths.
        List<String> every = graph.nodes().stream().map(Node::name).toList();
        Map<String, Tensor> all = cpu.run(graph, Map.of(input, batches[0]), every);
        double floatBytes = 0;
        for (Tensor t : all.values()) floatBytes += 4.0 * t.size() / batch;
        double packed = 0;
        if (plan != null) {
            var shapes = fp32.inferShapes(1);
            for (QuantPlan.LayerPlan l : plan.layers()) packed += shapes.get(l.input()).size() * (l.activations() instanceof QuantPlan.Activations.Region ? bits : bitsOf(l)) / 8.0;
        }
        double[] s = ms.clone();
        Arrays.sort(s);
        double median = (s[RUNS / 2] + s[(RUNS - 1) / 2]) / 2;
        return new Timing(label, plan == null ? "fp32" : ExecutionOptions.label(graph, plan, execution), bits, median, s[0], s[RUNS - 1],
                batch / (median / 1e3), macs * batch / (median / 1e3) / 1e9, floatBytes / 1024, packed / 1024);
    }

    private static double bitsOf(QuantPlan.LayerPlan l) {
        return switch (l.activations()) {
            case QuantPlan.Activations.Pact p -> p.bits();
            case QuantPlan.Activations.Affine a -> a.bits();
            default -> 32;
        };
    }

    private static Timing onnxRuntime(String label, Graph fp32, Tensor[] batches, int batch, long macs) throws IOException, OrtException {
        Path dir = Files.createTempDirectory("packed-bench");
        Path file = dir.resolve("model.onnx");
        OnnxExporter.write(fp32, 17, file, false);
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        double[] ms = new double[RUNS];
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            o.setIntraOpNumThreads(Runtime.getRuntime().availableProcessors());
            try (OrtSession session = env.createSession(file.toString(), o)) {
                String input = session.getInputNames().iterator().next();
                for (int i = 0; i < WARMUP + RUNS; i++) {
                    Tensor x = batches[i % batches.length];
                    long[] dims = Arrays.stream(x.shape().dims()).asLongStream().toArray();
                    try (OnnxTensor t = OnnxTensor.createTensor(env, FloatBuffer.wrap(x.data()), dims)) {
                        long t0 = System.nanoTime();
                        try (OrtSession.Result r = session.run(Map.of(input, t))) {
                            if (i >= WARMUP) ms[i - WARMUP] = (System.nanoTime() - t0) / 1e6;
                        }
                    }
                }
            }
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
        double[] s = ms.clone();
        Arrays.sort(s);
        double median = (s[RUNS / 2] + s[(RUNS - 1) / 2]) / 2;
        return new Timing(label, "onnxruntime cpu", label.contains("INT8") ? 8 : 32, median, s[0], s[RUNS - 1], batch / (median / 1e3), macs * batch / (median / 1e3) / 1e9, -1, -1);
    }
}
