package dev.silhouette.conformance;

import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.backend.cpu.LowBitConv;
import dev.silhouette.backend.cpu.Reference;
import dev.silhouette.conformance.ConformanceCase.Codes;
import dev.silhouette.conformance.ConformanceCase.Convolution;
import dev.silhouette.conformance.ConformanceCase.LowBit;
import dev.silhouette.conformance.ConformanceCase.SingleOp;
import dev.silhouette.graph.Graph;
import dev.silhouette.graph.GraphBuilder;
import dev.silhouette.graph.Op;
import dev.silhouette.graph.Op.LowBitConv2d.ActivationCodes;
import dev.silhouette.quant.LowBitWeights;
import dev.silhouette.quant.RegionQuantizer;
import dev.silhouette.quant.WeightQuantization;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * Runs one case on one target: the one implementation behind the project's conformance tests and
 * {@code silhouette conformance}. A case yields one result per kernel variant it exercises (each low-bit
 * formulation, for example). A kernel that throws fails its case with the exception's message.
 */
public final class CaseRunner {
    private CaseRunner() {}

    public enum Mode { CHECK, PERF }

    /** Above this many multiply-adds the oracle that quantizes each weight per MAC is too slow: the plain-loop spec alone checks. */
    static final long ORACLE_MAC_LIMIT = 20_000_000;
    private static final int PERF_REPEATS = 5;
    private static final long PERF_BUDGET_NANOS = 200_000_000;

    public static List<CaseResult> run(ConformanceCase c, Target target, Mode mode) {
        return switch (target) {
            case Target.Cpu cpu -> switch (c) {
                case Convolution v -> List.of(cpuConvolution(v, cpu.kernels(), mode));
                case ConformanceCase.Linear l -> List.of(cpuLinear(l, cpu.kernels(), mode));
                case LowBit b -> cpuLowBit(b, cpu.kernels(), mode);
                // One-op graphs of the layers the GEMM runs check the GEMM as the lists of those layers do.
                case SingleOp s when s.graphOp() instanceof Op.Conv2d conv -> List.of(cpuConvolution(
                        new Convolution(s.name(), s.inputs()[0][0], s.inputs()[0][1], s.inputs()[0][2], s.inputs()[0][3], conv), cpu.kernels(), mode));
                case SingleOp s when s.graphOp() instanceof Op.Linear linear -> List.of(cpuLinear(
                        new ConformanceCase.Linear(s.name(), s.inputs()[0][0], linear), cpu.kernels(), mode));
                case SingleOp s -> List.of(result(s, "cpu", Verdict.SPECIFICATION, Double.NaN, Double.NaN,
                        "the CPU backend is this op's specification; no second CPU kernel to check"));
            };
            case Target.Device device -> List.of(onDevice(c, device, mode));
        };
    }

    // ---- the CPU's fast kernels against the reference kernels

    private static CaseResult cpuConvolution(Convolution v, CpuKernels k, Mode mode) {
        long seed = v.seed();
        Tensor x = Tensor.uniform(Shape.of(v.n(), v.c(), v.h(), v.w()), -1, 1, seed);
        Tensor w = Tensor.uniform(Shape.of(v.conv().parameters().getFirst().dims()), -1, 1, seed + 1);
        Tensor b = v.conv().bias() ? Tensor.uniform(Shape.of(v.conv().outChannels()), -1, 1, seed + 2) : null;
        if (mode == Mode.PERF) return timed(v, "cpu/gemm", () -> k.convolution().conv2d(x, w, b, v.conv()), 2.0 * macs(v));
        return guarded(v, "cpu/gemm", () -> {
            Tensor expected = Reference.conv2d(x, w, b, v.conv());
            Tensor actual = k.convolution().conv2d(x, w, b, v.conv());
            // Scale of each output: the reference over |x| and |w| is the sum of absolute terms.
            Tensor scale = Reference.conv2d(x.abs(), w.abs(), b == null ? null : b.abs(), v.conv());
            return compareAccumulated(v, "cpu/gemm", actual, expected, scale);
        });
    }

