package dev.silhouette.conformance;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.silhouette.backend.Backend;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.LowBitConv;
import dev.silhouette.backend.cuda.CudaAvailability;
import dev.silhouette.cli.Main;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Tensor;
import org.testng.annotations.Test;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertTrue;

/**
 * The suite itself: planted wrong results make both a test's assertion and the command fail with the
 * case named; a device target is compared against the CPU backend (here, a CPU backend in a device's
 * place); refusals are reported, not failed; the command's options and report.
 */
public class ConformanceSuiteTest {

    private static ConformanceCase.LowBit lowBit(String name) {
        return Problems.lowBits().stream().filter(c -> c.name().equals(name)).findFirst().orElseThrow();
    }

    /** The standard low-bit kernels with INT_LANES' accumulator 5 off by one: a planted kernel bug. */
    private static CpuKernels plantedAccumulator() {
        CpuKernels standard = CpuKernels.standard();
        return standard.withLowBit(new CpuKernels.LowBit() {
            public List<LowBitConv.Formulation> formulations(Op.LowBitConv2d op) {
                return standard.lowBit().formulations(op);
            }

            public int[] accumulators(Tensor x, Tensor map, Op.LowBitConv2d op, LowBitConv.Formulation f) {
                int[] a = standard.lowBit().accumulators(x, map, op, f);
                if (f == LowBitConv.Formulation.INT_LANES && a.length > 5) a[5]++;
                return a;
            }

            public Tensor output(Tensor x, Tensor map, Tensor bias, Op.LowBitConv2d op) {
                return standard.lowBit().output(x, map, bias, op);
            }
        });
    }

    @Test
    public void aPlantedAccumulatorFailsTheCaseByNameInTheTestsAndInTheCommand() {
        ConformanceCase.LowBit c = lowBit("resnet18 layer4 3x3");
        Target planted = new Target.Cpu(plantedAccumulator());
        List<CaseResult> results = CaseRunner.run(c, planted, CaseRunner.Mode.CHECK);
        CaseResult bad = results.stream().filter(r -> r.verdict() == Verdict.FAIL).findFirst().orElseThrow();
        assertEquals(bad.backend(), "cpu/int_lanes");
        assertTrue(bad.detail().contains("first difference at accumulator 5"), bad.detail());
        // The other formulations of the same case still pass: the fault is pinned to its kernel.
        assertTrue(results.stream().filter(r -> !r.backend().equals("cpu/int_lanes")).allMatch(r -> r.verdict() == Verdict.PASS), results.toString());
        // The tests' assertion fails naming the case ...
        AssertionError e = org.testng.Assert.expectThrows(AssertionError.class, () -> ConformanceAssert.assertConforms(c, planted));
        assertTrue(e.getMessage().contains("resnet18 layer4 3x3") && e.getMessage().contains("cpu/int_lanes"), e.getMessage());
        // ... and so does the command, with a non-zero exit status.
        StringWriter text = new StringWriter();
        int status = dev.silhouette.cli.ConformanceCommandAccess.report(List.of(planted), List.of(), List.of(lowBit("1x1 single pixel"), c), false, new PrintWriter(text));
        assertEquals(status, 1);
        assertTrue(text.toString().lines().anyMatch(l -> l.startsWith("FAILED") && l.contains("resnet18 layer4 3x3") && l.contains("cpu/int_lanes")), text.toString());
        assertTrue(text.toString().contains(" 1 fail"), text.toString());
    }

    @Test
    public void aPlantedConvolutionErrorAboveTheToleranceFailsAndOneBelowPasses() {
        ConformanceCase c = Problems.convolutions().stream().filter(p -> p.name().equals("depthwise")).findFirst().orElseThrow();
        for (float error : new float[] {1e-3f, 1e-9f}) {
            CpuKernels k = CpuKernels.standard().withConvolution((x, w, b, op) -> {
                Tensor y = CpuKernels.standard().convolution().conv2d(x, w, b, op);
                y.data()[7] += error;
                return y;
            });
            CaseResult r = CaseRunner.run(c, new Target.Cpu(k), CaseRunner.Mode.CHECK).getFirst();
            assertEquals(r.verdict(), error > 1e-6 ? Verdict.FAIL : Verdict.PASS, r.line());
            if (r.verdict() == Verdict.FAIL) assertTrue(r.detail().startsWith("output 7 is"), r.detail());
        }
        // A kernel that throws fails its case with the exception, and the suite goes on.
        CpuKernels throwing = CpuKernels.standard().withConvolution((x, w, b, op) -> {
            throw new IllegalStateException("planted crash");
        });
        CaseResult r = CaseRunner.run(c, new Target.Cpu(throwing), CaseRunner.Mode.CHECK).getFirst();
        assertEquals(r.verdict(), Verdict.FAIL);
        assertTrue(r.detail().contains("planted crash"), r.detail());
    }

    /** A CPU backend in a device's place, with an optional fault in one op's output and an optional refusal. */
    private static Target.Device fakeDevice(Class<? extends Op> faulty, Class<? extends Op> refused) {
        Backend cpu = new CpuBackend();
        Backend device = new Backend() {
            public String name() {
                return "fake:0";
            }

            public Map<String, Tensor> run(Graph graph, Map<String, Tensor> inputs, List<String> requested) {
                Map<String, Tensor> out = cpu.run(graph, inputs, requested);
                if (faulty != null && faulty.isInstance(graph.nodes().getFirst().op())) {
                    Tensor t = out.get("op");
                    t.data()[t.size() / 2] = Math.nextUp(t.data()[t.size() / 2]);
                }
                return out;
            }
        };
        return new Target.Device(device, (op, shapes) -> refused != null && refused.isInstance(op) ? Optional.of("NOT_IMPLEMENTED: planted refusal") : Optional.empty());
    }

