package dev.silhouette.pipeline;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Op;
import dev.silhouette.quant.BitSerialConv;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import dev.silhouette.tensor.Window;
import org.testng.annotations.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;

import static org.testng.Assert.assertEquals;

/**
 * The FP32, quantized (uniform, region with shared and per-region weights, DRQ; simulated and packed
 * through LowBitConv2d) and bit-serial paths give bit-identical results whatever runs them: one worker, four, and a JVM that sees a
 * single processor (which changes how the CPU backend splits its work, not just who runs it).
 */
public class ThreadDeterminismTest {
    /** Every output's float bits (and the packed path's integers), hashed. */
    static String digest() {
        Graph fp32 = RegionQuantizationTest.MODEL;   // the bundled model, BatchNorms folded
        Map<String, Graph> graphs = new LinkedHashMap<>();
        graphs.put("fp32", fp32);
        Plans.ClipLevels clips = (value, bits) -> 1.5f + bits / 4f;
        RegionPolicy policy = RegionPolicy.parse("2:50,3:30,4:20");
        var learned = new QuantPlan.SilhouetteSource.Learned();
        put(graphs, "W4A4", fp32, (Plans.of(fp32, "bundled", "W4A4", learned, new Plans.Receiving.Uniform(4), 8, clips)));
        put(graphs, "region", fp32, (Plans.of(fp32, "bundled", "region", learned,
                new Plans.Receiving.Region(policy, false, 4, Op.Interpolate.Mode.NEAREST, Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD), 8, clips)));
        put(graphs, "per-region", fp32, (Plans.of(fp32, "bundled", "per-region", learned,
                new Plans.Receiving.Region(policy, true, 32, Op.Interpolate.Mode.BILINEAR, Op.RegionQuantize.MaskOrder.THRESHOLD_THEN_RESIZE), 8, clips)));
        Map<String, Float> thresholds = new LinkedHashMap<>();
        for (String in : Plans.receivingInputs(fp32)) thresholds.put(in, 0.3f);
        put(graphs, "drq", fp32, (Plans.of(fp32, "bundled", "drq", learned, new Plans.Receiving.Drq(2, 4, 2, thresholds), 8, clips)));
        // Three images: below two per processor on a 2-core machine, so the parent JVM splits each GEMM
        // across cores while the single-processor JVM runs one whole image per task instead.
        Tensor images = Tensor.uniform(Shape.of(3, 1, 28, 28), 0, 1, 11);
        MessageDigest sha = sha256();
        CpuBackend cpu = new CpuBackend();
        for (var g : graphs.entrySet()) {
            for (var out : cpu.run(g.getValue(), Map.of(g.getValue().inputs().getFirst().name(), images)).entrySet()) {
                sha.update((g.getKey() + "/" + out.getKey()).getBytes(StandardCharsets.UTF_8));
                ByteBuffer bits = ByteBuffer.allocate(4 * out.getValue().size());
                for (float v : out.getValue().data()) bits.putInt(Float.floatToRawIntBits(v));
                sha.update(bits.array());
            }
        }
        // The packed path: 3-bit activations and 2-bit signed weights as bit planes, convolved.
        Random r = new Random(5);
        Shape xs = Shape.of(2, 8, 9, 9), ws = Shape.of(4, 8, 3, 3);
        int[] x = r.ints(xs.size(), 0, 8).toArray(), w = r.ints(ws.size(), -2, 2).toArray();
        long[] packed = BitSerialConv.conv(BitSerialConv.packActivations(x, xs, 3), xs, 3, BitSerialConv.packWeights(w, ws, 2, true), ws, 2, true,
                Window.square(3, 1, 1));
        ByteBuffer p = ByteBuffer.allocate(8 * packed.length);
        for (long v : packed) p.putLong(v);
        sha.update(p.array());
        return HexFormat.of().formatHex(sha.digest());
    }

    /** The plan's graph on both paths: simulated, and packed (integer codes; the native x86 kernel where it loaded). */
    private static void put(Map<String, Graph> graphs, String name, Graph fp32, QuantPlan plan) {
        graphs.put(name, PlanRewrite.apply(fp32, plan, PlanRewrite.Execution.SIMULATED));
        graphs.put(name + " packed", PlanRewrite.apply(fp32, plan, PlanRewrite.Execution.PACKED));
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    /** Prints {@link #digest()}: the single-processor JVM's side of the test. */
    public static void main(String[] args) {
        System.out.println("digest " + digest());
    }

    private static String inPool(int workers) throws InterruptedException, ExecutionException {
        // Parallel streams started inside a ForkJoinPool's task run on that pool.
        ForkJoinPool pool = new ForkJoinPool(workers);
        try {
            return pool.submit(ThreadDeterminismTest::digest).get();
        } finally {
            pool.shutdown();
        }
    }

    @Test
    public void identicalBitsUnderOneAndFourWorkers() throws Exception {
        assertEquals(inPool(4), inPool(1), "4 workers against 1");
    }

    @Test
    public void identicalBitsInAJvmThatSeesOneProcessor() throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(List.of(java, "-XX:ActiveProcessorCount=1", "--add-modules", "jdk.incubator.vector", "-Xmx1g",
                "-cp", System.getProperty("java.class.path"), ThreadDeterminismTest.class.getName()))
                .redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(p.waitFor(), 0, output);
        String line = output.lines().filter(l -> l.startsWith("digest ")).findFirst().orElseThrow(() -> new AssertionError("no digest in: " + output));
        assertEquals(line.substring("digest ".length()), digest(), "a single-processor JVM");
    }
}