    private static CaseResult cpuLinear(ConformanceCase.Linear l, CpuKernels k, Mode mode) {
        long seed = (l.name() + " " + l.shape()).hashCode();
        Tensor x = Tensor.uniform(Shape.of(l.n(), l.linear().inFeatures()), -1, 1, seed);
        Tensor w = Tensor.uniform(Shape.of(l.linear().outFeatures(), l.linear().inFeatures()), -1, 1, seed + 1);
        Tensor b = l.linear().bias() ? Tensor.uniform(Shape.of(l.linear().outFeatures()), -1, 1, seed + 2) : null;
        if (mode == Mode.PERF) {
            return timed(l, "cpu/gemm", () -> k.linear().linear(x, w, b, l.linear()), 2.0 * l.n() * l.linear().inFeatures() * l.linear().outFeatures());
        }
        return guarded(l, "cpu/gemm", () -> {
            Tensor expected = Reference.linear(x, w, b, l.linear());
            Tensor actual = k.linear().linear(x, w, b, l.linear());
            Tensor scale = Reference.linear(x.abs(), w.abs(), b == null ? null : b.abs(), l.linear());
            return compareAccumulated(l, "cpu/gemm", actual, expected, scale);
        });
    }

    private static List<CaseResult> cpuLowBit(LowBit c, CpuKernels k, Mode mode) {
        LowBitSetup s;
        List<LowBitConv.Formulation> formulations;
        try {
            s = LowBitSetup.of(c);
            formulations = k.lowBit().formulations(s.op());
        } catch (RuntimeException e) {
            return List.of(result(c, "cpu", Verdict.FAIL, Double.NaN, Double.NaN, "setting up the case failed: " + e));
        }
        List<CaseResult> results = new ArrayList<>();
        if (mode == Mode.PERF) {
            for (LowBitConv.Formulation f : formulations) {
                results.add(timed(c, variant(f), () -> k.lowBit().accumulators(s.x(), s.map(), s.op(), f), 2.0 * macs(c.problem())));
            }
            return results;
        }
        int[] spec;
        try {
            spec = Reference.lowBitAccumulators(s.x(), s.map(), s.op());
        } catch (RuntimeException e) {
            return List.of(result(c, "cpu/reference", Verdict.FAIL, Double.NaN, Double.NaN, "the specification refused the case: " + e));
        }
        for (LowBitConv.Formulation f : formulations) {
            results.add(guarded(c, variant(f), () -> compareExact(c, variant(f), "accumulator", k.lowBit().accumulators(s.x(), s.map(), s.op(), f), spec)));
        }
        // The independent oracle quantizes float weights itself, on the symmetric grid of 2 bits and more.
        if (c.codes() == Codes.REGIONS && Arrays.stream(s.weightBits()).min().orElseThrow() >= 2 && macs(c.problem()) <= ORACLE_MAC_LIMIT) {
            int[] oracleBits = new int[Problems.REGIONS];
            for (int r = 0; r < Problems.REGIONS; r++) oracleBits[r] = s.weightBits()[c.perRegionWeights() ? r : 0];
            Reference.RegionConv oracle = Reference.regionConv2d(s.x(), s.regionBytes(), s.activationBits(), s.alphas(), oracleBits, s.weight(), s.bias(),
                    c.problem().conv());
            results.add(compareExact(c, "cpu/reference", "accumulator (regionConv2d against lowBitAccumulators)", spec, oracle.accumulators()));
            results.add(guarded(c, "cpu/epilogue", () -> compareRelative(c, "cpu/epilogue", k.lowBit().output(s.x(), s.map(), s.bias(), s.op()),
                    oracle.output(), Tolerance.EPILOGUE, true)));
        }
        return results;
    }

    private static String variant(LowBitConv.Formulation f) {
        return "cpu/" + f.name().toLowerCase();
    }