    @Test
    public void aDeviceIsComparedWithTheCpuBackendOnEveryKindOfCase() {
        List<ConformanceCase> cases = new ArrayList<>(Problems.singleOps());
        cases.add(Problems.convolutions().get(5));
        cases.add(Problems.linears().get(2));
        // One low-bit case of each coding: the region map travels as a second graph input.
        Set<ConformanceCase.Codes> seen = new HashSet<>();
        for (ConformanceCase.LowBit c : Problems.lowBits()) if (c.problem().name().startsWith("random") && seen.add(c.codes())) cases.add(c);
        assertEquals(seen.size(), ConformanceCase.Codes.values().length);

        ConformanceReport clean = Conformance.run(List.of(fakeDevice(null, null)), cases, CaseRunner.Mode.CHECK, List.of(), r -> {});
        assertTrue(clean.passed(), clean.failures().toString());
        assertEquals((int) clean.counts().get(Verdict.PASS), cases.size());

        // One ulp off in an op held to EXACT fails; a refused op is reported with its reason and fails nothing.
        ConformanceReport planted = Conformance.run(List.of(fakeDevice(Op.Relu.class, Op.LowBitConv2d.class)), cases, CaseRunner.Mode.CHECK, List.of(), r -> {});
        assertEquals(planted.failures().size(), 1, planted.failures().toString());
        CaseResult relu = planted.failures().getFirst();
        assertEquals(relu.op(), "Relu");
        assertTrue(relu.detail().startsWith("element "), relu.detail());
        List<CaseResult> refused = planted.results().stream().filter(r -> r.verdict() == Verdict.UNSUPPORTED).toList();
        assertEquals(refused.size(), 4);
        assertTrue(refused.stream().allMatch(r -> r.op().equals("LowBitConv2d") && r.line().contains("not supported: NOT_IMPLEMENTED: planted refusal")));
    }

    @Test
    public void everyOpOfTheIrThatABackendExecutesHasCases() {
        Set<String> covered = new HashSet<>();
        for (ConformanceCase c : Conformance.cases()) covered.add(c.op());
        for (Class<?> op : Op.class.getPermittedSubclasses()) {
            assertTrue(covered.contains(op.getSimpleName()), op.getSimpleName() + " has no conformance case");
        }
    }

    @Test
    public void theCommandPrintsAndWritesItsJsonReport() throws Exception {
        Path file = Files.createTempDirectory("conformance").resolve("report.json");
        StringWriter out = new StringWriter(), err = new StringWriter();
        var cl = Main.commandLine();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int status = cl.execute("conformance", "--backend", "cpu", "--ops", "^(Linear|Relu)$", "--json", "--out", file.toString(), "--quiet");
        assertEquals(status, 0, err.toString());
        JsonObject report = JsonParser.parseString(out.toString()).getAsJsonObject();
        assertEquals(report, JsonParser.parseString(Files.readString(file)));
        assertTrue(report.get("passed").getAsBoolean());
        JsonObject perOp = report.getAsJsonObject("perOp");
        assertEquals(perOp.keySet(), Set.of("Linear", "Relu"));
        // The GEMM linear layer is checked on every linear case (the one-op graph list's too); the CPU is ReLU's specification, so it is named, not passed.
        long linears = Problems.linears().size() + Problems.singleOps().stream().filter(c -> c.op().equals("Linear")).count();
        assertEquals(perOp.getAsJsonObject("Linear").getAsJsonObject("cpu/gemm").get("PASS").getAsInt(), linears);
        long relus = Problems.singleOps().stream().filter(c -> c.op().equals("Relu")).count();
        assertEquals(perOp.getAsJsonObject("Relu").getAsJsonObject("cpu").get("SPECIFICATION").getAsInt(), relus);
        assertTrue(report.getAsJsonObject("environment").getAsJsonObject("cuda").get("status").getAsString().length() > 0);
        assertEquals(report.getAsJsonArray("results").size(), linears + relus);
    }

    @Test
    public void badOptionsAreRefusedByName() {
        for (String[] args : List.of(new String[] {"--ops", "NoSuchOp"}, new String[] {"--ops", "("}, new String[] {"--mode", "fast"},
                new String[] {"--backend", "tpu"})) {
            StringWriter err = new StringWriter();
            var cl = Main.commandLine();
            cl.setErr(new PrintWriter(err));
            cl.setOut(new PrintWriter(new StringWriter()));
            List<String> all = new ArrayList<>(List.of("conformance", "--quiet"));
            all.addAll(List.of(args));
            assertEquals(cl.execute(all.toArray(String[]::new)), 2, String.join(" ", args));
            assertTrue(err.toString().contains(args[0]), err.toString());
        }
        if (CudaAvailability.unavailableReason().isPresent()) {
            StringWriter err = new StringWriter();
            var cl = Main.commandLine();
            cl.setErr(new PrintWriter(err));
            assertEquals(cl.execute("conformance", "--backend", "cuda", "--quiet"), 2);
            assertTrue(err.toString().contains("unavailable"), err.toString());
        }
    }

    @Test
    public void perfModeTimesTheSameCasesWithoutComparing() {
        List<ConformanceCase> cases = List.of(Problems.convolutions().getFirst(), lowBit("every width pair"));
        ConformanceReport r = Conformance.run(List.of(Target.cpu()), cases, CaseRunner.Mode.PERF, List.of(), x -> {});
        assertFalse(r.results().isEmpty());
        assertTrue(r.results().stream().allMatch(x -> x.verdict() == Verdict.TIMED && x.medianMicros() > 0), r.results().toString());
    }
}
