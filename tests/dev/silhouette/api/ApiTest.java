package dev.silhouette.api;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.graph.Models;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Passes;
import dev.silhouette.pipeline.PlanRewrite;
import dev.silhouette.pipeline.Plans;
import dev.silhouette.pipeline.QuantPlan;
import dev.silhouette.pipeline.QuantPlanJson;
import dev.silhouette.pipeline.TestPlans;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** The embedding API against the backend it wraps: same bits, metadata from the graph, every bad input refused by name. */
public class ApiTest {
    static final Model BUNDLED = Model.load(ModelLoader.BUNDLED);
    static final Plans.ClipLevels CLIPS = (value, bits) -> 4f;

    static Tensor images(int n, long seed) {
        return Tensor.uniform(Shape.of(n, 1, 28, 28), 0, 1, seed);
    }

    static QuantPlan regionPlan(Graph folded) {
        return TestPlans.plan(folded, new Plans.Receiving.Region(RegionPolicy.parse("2:50,3:30,4:20"), false, 4, Op.Interpolate.Mode.NEAREST,
                Op.RegionQuantize.MaskOrder.RESIZE_THEN_THRESHOLD), CLIPS);
    }

    @Test
    public void metadataComesFromTheGraph() {
        Graph g = BUNDLED.graph();
        Map<String, Shape> shapes = g.inferShapes(5);
        assertEquals(BUNDLED.inputs().size(), g.inputs().size());
        TensorInfo in = BUNDLED.inputs().getFirst();
        assertEquals(in.name(), g.inputs().getFirst().name());
        assertEquals(in.datatype(), "FP32");
        assertEquals(in.shape(), List.of(-1L, 1L, 28L, 28L));
        assertEquals(BUNDLED.outputs().stream().map(TensorInfo::name).toList(), g.outputs());
        for (TensorInfo o : BUNDLED.outputs()) {
            int[] dims = shapes.get(o.name()).dims();
            assertEquals(o.shape().getFirst(), (Long) (-1L));
            for (int d = 1; d < dims.length; d++) assertEquals((long) o.shape().get(d), dims[d], o.name());
        }
        assertTrue(BUNDLED.outputs().stream().anyMatch(o -> o.name().equals(Models.SILHOUETTE)));
    }

    @Test
    public void sessionRunsWhatTheBackendRuns() {
        Tensor x = images(3, 1);
        Map<String, Tensor> expected = new CpuBackend().run(BUNDLED.graph(), Map.of("input", x));
        try (Session s = BUNDLED.session("cpu")) {
            assertEquals(s.backend(), "cpu");
            Map<String, Tensor> got = s.run(Map.of("input", x));
            assertEquals(got.keySet(), expected.keySet());
            for (String k : expected.keySet()) assertEquals(got.get(k).data(), expected.get(k).data(), k);
            Map<String, Tensor> one = s.run(Map.of("input", x), List.of(Models.SILHOUETTE));
            assertEquals(one.keySet(), java.util.Set.of(Models.SILHOUETTE));
            assertEquals(one.get(Models.SILHOUETTE).data(), expected.get(Models.SILHOUETTE).data());
        }
    }

    @Test
    public void aPlanForTheFoldedGraphFoldsAndQuantizes(){
        Graph folded = Passes.foldBatchNorm(BUNDLED.graph());
        QuantPlan plan = regionPlan(folded);
        Model q = BUNDLED.withPlan(plan);
        assertTrue(q.quantized());
        assertEquals(q.plan(), plan.label());
        Tensor x = images(2, 2);
        // withPlan runs packed by default: the same graph the packed rewrite gives, bit for bit.
        Map<String, Tensor> expected = new CpuBackend().run(PlanRewrite.apply(folded, plan, PlanRewrite.Execution.PACKED), Map.of("input", x));
        try (Session s = q.session("cpu"); Session fp32 = BUNDLED.session("cpu")) {
            Map<String, Tensor> got = s.run(Map.of("input", x));
            for (String k : expected.keySet()) assertEquals(got.get(k).data(), expected.get(k).data(), k);
            assertFalse(Arrays.equals(got.get(Models.LOGITS).data(), fp32.run(Map.of("input", x)).get(Models.LOGITS).data()), "the plan changed nothing");
        }
        IllegalArgumentException twice = expectThrows(IllegalArgumentException.class, () -> q.withPlan(plan));
        assertTrue(twice.getMessage().contains("already quantized"), twice.getMessage());
    }

    @Test
    public void aPlanFileForAnotherModelIsRefused() throws Exception {
        Model other = Model.load("resnet20");
        Path file = Files.createTempFile("plan", ".json");
        try {
            QuantPlanJson.save(regionPlan(Passes.foldBatchNorm(BUNDLED.graph())), file);
            IllegalArgumentException e = expectThrows(IllegalArgumentException.class, () -> other.withPlan(file));
            assertTrue(e.getMessage().contains("made for another model") && e.getMessage().contains("fingerprint"), e.getMessage());
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    public void badInputsAreRefusedByName() {
        try (Session s = BUNDLED.session("cpu")) {
            assertRefused(() -> s.run(Map.of()), "input 'input'", "was not given");
            assertRefused(() -> s.run(Map.of("input", Tensor.zeros(2, 1, 28, 27))), "input 'input' has shape [2, 1, 28, 27]", "[-1, 1, 28, 28]");
            assertRefused(() -> s.run(Map.of("input", Tensor.zeros(1, 28, 28))), "input 'input' has shape [1, 28, 28]");
            assertRefused(() -> s.run(Map.of("input", Tensor.zeros(0, 1, 28, 28))), "empty batch");
            assertRefused(() -> s.run(Map.of("input", images(1, 0), "extra", images(1, 0))), "'extra' is not an input");
            assertRefused(() -> s.run(Map.of("input", images(1, 0)), List.of("nope")), "requested output 'nope'", "fc");
            assertRefused(() -> s.run(Map.of("input", images(1, 0)), List.of()), "no outputs requested");
        }
        Session closed = BUNDLED.session("cpu");
        closed.close();
        IllegalStateException e = expectThrows(IllegalStateException.class, () -> closed.run(Map.of("input", images(1, 0))));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }

    static void assertRefused(Runnable call, String... parts) {
        IllegalArgumentException e = expectThrows(IllegalArgumentException.class, call::run);
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' missing from: " + e.getMessage());
    }

    @Test
    public void concurrentCallsGetTheirOwnResults() throws Exception {
        try (Session s = BUNDLED.session("cpu"); ExecutorService pool = Executors.newFixedThreadPool(4)) {
            List<Tensor> inputs = new ArrayList<>();
            List<float[]> sequential = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                inputs.add(images(1 + i % 3, 100 + i));
                sequential.add(s.run(Map.of("input", inputs.get(i))).get(Models.LOGITS).data());
            }
            List<Future<float[]>> futures = new ArrayList<>();
            for (Tensor x : inputs) futures.add(pool.submit(() -> s.run(Map.of("input", x)).get(Models.LOGITS).data()));
            for (int i = 0; i < inputs.size(); i++) assertEquals(futures.get(i).get(), sequential.get(i), "call " + i);
        }
    }
}