    /** A low-bit case's inputs and op, drawn from its seed. */
    record LowBitSetup(Tensor x, Tensor map, byte[] regionBytes, int[] activationBits, float[] alphas, Tensor weight, Tensor bias,
                       int[] weightBits, Op.LowBitConv2d op) {
        static LowBitSetup of(LowBit c) {
            Op.Conv2d conv = c.problem().conv();
            Convolution p = c.problem();
            long seed = c.seed();
            SplittableRandom rnd = new SplittableRandom(seed);
            Tensor weight = Tensor.uniform(Shape.of(conv.parameters().getFirst().dims()), -1, 1, seed + 2);
            Tensor bias = conv.bias() ? Tensor.uniform(Shape.of(conv.outChannels()), -1, 1, seed + 3) : null;
            int a = c.activationBits();
            if (c.codes() != Codes.REGIONS) {
                int qmax = (1 << a) - 1;
                boolean grid = c.codes() == Codes.GRID_WITH_ZERO_POINT;
                // A grid over [-1.2, 1.7] with its zero point inside; DRQ's classes over [-0.5, 1.5] with 2x2 blocks split at 0.5.
                Tensor x = grid ? Tensor.uniform(Shape.of(p.n(), p.c(), p.h(), p.w()), -1.2f, 1.7f, seed + 1)
                        : Tensor.uniform(Shape.of(p.n(), p.c(), p.h(), p.w()), -0.5f, 1.5f, seed + 1);
                ActivationCodes codes = grid ? new ActivationCodes.Grid(a, 2.9f / qmax, Math.max(0, Math.round(1.2f / (2.9f / qmax))) % (qmax + 1))
                        : new ActivationCodes.DrqClass(2, 0.5f, c.codes() == Codes.DRQ_SENSITIVE, a, 1.3f / qmax);
                int[] wb = {c.weightBits()};
                var w = LowBitWeights.of(conv.groups(), conv.outChannels(), conv.inPerGroup(), conv.window().taps(), wb,
                        List.of(quantize(weight, conv.outChannels(), c.weightBits())));
                return new LowBitSetup(x, null, null, new int[] {a}, null, weight, bias, wb, new Op.LowBitConv2d(conv, codes, w));
            }
            int[] bits = new int[Problems.REGIONS];
            float[] alphas = new float[Problems.REGIONS];
            List<Integer> bitList = new ArrayList<>();
            List<Float> steps = new ArrayList<>();
            for (int r = 0; r < Problems.REGIONS; r++) {
                bits[r] = Math.max(1, a - r);   // region widths differ, region 0 at the pair's width
                alphas[r] = (float) (0.5 + rnd.nextDouble());
                bitList.add(bits[r]);
                steps.add(RegionQuantizer.pactStep(alphas[r], bits[r]));
            }
            // Values below 0 and above alpha exercise both clamps of the grid.
            Tensor x = Tensor.uniform(Shape.of(p.n(), p.c(), p.h(), p.w()), -0.3f, 1.7f, seed + 1);
            byte[] regionBytes = Problems.regionMap(c.map(), p.n(), p.h(), p.w(), rnd);
            float[] mapValues = new float[regionBytes.length];
            for (int i = 0; i < regionBytes.length; i++) mapValues[i] = regionBytes[i];
            int sets = c.perRegionWeights() ? Problems.REGIONS : 1;
            int[] weightBits = new int[sets];
            List<WeightQuantization.QuantizedWeights> q = new ArrayList<>();
            for (int r = 0; r < sets; r++) {
                weightBits[r] = c.perRegionWeights() ? Math.max(1, c.weightBits() - r) : c.weightBits();
                q.add(quantize(weight, conv.outChannels(), weightBits[r]));
            }
            var w = LowBitWeights.of(conv.groups(), conv.outChannels(), conv.inPerGroup(), conv.window().taps(), weightBits, q);
            return new LowBitSetup(x, new Tensor(Shape.of(p.n(), 1, p.h(), p.w()), mapValues), regionBytes, bits, alphas, weight, bias, weightBits,
                    new Op.LowBitConv2d(conv, new ActivationCodes.Regions(bitList, steps), w));
        }

        private static WeightQuantization.QuantizedWeights quantize(Tensor weight, int outChannels, int bits) {
            int[] perChannel = new int[outChannels];
            Arrays.fill(perChannel, bits);
            return WeightQuantization.quantize(weight, perChannel, null, false);
        }
    }

    // ---- a device backend against the CPU backend

    private static CaseResult onDevice(ConformanceCase c, Target.Device device, Mode mode) {
        String name = device.name();
        Graph graph;
        Map<String, Tensor> inputs;
        Tolerance tolerance;
        try {
            SingleGraph g = singleGraph(c);
            graph = g.graph();
            inputs = g.inputs();
            tolerance = g.tolerance();
        } catch (RuntimeException e) {
            return result(c, name, Verdict.FAIL, Double.NaN, Double.NaN, "setting up the case failed: " + e);
        }
        List<Shape> shapes = new ArrayList<>();
        for (Graph.Input in : graph.inputs()) shapes.add(inputs.get(in.name()).shape());
        Optional<String> refusal = device.support().refusal(graph.nodes().getFirst().op(), shapes);
        if (refusal.isPresent()) return result(c, name, Verdict.UNSUPPORTED, Double.NaN, Double.NaN, refusal.get());
        if (mode == Mode.PERF) return timed(c, name, () -> device.backend().run(graph, inputs), Double.NaN);
        return guarded(c, name, () -> {
            Tensor expected = new CpuBackend().run(graph, inputs).get("op");
            Tensor actual = device.backend().run(graph, inputs).get("op");
            return compareRelative(c, name, actual, expected, tolerance, c instanceof LowBit);
        });
    }

    private record SingleGraph(Graph graph, Map<String, Tensor> inputs, Tolerance tolerance) {}

    /** The case as a one-node graph whose node is named "op", over inputs drawn from the case's seed. */
    private static SingleGraph singleGraph(ConformanceCase c) {
        return switch (c) {
            case SingleOp s -> {
                GraphBuilder b = new GraphBuilder(s.name().hashCode());
                String[] names = new String[s.inputs().length];
                Map<String, Tensor> in = new LinkedHashMap<>();
                for (int i = 0; i < names.length; i++) {
                    int[] dims = s.inputs()[i];
                    names[i] = b.input("x" + i, Arrays.copyOfRange(dims, 1, dims.length));
                    in.put(names[i], Tensor.uniform(Shape.of(dims), -2, 2, 100 + i));
                }
                b.output(b.add("op", s.graphOp(), names));
                yield new SingleGraph(Problems.randomParameters(b.build()), in, s.tolerance());
            }
            case Convolution v -> {
                GraphBuilder b = new GraphBuilder(v.seed());
                String x = b.input("x", v.c(), v.h(), v.w());
                b.output(b.add("op", v.conv(), x));
                yield new SingleGraph(Problems.randomParameters(b.build()),
                        Map.of(x, Tensor.uniform(Shape.of(v.n(), v.c(), v.h(), v.w()), -1, 1, v.seed())), Tolerance.DEVICE_ACCUMULATION);
            }
            case ConformanceCase.Linear l -> {
                GraphBuilder b = new GraphBuilder(l.name().hashCode());
                String x = b.input("x", l.linear().inFeatures());
                b.output(b.add("op", l.linear(), x));
                yield new SingleGraph(Problems.randomParameters(b.build()),
                        Map.of(x, Tensor.uniform(Shape.of(l.n(), l.linear().inFeatures()), -1, 1, l.name().hashCode())), Tolerance.DEVICE_ACCUMULATION);
            }
            case LowBit lb -> {
                LowBitSetup s = LowBitSetup.of(lb);
                Convolution p = lb.problem();
                GraphBuilder b = new GraphBuilder(lb.seed());
                Map<String, Tensor> in = new LinkedHashMap<>();
                String x = b.input("x", p.c(), p.h(), p.w());
                in.put(x, s.x());
                String node;
                if (s.map() != null) {
                    String map = b.input("map", 1, p.h(), p.w());
                    in.put(map, s.map());
                    node = b.add("op", s.op(), x, map);
                } else {
                    node = b.add("op", s.op(), x);
                }
                b.output(node);
                Graph g = b.build();
                if (s.bias() != null) {
                    Map<String, Tensor> params = new HashMap<>(g.parameters());
                    params.put("op.bias", s.bias());
                    g = g.withParameters(params);
                }
                yield new SingleGraph(g, in, Tolerance.EPILOGUE);
            }
        };
    }

    // ---- comparisons

    /** Per element within ACCUMULATION of the sum of absolute terms ({@code scale}). */
    private static CaseResult compareAccumulated(ConformanceCase c, String backend, Tensor actual, Tensor expected, Tensor scale) {
        if (!actual.shape().equals(expected.shape())) return shapeMismatch(c, backend, actual, expected);
        double max = 0;
        for (int i = 0; i < expected.size(); i++) {
            float e = expected.data()[i], a = actual.data()[i];
            double diff = Math.abs((double) e - a), limit = Tolerance.ACCUMULATION.bound() * scale.data()[i] + 1e-7;
            if (!(diff <= limit)) {
                return result(c, backend, Verdict.FAIL, diff, Double.NaN, "output " + i + " is " + a + ", reference " + e + " (|diff| " + diff + " > " + limit + ")");
            }
            max = Math.max(max, diff);
        }
        return result(c, backend, Verdict.PASS, max, Double.NaN, "");
    }

    /** Integers equal, element by element. */
    private static CaseResult compareExact(ConformanceCase c, String backend, String what, int[] actual, int[] expected) {
        if (actual.length != expected.length) {
            return result(c, backend, Verdict.FAIL, Double.NaN, Double.NaN, what + " count " + actual.length + ", expected " + expected.length);
        }
        for (int i = 0; i < expected.length; i++) {
            if (actual[i] != expected[i]) {
                return result(c, backend, Verdict.FAIL, Math.abs((double) actual[i] - expected[i]), Double.NaN,
                        "first difference at " + what + " " + i + ": " + actual[i] + ", expected " + expected[i]);
            }
        }
        return result(c, backend, Verdict.PASS, 0, Double.NaN, "");
    }

    /**
     * Floats within the tolerance, relative to max(1, the largest expected magnitude), or with {@code perElement}
     * to max(1, |expected|) of each element; EXACT asks every bit (both zeros equal). A non-finite value where
     * the specification is finite always fails.
     */
    private static CaseResult compareRelative(ConformanceCase c, String backend, Tensor actual, Tensor expected, Tolerance tolerance, boolean perElement) {
        if (!actual.shape().equals(expected.shape())) return shapeMismatch(c, backend, actual, expected);
        double scale = 1;
        for (float v : expected.data()) scale = Math.max(scale, Math.abs(v));
        double max = 0;
        for (int i = 0; i < expected.size(); i++) {
            float e = expected.data()[i], a = actual.data()[i];
            double diff = Math.abs((double) a - e);
            boolean ok;
            if (!Float.isFinite(a) || !Float.isFinite(e)) {
                ok = Float.floatToIntBits(a) == Float.floatToIntBits(e);
            } else if (tolerance == Tolerance.EXACT) {
                ok = Float.floatToRawIntBits(a) == Float.floatToRawIntBits(e) || diff == 0;
            } else {
                ok = diff <= tolerance.bound() * (perElement ? Math.max(1, Math.abs(e)) : scale);
            }
            if (!ok) {
                return result(c, backend, Verdict.FAIL, diff, Double.NaN, "element " + i + " is " + a + ", specification " + e + " (|diff| " + diff
                        + ", tolerance " + tolerance + ")");
            }
            if (!Double.isNaN(diff)) max = Math.max(max, diff);
        }
        return result(c, backend, Verdict.PASS, max, Double.NaN, "");
    }

    private static CaseResult shapeMismatch(ConformanceCase c, String backend, Tensor actual, Tensor expected) {
        return result(c, backend, Verdict.FAIL, Double.NaN, Double.NaN, "output shape " + actual.shape() + ", specification " + expected.shape());
    }

    /** A kernel that throws fails its case, named, instead of ending the suite. */
    private static CaseResult guarded(ConformanceCase c, String backend, Supplier<CaseResult> check) {
        try {
            return check.get();
        } catch (RuntimeException | OutOfMemoryError e) {
            return result(c, backend, Verdict.FAIL, Double.NaN, Double.NaN, "threw " + e);
        }
    }

    /** The median of up to five runs after one warm-up, within about 0.2 s per case; GOPS from {@code operations} when known. */
    private static CaseResult timed(ConformanceCase c, String backend, Runnable kernel, double operations) {
        try {
            kernel.run();
            List<Long> times = new ArrayList<>();
            long start = System.nanoTime();
            while (times.size() < PERF_REPEATS && (times.isEmpty() || System.nanoTime() - start < PERF_BUDGET_NANOS)) {
                long t0 = System.nanoTime();
                kernel.run();
                times.add(System.nanoTime() - t0);
            }
            times.sort(null);
            double micros = times.get(times.size() / 2) / 1e3;
            String detail = Double.isNaN(operations) ? "" : String.format("%.2f GOPS", operations / (micros * 1e3));
            return result(c, backend, Verdict.TIMED, Double.NaN, micros, detail);
        } catch (RuntimeException | OutOfMemoryError e) {
            return result(c, backend, Verdict.FAIL, Double.NaN, Double.NaN, "threw " + e);
        }
    }

    private static CaseResult result(ConformanceCase c, String backend, Verdict verdict, double maxError, double micros, String detail) {
        return new CaseResult(c.op(), c.name(), c.shape(), backend, verdict, maxError, micros, detail);
    }

    static long macs(Convolution v) {
        Op.Conv2d conv = v.conv();
        return (long) v.n() * conv.outChannels() * conv.window().outH(v.h()) * conv.window().outW(v.w()) * conv.taps();
    }
}
